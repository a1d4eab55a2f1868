"""The model shipped in saved_models/ (skipped when it is absent)."""
import os

import numpy as np
import pytest

from colorize_tf import inference

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
