"""The model shipped in saved_models/ (skipped when it is absent)."""
import os

import numpy as np
import pytest

from colorize_tf import presets
from colorize_tf.serving import inference

SHIPPED = inference.shipped_model_path(presets.DEFAULT)


@pytest.mark.skipif(not os.path.isdir(SHIPPED), reason="no shipped model in saved_models/")
def test_shipped_model_colorizes_a_generated_landscape():
    colorizer = inference.Colorizer()  # the default is the shipped model
    height, width = 120, 200
    rows = np.linspace(0, 1, height)[:, None]
    # Bright smooth "sky" over a darker textured "ground".
    texture = np.random.default_rng(0).normal(0, 25, (height, width))
    gray = np.where(rows < 0.5, 200 - 60 * rows, 90 + texture).clip(0, 255).astype(np.uint8)
    rgb = colorizer.colorize(gray, temperature=0.38)
    assert rgb.shape == (height, width, 3)
    spread = np.abs(rgb.astype(int) - rgb.astype(int).mean(axis=2, keepdims=True)).mean()
    assert spread > 2.0, "the shipped model returned an (almost) gray image"


HINTS_MODEL = inference.shipped_model_path("colorunet_landscapes_hints")


@pytest.mark.skipif(not os.path.isdir(HINTS_MODEL), reason="no shipped hints model")
def test_shipped_hints_model_follows_a_hint_near_it_and_not_far_away():
    """A blue hint in a field of a gray-green landscape turns the area around it blue
    and leaves the far corner as it was without hints."""
    colorizer = inference.Colorizer(HINTS_MODEL)
    assert colorizer.takes_hints
    rows = np.linspace(0, 1, 96)[:, None]
    gray = np.repeat((170 - 80 * rows).clip(0, 255), 128, axis=1).astype(np.uint8)
    plain = colorizer.colorize(gray).astype(int)
    hinted = colorizer.colorize(gray, hints=[
        {"point": (0.5, 0.25), "color": (40, 60, 220)}]).astype(int)
    near = hinted[48, 32] - plain[48, 32]
    assert near[2] - near[0] > 20, (plain[48, 32], hinted[48, 32])  # bluer
    assert np.abs(hinted[5:15, 110:125] - plain[5:15, 110:125]).mean() < 3


def test_the_presets_describe_the_shipped_models_and_the_readme_shows_them():
    # presets.py is the one description of the shipped models: each is there, with the
    # default temperature of its export.json and the parameter count of its weights, and
    # README's table is its markdown_table().
    from colorize_tf.serving import graph
    for preset in presets.PRESETS:
        path = inference.shipped_model_path(preset.name)
        if not os.path.isdir(path):
            pytest.skip(f"no shipped model in {path}")
        version = inference.resolve_saved_model(preset.name)
        assert version == inference.resolve_saved_model(path)
        info = graph.ExportInfo.load(version)
        assert info.default_temperature == preset.default_temperature, preset.name
        model, _, _ = inference.load_keras_model(version)
        assert model.count_params() == preset.parameters, preset.name
    readme = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               "README.md")).read()
    assert presets.markdown_table() in readme
    assert presets.find(presets.DEFAULT) is presets.default()
    assert presets.find("effnet_general") is presets.find("general")
    assert presets.find("no_such_model") is None


# Loaded raw, as TF Serving loads it (no Python guard in front of the graph), each
# shipped model gets every file of the bad-input corpus and the temperatures no graph
# may take, in a process of its own: an abort (exit 134) or a segfault (139) is the
# failure this catches; a refusal must be InvalidArgument, a result a PNG.
_RAW_CLIENT = r"""
import json, sys
import numpy as np, tensorflow as tf
from tests import bad_inputs
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
outcomes = {}
cases = [(name, data, 0.38) for name, (data, _) in sorted(bad_inputs.corpus_bytes().items())]
good = bad_inputs.corpus_bytes()["good.png"][0]
cases += [("T=inf", good, np.inf), ("T=nan", good, np.nan), ("T=0", good, 0.0)]
for name, data, temperature in cases:
    try:
        out = serve(image_bytes=tf.constant([data]),
                    temperature=tf.constant([temperature], tf.float32))
        outcomes[name] = "png %dx%d" % tuple(tf.io.decode_png(
            out["colorized_png_bytes"][0]).shape[:2])
    except tf.errors.InvalidArgumentError as e:
        outcomes[name] = "refused"
print(json.dumps(outcomes))
"""


@pytest.mark.parametrize("preset", [p.name for p in presets.PRESETS])
def test_every_shipped_model_survives_the_hostile_corpus_loaded_raw(preset):
    import json
    import subprocess
    import sys
    path = inference.shipped_model_path(preset)
    if not os.path.isdir(path):
        pytest.skip(f"no shipped model in {path}")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-c", _RAW_CLIENT,
                             inference.resolve_saved_model(path)],
                            cwd=repo, capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    outcomes = json.loads(result.stdout.strip().splitlines()[-1])
    for name in ("animated.webp", "T=inf", "T=nan", "T=0", "empty.jpg", "bomb.png"):
        assert outcomes[name] == "refused", (name, outcomes[name])
    for name in ("good.png", "good.jpg", "rgba.png", "photo.webp", "sixteen.png"):
        assert outcomes[name].startswith("png "), (name, outcomes[name])
    assert outcomes["rotated.jpg"] == "png 64x48"  # upright
