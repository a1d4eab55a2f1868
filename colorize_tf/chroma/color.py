"""Colour spaces in core TF ops: sRGB <-> YUV and sRGB <-> CIE Lab (D65).

All functions take float tensors of any shape [..., 3] and are graph-safe, so the
same code runs eagerly, inside tf.data and inside an exported SavedModel.
RGB is sRGB in [0, 1]. YUV uses the analogue BT.601 matrix (Y in [0, 1],
U in [-0.436, 0.436], V in [-0.615, 0.615]), as the ColorUNet code does.
Lab is CIE 1976 L*a*b* with the D65 white point (L in [0, 100], a, b roughly
in [-110, 110]), as in Zhang et al. 2016.

tensorflow-io would offer these conversions, but its last release cannot load
its native ops under TF 2.21, so they are written here with plain tf ops.
"""
import numpy as np
import tensorflow as tf

# The constants live in color_numpy (data prep's TF-free workers use them too); the
# names are kept here as well, as the module of colour that the rest imports.
from colorize_tf.chroma.color_numpy import (  # noqa: F401
    COLOR_SPACES, D65_WHITE, GRAY_SPREAD, LAB, LAB_EPSILON, LAB_KAPPA, LAB_L_MAX, RGB_TO_XYZ,
    RGB_TO_YUV, SRGB_KNEE, YUV, check_color_space, chroma_spread, is_gray, yuv_chroma_spread)

# The inverses, computed once in float64 (they become graph constants).
_YUV_TO_RGB = np.linalg.inv(np.array(RGB_TO_YUV, np.float64)).tolist()
_XYZ_TO_RGB = np.linalg.inv(np.array(RGB_TO_XYZ, np.float64)).tolist()


def _apply_matrix(x, matrix):
    """x [..., 3] times matrix^T, i.e. out_i = sum_j matrix[i][j] * x_j."""
    return tf.tensordot(x, tf.constant(np.transpose(matrix), dtype=x.dtype), axes=1)


def rgb_to_yuv(rgb):
    """sRGB [..., 3] in [0, 1] -> YUV [..., 3]."""
    rgb = tf.convert_to_tensor(rgb, tf.float32)
    return _apply_matrix(rgb, RGB_TO_YUV)


def yuv_to_rgb(yuv):
    """YUV [..., 3] -> sRGB [..., 3] (not clipped)."""
    yuv = tf.convert_to_tensor(yuv, tf.float32)
    return _apply_matrix(yuv, _YUV_TO_RGB)


def srgb_to_linear(rgb):
    """Undo the sRGB transfer curve (IEC 61966-2-1)."""
    rgb = tf.clip_by_value(rgb, 0.0, 1.0)
    return tf.where(rgb <= SRGB_KNEE, rgb / 12.92, tf.pow((rgb + 0.055) / 1.055, 2.4))


def linear_to_srgb(linear):
    """Apply the sRGB transfer curve; clips to [0, 1]."""
    linear = tf.clip_by_value(linear, 0.0, 1.0)
    return tf.where(linear <= 0.0031308, linear * 12.92,
                    1.055 * tf.pow(tf.maximum(linear, 0.0031308), 1.0 / 2.4) - 0.055)


def rgb_to_lab(rgb):
    """sRGB [..., 3] in [0, 1] -> CIE Lab (D65) [..., 3]."""
    return _linear_to_lab(srgb_to_linear(tf.convert_to_tensor(rgb, tf.float32)))


def rgb_uint8_to_lab(rgb):
    """sRGB uint8 [..., 3] -> CIE Lab (D65) [..., 3]: rgb_to_lab(rgb / 255) with the
    transfer curve looked up in a 256-entry table of srgb_to_linear's own values (three
    pow per pixel fewer: about 40% of the conversion's time on a CPU)."""
    table = srgb_to_linear(tf.range(256, dtype=tf.float32) / 255.0)
    return _linear_to_lab(tf.gather(table, tf.cast(rgb, tf.int32)))


# Tables over linear light quantised to 1/65535 (64K entries, cache-resident): looking
# up L* and the sRGB curve replaces a pow per value. The sRGB table's error (12.92 / 2 /
# 65535 of the sRGB value at most, where the curve is steepest) moves an 8-bit result
# by one step at a rounding boundary only: 0.14% of the values of a test photo.
_SRGB_STEPS = 65535


def rgb_uint8_to_luma(rgb, color_space):
    """sRGB uint8 [..., 3] -> luma [..., 1] in [0, 1]: rgb_to_luma(rgb / 255) computed
    from the three 8-bit values with tables. Lab: Y is the sum of each channel's linear
    light times its weight (three 256-entry tables), and L* = 116 f(Y) - 16 is looked up
    with Y quantised to 1/65535 (within 0.007 L* units, 1/50 of an 8-bit step of the
    result; 4.5x faster than the float conversion at 3000x2000)."""
    check_color_space(color_space)
    if color_space == YUV:
        return tf.tensordot(tf.cast(rgb, tf.float32) / 255.0,
                            tf.constant(RGB_TO_YUV[0], tf.float32), axes=1)[..., None]
    linear = srgb_to_linear(tf.range(256, dtype=tf.float32) / 255.0)
    index = tf.cast(rgb, tf.int32)
    y = sum(tf.gather(linear * (weight / D65_WHITE[1]), index[..., c])
            for c, weight in enumerate(RGB_TO_XYZ[1]))
    steps = tf.range(_SRGB_STEPS + 1, dtype=tf.float32) / _SRGB_STEPS
    l_table = (116.0 * _lab_f(steps) - 16.0) / LAB_L_MAX
    return tf.gather(l_table, tf.cast(tf.clip_by_value(y, 0.0, 1.0) * _SRGB_STEPS + 0.5,
                                      tf.int32))[..., None]


def luma_chroma_to_rgb_uint8(luma, chroma, color_space):
    """(luma [..., 1] in [0, 1], chroma [..., 2]) -> sRGB uint8 [..., 3]: what
    tf.image.convert_image_dtype(luma_chroma_to_rgb(...), tf.uint8, saturate=True)
    gives, but for Lab the sRGB curve is looked up in a table (_SRGB_STEPS: at most one
    8-bit step apart, at rounding boundaries) and XYZ -> RGB is one matrix product."""
    check_color_space(color_space)
    if color_space == YUV:
        return tf.image.convert_image_dtype(luma_chroma_to_rgb(luma, chroma, color_space),
                                            tf.uint8, saturate=True)
    luma = tf.convert_to_tensor(luma, tf.float32)
    chroma = tf.convert_to_tensor(chroma, tf.float32)
    fy = luma * (LAB_L_MAX / 116.0) + 16.0 / 116.0
    # (fx, fy, fz) = fy + (a / 500, 0, -b / 200)
    f = fy + tf.tensordot(chroma, tf.constant([[1 / 500, 0, 0], [0, 0, -1 / 200]],
                                              tf.float32), axes=1)
    cube = f * f * f
    xyz = tf.where(cube > LAB_EPSILON, cube, (116.0 * f - 16.0) / LAB_KAPPA)
    # diag(white) then XYZ -> linear RGB, folded into one matrix
    to_rgb = np.asarray(_XYZ_TO_RGB) * np.asarray(D65_WHITE)[None, :]
    linear = _apply_matrix(xyz, to_rgb)
    table = tf.image.convert_image_dtype(
        linear_to_srgb(tf.range(_SRGB_STEPS + 1, dtype=tf.float32) / _SRGB_STEPS),
        tf.uint8, saturate=True)
    index = tf.cast(tf.clip_by_value(linear, 0.0, 1.0) * _SRGB_STEPS + 0.5, tf.int32)
    return tf.gather(table, index)


def _lab_f(t):
    """CIE's f(t): the cube root above (6/29)^3, a line below."""
    return tf.where(t > LAB_EPSILON, tf.pow(tf.maximum(t, LAB_EPSILON), 1.0 / 3.0),
                    (LAB_KAPPA * t + 16.0) / 116.0)


def _linear_to_lab(linear):
    """Linear-light RGB [..., 3] -> CIE Lab (D65) [..., 3]."""
    xyz = _apply_matrix(linear, RGB_TO_XYZ) / tf.constant(D65_WHITE)
    f = _lab_f(xyz)
    fx, fy, fz = tf.unstack(f, axis=-1)
    return tf.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def lab_to_rgb(lab):
    """CIE Lab (D65) [..., 3] -> sRGB [..., 3] in [0, 1] (out-of-gamut colours clipped)."""
    lab = tf.convert_to_tensor(lab, tf.float32)
    l, a, b = tf.unstack(lab, axis=-1)
    fy = (l + 16.0) / 116.0
    f = tf.stack([fy + a / 500.0, fy, fy - b / 200.0], axis=-1)
    xyz = tf.where(f ** 3 > LAB_EPSILON, f ** 3, (116.0 * f - 16.0) / LAB_KAPPA)
    xyz = xyz * tf.constant(D65_WHITE)
    return linear_to_srgb(_apply_matrix(xyz, _XYZ_TO_RGB))


def rgb_to_luma_chroma(rgb, color_space):
    """sRGB [..., 3] in [0, 1] -> (luma [..., 1] in [0, 1], chroma [..., 2]).

    Luma is Y for YUV and L / 100 for Lab, so the model always sees [0, 1].
    """
    check_color_space(color_space)
    if color_space == YUV:
        converted = rgb_to_yuv(rgb)
        return converted[..., :1], converted[..., 1:]
    converted = rgb_to_lab(rgb)
    return converted[..., :1] / LAB_L_MAX, converted[..., 1:]


def rgb_to_luma(rgb, color_space):
    """sRGB [..., 3] in [0, 1] -> luma [..., 1] in [0, 1]."""
    return rgb_to_luma_chroma(rgb, color_space)[0]


def luma_chroma_to_rgb(luma, chroma, color_space):
    """(luma [..., 1] in [0, 1], chroma [..., 2]) -> sRGB [..., 3] clipped to [0, 1]."""
    check_color_space(color_space)
    luma = tf.convert_to_tensor(luma, tf.float32)
    chroma = tf.convert_to_tensor(chroma, tf.float32)
    if color_space == YUV:
        return tf.clip_by_value(yuv_to_rgb(tf.concat([luma, chroma], -1)), 0.0, 1.0)
    return lab_to_rgb(tf.concat([luma * LAB_L_MAX, chroma], -1))
