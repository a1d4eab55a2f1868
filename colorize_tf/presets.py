"""The shipped models, described once, as data: the names `Colorizer(name)` and
`colorize --saved_model=NAME` accept, where each model is, what it is for, its size, its
default temperature and its headline scores. README's table of models is
`markdown_table()` (tests/test_shipped_model.py checks both against the SavedModels
and the README); and where they are: `resolve_saved_model(name or folder)`. No
TensorFlow import: the client, data prep and --help read it for free.
"""
import dataclasses
import os
import sys

from colorize_tf import errors
from colorize_tf import serving_api


@dataclasses.dataclass(frozen=True)
class Preset:
    """A shipped model. folder: its model base folder under saved_models/ (also its
    name on the local TF Serving server); parameters: of its Keras model;
    default_temperature: its export.json's; scores: what it measured, and on what."""
    name: str
    folder: str
    purpose: str
    method: str
    parameters: int
    default_temperature: float
    scores: str


PRESETS = (
    Preset("general", "effnet_general",
           "the default: any photo (people, streets, rooms, animals, boats, nature)",
           "EfficientNet-Lite0 encoder (ImageNet-pretrained) and a light decoder; 257 Lab "
           "bins at 1/4 of 192 px; version 4: version 3 fine-tuned on 41,060 photos of "
           "ten sources, weights interpolated half-way with version 3", 1_067_457, 0.5,
           "on 2,122 photos of ten other sources (wild/val): PSNR 21.91 dB, rebalanced "
           "AuC 0.608, recognised 47.7% (gray: 22.42 / 0.562 / 49.3%; version 3: "
           "21.09-21.51 / 0.606-0.608 / 46.1-46.4%); PSNR 24.05 dB, rebalanced AuC 0.696 "
           "on 2,916 test photos of five domains (gray: 23.15 / 0.585)"),
    Preset("colorunet_general", "colorunet_general",
           "the earlier general model, a ColorUNet learned from scratch",
           "ColorUNet, 255 Lab bins, 96 px", 803_559, 0.7,
           "PSNR 22.48 dB, rebalanced AuC 0.651 on the same 2,916 photos"),
    Preset("landscapes", "colorunet_landscapes",
           "nature: forests, glaciers, mountains, sea (the first shipped model)",
           "ColorUNet, 32 YUV bins, 96 px", 355_744, 0.38,
           "PSNR 22.81 dB, rebalanced AuC 0.690 on 1,350 landscape test photos "
           "(gray: 23.74 / 0.618)"),
    Preset("landscapes_hints", "colorunet_landscapes_hints",
           "nature, with colour hints: a few points of known colour",
           "ColorUNet with hint inputs, 32 YUV bins, 96 px", 356_176, 0.38,
           "rebalanced AuC 0.700 without hints, 0.779 with 10 (1,350 landscape test "
           "photos)"),
)
DEFAULT = "general"


def find(name):
    """The preset called name, or whose folder is name; None when there is none."""
    return next((p for p in PRESETS if name in (p.name, p.folder)), None)


def default():
    return find(DEFAULT)


def markdown_table():
    """README's table of the shipped models."""
    rows = ["| name | folder | for | method | parameters | default T | scores |",
            "|---|---|---|---|---|---|---|"]
    rows += [f"| `{p.name}` | `saved_models/{p.folder}` | {p.purpose} | {p.method} | "
             f"{p.parameters:,} | {p.default_temperature:g} | {p.scores} |" for p in PRESETS]
    return "\n".join(rows)


def help_text():
    """One line per preset, for --saved_model's help."""
    return "; ".join(f"{p.name} ({p.purpose})" for p in PRESETS)


SAVED_MODEL_ENV = "COLORIZE_TF_SAVED_MODEL"


class ModelError(errors.Error):
    """A SavedModel that cannot be used: not exported by colorize_tf, or weights that do
    not fit its files."""


class ModelNotFound(ModelError):
    """No SavedModel where one was asked for."""


def shipped_model_path(name):
    """Where the shipped model `name` (a preset's name or folder) is: the
    checkout's saved_models/ (an editable install or a clone), else the copy
    `pip install .` puts under <prefix>/share/colorize_tf/saved_models (setup.py). When
    neither exists, the checkout's path is returned and loading it says what to do."""
    preset = find(name)
    folder = preset.folder if preset else name
    checkout = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "saved_models", folder)
    installed = os.path.join(sys.prefix, "share", "colorize_tf", "saved_models", folder)
    for path in (checkout, installed):
        if os.path.isdir(path):
            return path
    return checkout


def default_saved_model():
    """Where the default model is, looked up on each call: $COLORIZE_TF_SAVED_MODEL if
    set, else the shipped default preset (DEFAULT)."""
    if os.environ.get(SAVED_MODEL_ENV):
        return os.environ[SAVED_MODEL_ENV]
    return shipped_model_path(DEFAULT)


def resolve_saved_model(path):
    """A version dir, a model base dir (its highest integer version), or the name of a
    shipped model (PRESETS: "general", "landscapes", ...) -> version dir;
    ModelNotFound when none is there. A shipped model's name is the shipped model unless
    a folder of that name here holds a SavedModel (a folder "landscapes/" of photos
    does not hide it)."""
    if find(path) and not (os.path.exists(os.path.join(path, "saved_model.pb"))
                                   or _versions(path)):
        path = shipped_model_path(path)
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    versions = _versions(path)
    if not versions:
        names = ", ".join(p.name for p in PRESETS)
        raise ModelNotFound(f"no SavedModel at {path!r} (export one with "
                            f"python -m colorize_tf.export, or name a shipped model: "
                            f"{names})")
    return os.path.join(path, str(versions[0]))


def _versions(path):
    """The version numbers of the model base folder path, newest first ([]: none)."""
    if not os.path.isdir(path):
        return []
    return sorted((v for v in map(serving_api.version_number, os.listdir(path))
                   if v is not None), reverse=True)
