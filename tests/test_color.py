import cv2
import numpy as np
import pytest
import tensorflow as tf

from colorize_tf import color

# Published sRGB (D65) -> CIE Lab values (e.g. Bruce Lindbloom's calculator).
LAB_REFERENCE = [
    ((1.0, 1.0, 1.0), (100.0, 0.0, 0.0)),
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
    ((1.0, 0.0, 0.0), (53.2408, 80.0925, 67.2032)),
    ((0.0, 1.0, 0.0), (87.7347, -86.1827, 83.1793)),
    ((0.0, 0.0, 1.0), (32.2970, 79.1875, -107.8602)),
]


def test_yuv_golden_values():
    yuv = color.rgb_to_yuv([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.5, 0.5, 0.5]]).numpy()
    np.testing.assert_allclose(yuv[0], [0.299, -0.14714119, 0.61497538], atol=1e-6)
    np.testing.assert_allclose(yuv[1], [1.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(yuv[2], [0.5, 0.0, 0.0], atol=1e-6)


@pytest.mark.parametrize("rgb,lab", LAB_REFERENCE)
def test_lab_matches_published_values(rgb, lab):
    np.testing.assert_allclose(color.rgb_to_lab(rgb).numpy(), lab, atol=0.02)


def test_lab_matches_opencv_float_conversion():
    rgb = np.random.default_rng(0).random((64, 64, 3), dtype=np.float32)
    expected = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)
    # OpenCV's float path uses interpolated tables (a, b come in steps of 1/128; its
    # pure red is off the published value by 0.001, green by 0.02): agreement is
    # 0.6 Lab units at worst, under 0.1 on average, far below one bin (10 units).
    difference = np.abs(color.rgb_to_lab(rgb).numpy() - expected)
    assert difference.max() < 0.6
    assert difference.mean() < 0.1


@pytest.mark.parametrize("rgb,lab", LAB_REFERENCE)
def test_uint8_lab_matches_published_values(rgb, lab):
    rgb8 = np.round(np.asarray(rgb) * 255).astype(np.uint8)
    np.testing.assert_allclose(color.rgb_uint8_to_lab(rgb8).numpy(), lab, atol=0.02)


def test_uint8_lab_equals_float_lab_on_every_level():
    # Every level of each channel, in combinations that mix them (256 x 3 pixels).
    levels = np.arange(256, dtype=np.uint8)
    rgb8 = np.stack([levels, levels[::-1], np.roll(levels, 85)], axis=-1)
    expected = color.rgb_to_lab(rgb8.astype(np.float32) / 255.0).numpy()
    np.testing.assert_allclose(color.rgb_uint8_to_lab(rgb8).numpy(), expected, atol=1e-4)


@pytest.mark.parametrize("space", color.COLOR_SPACES)
def test_round_trip(space):
    rgb = np.random.default_rng(1).random((5, 7, 3), dtype=np.float32)
    luma, chroma = color.rgb_to_luma_chroma(rgb, space)
    assert luma.shape == (5, 7, 1) and chroma.shape == (5, 7, 2)
    assert float(tf.reduce_min(luma)) >= 0.0 and float(tf.reduce_max(luma)) <= 1.0
    back = color.luma_chroma_to_rgb(luma, chroma, space).numpy()
    np.testing.assert_allclose(back, rgb, atol=2e-4)


@pytest.mark.parametrize("space", color.COLOR_SPACES)
def test_same_result_inside_tf_function(space):
    rgb = np.random.default_rng(2).random((2, 4, 4, 3), dtype=np.float32)
    eager = color.rgb_to_luma_chroma(rgb, space)
    graph = tf.function(lambda x: color.rgb_to_luma_chroma(x, space))(rgb)
    for a, b in zip(eager, graph):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5)


def test_unknown_space_is_refused():
    with pytest.raises(ValueError, match="unknown colour space"):
        color.rgb_to_luma_chroma([[0.0, 0.0, 0.0]], "hsv")


def test_chroma_spread_and_gray_by_hand():
    # Two pixels with U = 0 and 0.2: variance 0.01 along U, 0 along V -> spread 0.1.
    assert color.chroma_spread([[[0.0, 0.0], [0.2, 0.0]]]) == pytest.approx(0.1)
    assert color.is_gray(np.full((4, 4, 3), 90, np.uint8))
    sepia = np.zeros((4, 4, 3), np.uint8) + np.array([112, 66, 20], np.uint8)  # one tint
    assert color.is_gray(sepia)
    two = np.zeros((2, 2, 3), np.uint8)
    two[0] = [200, 30, 30]  # red row over black: U, V vary by ~0.1 and ~0.4
    assert not color.is_gray(two)
