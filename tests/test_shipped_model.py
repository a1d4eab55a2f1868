"""The model shipped in saved_models/ (skipped when it is absent)."""
import os

import numpy as np
import pytest

from colorize_tf.serving import inference

SHIPPED = inference.DEFAULT_SAVED_MODEL


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
