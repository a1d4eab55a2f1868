"""The colour spaces' constants, and the few conversions data prep needs, in numpy.

Data prep's worker processes do not load TensorFlow (importing it costs ~2 s per
process, most of a small build: issue 13), so they convert with these. The constants
live here once; chroma/color.py builds its TF ops, used in training and in the SavedModel,
from the same numbers. YUV is the analogue BT.601 matrix, Lab is CIE 1976 L*a*b*
with the D65 white point (see chroma/color.py for the ranges).
"""
import cv2
import numpy as np

from colorize_tf import errors

YUV = "yuv"
LAB = "lab"
COLOR_SPACES = (YUV, LAB)

# BT.601 analogue YUV, rows give Y, U, V from R, G, B.
RGB_TO_YUV = [
    [0.299, 0.587, 0.114],
    [-0.14714119, -0.28886916, 0.43601035],
    [0.61497538, -0.51496512, -0.10001026],
]
# sRGB (linear) -> XYZ, IEC 61966-2-1.
RGB_TO_XYZ = [
    [0.4124564, 0.3575761, 0.1804375],
    [0.2126729, 0.7151522, 0.0721750],
    [0.0193339, 0.1191920, 0.9503041],
]
# D65 reference white (X, Y, Z) with Y = 1.
D65_WHITE = (0.95047, 1.0, 1.08883)
LAB_EPSILON = 216.0 / 24389.0  # (6/29)^3, CIE's exact form
LAB_KAPPA = 24389.0 / 27.0
LAB_L_MAX = 100.0
SRGB_KNEE = 0.04045  # sRGB values at or below it are linear (IEC 61966-2-1)

# The one definition of a gray photo: YUV chroma standard deviation below this (gray,
# or a single sepia tint). Such a photo teaches nothing about colour (data prep skips
# it: 191 of the 5,737 landscape photos) and cannot serve as a ground truth.
GRAY_SPREAD = 0.01


def check_color_space(color_space):
    if color_space not in COLOR_SPACES:
        raise errors.Error(f"unknown colour space {color_space!r}; expected one of "
                           f"{COLOR_SPACES}")


def _srgb_to_linear_table():
    """float32 [256]: linear light of each 8-bit sRGB value."""
    v = np.arange(256, dtype=np.float64) / 255.0
    return np.where(v <= SRGB_KNEE, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


_LINEAR_TABLE = _srgb_to_linear_table()
# Lab's chroma from linear RGB: XYZ divided by the white, one matrix.
_RGB_TO_XYZ_OVER_WHITE = (np.asarray(RGB_TO_XYZ) / np.asarray(D65_WHITE)[:, None]).astype(
    np.float32)


def rgb_uint8_to_chroma(rgb, color_space):
    """sRGB uint8 [..., 3] -> chroma float32 [..., 2]: (U, V) for YUV, (a, b) for Lab.

    Equals color.rgb_to_luma_chroma(rgb / 255)[1] within float32 rounding (tested)."""
    check_color_space(color_space)
    rgb = np.asarray(rgb)
    if color_space == YUV:
        return (rgb.astype(np.float32) / 255.0) @ np.asarray(RGB_TO_YUV, np.float32)[1:].T
    xyz = _LINEAR_TABLE[rgb] @ _RGB_TO_XYZ_OVER_WHITE.T
    f = np.where(xyz > LAB_EPSILON, np.cbrt(xyz), (LAB_KAPPA * xyz + 16.0) / 116.0)
    return np.stack([500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])],
                    axis=-1).astype(np.float32)


def chroma_spread(chroma):
    """Standard deviation of chroma [..., 2] around its mean: sqrt(var_0 + var_1).
    OpenCV's meanStdDev (sums in float64): numpy's var over a last axis of 2 costs a
    fifth of a data prep worker's time per photo."""
    flat = np.ascontiguousarray(chroma, np.float64).reshape(-1, 1, 2)
    _, std = cv2.meanStdDev(flat)
    return float(np.sqrt(np.sum(std ** 2)))


def yuv_chroma_spread(rgb_uint8):
    """chroma_spread of an RGB uint8 image [H, W, 3] in YUV."""
    rgb = np.asarray(rgb_uint8, np.float64) / 255.0
    return chroma_spread(rgb @ np.asarray(RGB_TO_YUV, np.float64)[1:].T)


def is_gray(rgb_uint8, threshold=GRAY_SPREAD):
    """True when an RGB uint8 image [H, W, 3] is gray or single-tint."""
    return yuv_chroma_spread(rgb_uint8) < threshold
