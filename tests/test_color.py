import cv2
import numpy as np
import pytest
import tensorflow as tf

from colorize_tf.chroma import color
from colorize_tf.chroma import color_numpy

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
    # Every conversion that takes a space name refuses one it does not know (with the
    # old else-branches gone, an unknown name would otherwise fall into Lab).
    pixel, uint8 = [[0.0, 0.0, 0.0]], [[0, 0, 0]]
    for convert in (lambda: color.rgb_to_luma_chroma(pixel, "hsv"),
                    lambda: color.rgb_uint8_to_luma(uint8, "hsv"),
                    lambda: color.luma_chroma_to_rgb([[0.5]], [[0.0, 0.0]], "hsv"),
                    lambda: color.luma_chroma_to_rgb_uint8([[0.5]], [[0.0, 0.0]], "hsv")):
        with pytest.raises(ValueError, match="unknown colour space"):
            convert()


def test_chroma_spread_and_gray_by_hand():
    # Two pixels with U = 0 and 0.2: variance 0.01 along U, 0 along V -> spread 0.1.
    assert color.chroma_spread([[[0.0, 0.0], [0.2, 0.0]]]) == pytest.approx(0.1)
    assert color.is_gray(np.full((4, 4, 3), 90, np.uint8))
    sepia = np.zeros((4, 4, 3), np.uint8) + np.array([112, 66, 20], np.uint8)  # one tint
    assert color.is_gray(sepia)
    two = np.zeros((2, 2, 3), np.uint8)
    two[0] = [200, 30, 30]  # red row over black: U, V vary by ~0.1 and ~0.4
    assert not color.is_gray(two)


def _lab_to_srgb_numpy(lab):
    """Oracle in float64 numpy, from CIE's and IEC 61966-2-1's definitions."""
    lab = np.asarray(lab, np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], -1)
    xyz = np.where(f > 6.0 / 29.0, f ** 3, 3 * (6.0 / 29.0) ** 2 * (f - 4.0 / 29.0))
    xyz = xyz * np.array([0.95047, 1.0, 1.08883])
    m = np.linalg.inv(np.array([[0.4124564, 0.3575761, 0.1804375],
                                [0.2126729, 0.7151522, 0.0721750],
                                [0.0193339, 0.1191920, 0.9503041]]))
    linear = np.clip(xyz @ m.T, 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear,
                    1.055 * np.maximum(linear, 0.0031308) ** (1 / 2.4) - 0.055)


def test_uint8_luma_equals_float_luma_on_every_level():
    levels = np.arange(256, dtype=np.uint8)
    rgb8 = np.stack([levels, levels[::-1], np.roll(levels, 85)], axis=-1)
    rgb8 = np.concatenate([rgb8, np.repeat(levels[:, None], 3, axis=-1)])  # and grays
    for space in color.COLOR_SPACES:
        expected = color.rgb_to_luma(rgb8.astype(np.float32) / 255.0, space).numpy()
        # The L* table: within 0.007 L* units (7e-5 of luma: 903 L* per unit of Y at
        # the dark end, times half a step of 1/65535), 1/50 of an 8-bit step.
        np.testing.assert_allclose(color.rgb_uint8_to_luma(rgb8, space).numpy(), expected,
                                   atol=7e-5)
    # CIE: L* of sRGB gray 128 is 53.585 (Lindbloom's calculator).
    gray = np.full([1, 3], 128, np.uint8)
    assert abs(float(color.rgb_uint8_to_luma(gray, color.LAB)[0, 0]) * 100 - 53.585) < 0.002


def test_uint8_render_matches_a_numpy_oracle_within_one_step():
    rng = np.random.default_rng(3)
    luma = rng.random((64, 64, 1), dtype=np.float32)
    chroma = rng.uniform(-90, 90, (64, 64, 2)).astype(np.float32)
    got = color.luma_chroma_to_rgb_uint8(luma, chroma, color.LAB).numpy().astype(int)
    srgb = _lab_to_srgb_numpy(np.concatenate([luma * 100.0, chroma], -1))
    expected = (srgb * 255.5).astype(int)  # tf.image.convert_image_dtype's rounding
    assert got.dtype == np.int64 and np.abs(got - expected).max() <= 1
    assert (got != expected).mean() < 0.01  # only at rounding boundaries
    yuv = color.luma_chroma_to_rgb_uint8(luma, chroma / 300.0, color.YUV).numpy()
    np.testing.assert_array_equal(yuv, tf.image.convert_image_dtype(
        color.luma_chroma_to_rgb(luma, chroma / 300.0, color.YUV), tf.uint8, saturate=True))


@pytest.mark.parametrize("rgb,lab", LAB_REFERENCE)
def test_numpy_lab_chroma_matches_published_values(rgb, lab):
    rgb8 = np.round(np.asarray(rgb) * 255).astype(np.uint8)
    np.testing.assert_allclose(color_numpy.rgb_uint8_to_chroma(rgb8, color.LAB), lab[1:],
                               atol=0.02)


@pytest.mark.parametrize("space", color.COLOR_SPACES)
def test_numpy_chroma_equals_the_tf_conversion(space):
    # Data prep's workers count chroma with the numpy twin of the TF conversion that
    # training uses: every level of each channel in mixed combinations plus random
    # colours, within float32 rounding.
    levels = np.arange(256, dtype=np.uint8)
    rgb8 = np.concatenate([
        np.stack([levels, levels[::-1], np.roll(levels, 85)], axis=-1),
        np.random.default_rng(3).integers(0, 256, (4096, 3)).astype(np.uint8)])
    expected = color.rgb_to_luma_chroma(rgb8.astype(np.float32) / 255.0, space)[1].numpy()
    tolerance = 1e-6 if space == color.YUV else 2e-4  # Lab's a, b reach ~110
    np.testing.assert_allclose(color_numpy.rgb_uint8_to_chroma(rgb8, space), expected,
                               atol=tolerance)
