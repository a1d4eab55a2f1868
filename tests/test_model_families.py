"""The battery every registered model family runs (modeling/families.py): a family gets
these checks by registering, nothing else to edit. A toy family of two layers is
registered here, as a new family would be in its own module, to show that it does.

For each family, at a small width: builds at sides that are odd multiples of its
padding multiple, its logits' shape and stride; the same weights from the same seed;
a .keras save and load that computes the same; mixed precision with float32 logits
close to float32's; and an export of a run holding it, reloaded as TF Serving loads
it, colorizing a photo at its own size.
"""
import dataclasses
import json
import shutil

import cv2
import keras
import numpy as np
import pytest

from colorize_tf.chroma.bins import Bins
from colorize_tf.chroma import decoding
from colorize_tf.modeling import blocks
from colorize_tf.modeling import families
from colorize_tf.modeling.model import (
    ARCHITECTURES,
    MODEL_CONFIG_NAME,
    ModelConfig,
    build_model,
    load_checkpoint,
)
from colorize_tf.testing.fake_data import make_photo

TOY = "toy_two_layer"


def build_toy(config, seed=None):
    """A 3x3 conv and a 1x1 conv to the logits: the smallest family there is."""
    init = blocks.kernel_initializers(seed)
    inputs, x = blocks.model_inputs(config)
    x = blocks.conv_bn_relu(x, config.base_filters, "toy", init)
    return keras.Model(inputs, blocks.primary_output(x, config, init), name=TOY)


families.register(families.Family(
    TOY, build_toy, pad_multiple=lambda config: 1, pad_reason=lambda config: "none",
    heads=False, hints=False, global_context=False, decodings=(decoding.BINS,)))


def _config(name, num_bins=6, color_space="yuv"):
    return ModelConfig(architecture=name, num_bins=num_bins, base_filters=4,
                                 depth=2, color_space=color_space)


def _luma(batch, height, width, seed=0):
    return np.random.default_rng(seed).random((batch, height, width, 1), np.float32)


def test_the_toy_family_is_registered_beside_the_built_in_ones():
    assert set(ARCHITECTURES) < set(families.names())
    assert TOY in families.names() and TOY not in ARCHITECTURES
    with pytest.raises(families.errors.Error, match="no model family 'nope'; known: "):
        families.get("nope")
    with pytest.raises(families.errors.Error, match="registered already"):
        families.register(dataclasses.replace(families.get(TOY), output_stride=2))


@pytest.mark.parametrize("name", families.names())
def test_builds_at_odd_multiples_with_logits_at_its_stride(name):
    config = _config(name)
    model = build_model(config, seed=1)
    m, stride = config.pad_multiple, config.output_stride
    for height, width in ((3 * m, 5 * m), (m * 7, m)):
        logits = model(_luma(2, height, width), training=False)
        assert logits.shape == (2, height // stride, width // stride, 6), (height, width)
        assert logits.dtype == "float32" and np.isfinite(logits).all()


@pytest.mark.parametrize("name", families.names())
def test_the_same_seed_gives_the_same_weights(name):
    # A pretrained encoder's layers get their weights from the pretrained file after the
    # build: the seed governs the others.
    def seeded_weights(seed):
        model = build_model(_config(name), seed=seed)
        pretrained = {layer.name for layer in families.get(name).pretrained_layers(model)}
        return [w for layer in model.layers if layer.name not in pretrained
                for w in layer.get_weights()]
    first, again, other = (seeded_weights(s) for s in (3, 3, 4))
    assert first and all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


@pytest.mark.parametrize("name", families.names())
def test_a_saved_model_file_loads_back_computing_the_same(name, tmp_path):
    config = _config(name)
    model = build_model(config, seed=2)
    luma = _luma(1, 2 * config.pad_multiple, 3 * config.pad_multiple)
    model.save(tmp_path / "m.keras")
    loaded = load_checkpoint(str(tmp_path / "m.keras"))
    np.testing.assert_allclose(loaded(luma, training=False), model(luma, training=False),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", families.names())
def test_mixed_precision_keeps_float32_logits_close_to_float32s(name):
    config = _config(name)
    luma = _luma(1, 2 * config.pad_multiple, 2 * config.pad_multiple)
    full = build_model(config, seed=5)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        mixed = build_model(config, seed=5)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    mixed.set_weights(full.get_weights())
    expected = full(luma, training=False).numpy()
    got = mixed(luma, training=False)
    assert got.dtype == "float32"
    # bfloat16 keeps 8 bits of mantissa: a few hundredths of the logits' spread.
    assert np.abs(got.numpy() - expected).max() <= 0.05 * max(1.0, np.ptp(expected))


@pytest.mark.parametrize("name", families.names())
def test_a_run_of_it_exports_and_serves_a_photo_at_its_size(name, tiny_run, tmp_path):
    from colorize_tf.serving import inference
    from colorize_tf.training import exporter
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    bins = Bins.load(str(run))
    config = _config(name, bins.num_bins, bins.grid.color_space)
    with open(run / MODEL_CONFIG_NAME) as f:
        run_config = json.load(f)
    run_config["model"] = dataclasses.asdict(config)
    with open(run / MODEL_CONFIG_NAME, "w") as f:
        json.dump(run_config, f)
    model = build_model(config, seed=7)
    for checkpoint in ("best.keras", "last.keras"):
        model.save(run / "checkpoints" / checkpoint)
    path = exporter.export(str(run), str(tmp_path / "exported"), work_size=64)
    photo = make_photo(45, 70, seed=1)
    colorized = inference.Colorizer(path).colorize(photo)
    assert colorized.shape == photo.shape and colorized.dtype == np.uint8
    # The luma is the photo's: colour only moves the chroma (one 8-bit step of slack).
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY).astype(int)
    assert np.abs(cv2.cvtColor(colorized, cv2.COLOR_RGB2GRAY).astype(int) - gray).mean() < 2
