"""colorize_tf: see setup.cfg for the metadata.

The shipped SavedModels (saved_models/) are installed as data files under
<prefix>/share/colorize_tf/saved_models, where inference.default_saved_model() finds
them after a plain `pip install .` (a checkout uses its own saved_models/).
"""
import os

from setuptools import setup


def saved_model_files(root="saved_models"):
    """[(install dir, [files])] for every folder below root that holds files."""
    here = os.path.dirname(os.path.abspath(__file__))
    found = []
    for folder, dirs, files in os.walk(os.path.join(here, root)):
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # no temp dirs of an export
        rel = os.path.relpath(folder, here)
        files = [name for name in sorted(files) if not name.startswith(".")]
        if files:
            found.append((os.path.join("share", "colorize_tf", rel),
                          [os.path.join(rel, name) for name in files]))
    return sorted(found)


setup(data_files=saved_model_files())
