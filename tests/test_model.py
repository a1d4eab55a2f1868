import keras
import numpy as np
import pytest

from colorize_tf.modeling import colorunet
from colorize_tf.modeling.model import ModelConfig, interpolate_weights


def test_logits_shape_any_size_divisible_by_8():
    model = colorunet.build_colorunet(ModelConfig(num_bins=7, base_filters=4))
    for h, w in [(16, 24), (40, 8)]:
        out = model(np.zeros((2, h, w, 1), np.float32))
        assert out.shape == (2, h, w, 7)
    assert model.output.dtype == "float32"


def test_every_layer_named_and_paper_skips():
    model = colorunet.build_colorunet(ModelConfig())
    names = [layer.name for layer in model.layers]
    assert "up2_skip" in names and "up3_skip" in names and "up1_skip" not in names
    assert names[-1] == "logits"
    assert not any(n.startswith(("conv2d", "batch_normalization")) for n in names)
    # 16/32/64 filters: a few hundred thousand parameters, as the paper's ~142k-387k.
    assert 100_000 < model.count_params() < 500_000


def test_heads():
    model = colorunet.build_colorunet(ModelConfig(
        num_bins=5, base_filters=4, regression_head=True, num_scenes=3))
    out = model(np.zeros((1, 16, 16, 1), np.float32))
    assert out["logits"].shape == (1, 16, 16, 5)
    assert out["chroma"].shape == (1, 16, 16, 2)
    assert out["scene"].shape == (1, 3)


def test_mixed_precision_keeps_float32_logits():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = colorunet.build_colorunet(ModelConfig(num_bins=5, base_filters=4))
        assert model(np.zeros((1, 16, 16, 1), np.float32)).dtype == "float32"
        assert model.get_layer("down1_a_conv").compute_dtype == "float16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_seed_alone_decides_the_initial_weights():
    config = ModelConfig(num_bins=5, base_filters=4, depth=2)
    keras.utils.set_random_seed(1)
    first = colorunet.build_colorunet(config, seed=3).get_weights()
    keras.utils.set_random_seed(2)  # the process's global seed does not matter
    again = colorunet.build_colorunet(config, seed=3).get_weights()
    other = colorunet.build_colorunet(config, seed=4).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])
    # Each layer its own draw: the two 3x3x4x4 kernels of a cell differ.
    kernels = [w for w in first if w.shape == (3, 3, 4, 4)]
    assert len(kernels) >= 2 and not np.array_equal(kernels[0], kernels[1])


def test_global_context_is_the_fusion_of_the_pooled_bottleneck():
    config = ModelConfig(num_bins=5, base_filters=4, depth=2, global_context=True)
    model = colorunet.build_colorunet(config, seed=1)
    x = np.random.default_rng(0).uniform(size=(2, 16, 24, 1)).astype(np.float32)
    inner = keras.Model(model.input, [model.get_layer("bottleneck_b_relu").output,
                                      model.get_layer("global_relu").output])
    bottleneck, fused = (t.numpy() for t in inner(x))
    w1, b1 = model.get_layer("global_features").get_weights()
    w2, b2 = model.get_layer("global_fusion").get_weights()
    # Numpy oracle: ReLU(x + W2 ReLU(W1 mean(x) + b1) + b2), the same vector everywhere.
    g = np.maximum(bottleneck.mean(axis=(1, 2)) @ w1 + b1, 0.0) @ w2 + b2  # [2, 8]
    expected = np.maximum(bottleneck + g[:, None, None, :], 0.0)
    np.testing.assert_allclose(fused, expected, rtol=1e-5, atol=1e-5)
    assert bottleneck.shape == (2, 4, 6, 8)


def test_global_context_lets_a_far_pixel_change_the_colour():
    """A pixel at one corner of a 64 px photo is outside the depth-3 U-Net's receptive
    field (~70 px wide, centred) at the opposite corner; with the fusion layer it is
    not."""
    photo = np.random.default_rng(0).uniform(size=(1, 64, 64, 1)).astype(np.float32)
    changed = photo.copy()
    changed[0, :8, :8, 0] = 1.0 - changed[0, :8, :8, 0]
    for context in (False, True):
        model = colorunet.build_colorunet(ModelConfig(
            num_bins=5, base_filters=4, depth=3, global_context=context), seed=2)
        far = np.abs(model(changed)[0, -1, -1] - model(photo)[0, -1, -1]).max()
        # Exactly unchanged without it (convolutions are local); at initialisation the
        # signal through the fusion is small (~1e-7 of logits ~6e-3) but not zero.
        assert (far > 0.0) == context, far


def test_interpolated_weights_are_the_wise_ft_mix_of_every_variable():
    # Every weight (kernels, biases, batch-norm scales and moving statistics) of two
    # models of one architecture given independent random values: the mix is numpy's
    # (1 - share) x base + share x own, share 1 leaves the model as it was.
    config = ModelConfig(num_bins=5, base_filters=4, depth=2)
    rng = np.random.default_rng(0)
    own, base = (colorunet.build_colorunet(config, seed=s) for s in (1, 2))
    for m in (own, base):
        m.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in m.get_weights()])
    own_values, base_values = own.get_weights(), base.get_weights()
    interpolate_weights(own, base, 0.25)
    mixed = own.get_weights()
    assert len(mixed) == len(own_values) > 20
    for m, o, b in zip(mixed, own_values, base_values):
        np.testing.assert_allclose(m, 0.75 * b + 0.25 * o, rtol=1e-6, atol=1e-6)
    interpolate_weights(own, base, 1.0)
    assert all(np.array_equal(a, b) for a, b in zip(own.get_weights(), mixed))
    interpolate_weights(own, base, 0.0)
    assert all(np.array_equal(a, b) for a, b in zip(own.get_weights(), base_values))


def test_interpolation_refuses_other_architectures_and_shares():
    own = colorunet.build_colorunet(ModelConfig(num_bins=5, base_filters=4, depth=2))
    wider = colorunet.build_colorunet(ModelConfig(num_bins=5, base_filters=8, depth=2))
    deeper = colorunet.build_colorunet(ModelConfig(num_bins=5, base_filters=4, depth=3))
    with pytest.raises(ValueError, match="weights of shapes"):
        interpolate_weights(own, wider, 0.5)
    with pytest.raises(ValueError, match="differ in their layers"):
        interpolate_weights(own, deeper, 0.5)
    for share in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
            interpolate_weights(own, own, share)
