"""Colour hints (Zhang et al. 2017, Real-Time User-Guided Image Colorization): a few
points where the colour is given, as the hints model's two extra inputs.

    hint_chroma [H, W, 2]: the chroma of the hint covering each pixel, in the bins'
        colour space (0 where none); hint_mask [H, W, 1]: 1 where a hint covers.

Training and evaluation simulate them from the true chroma (simulate); at serve time
the user's points, in coordinates relative to the photo, and RGB colours are painted
at the model's working size (from_points). Core TF ops only: both run in tf.data and
inside the SavedModel.
"""
import math
import numbers

import numpy as np
import tensorflow as tf

from colorize_tf import errors
from colorize_tf.chroma import color

# Zhang et al. 2017, section 3.3: the number of points drawn from a geometric
# distribution with p = 1/8 (here counted from 0, so 1 image in 8 gets none), each
# revealing the mean colour of a patch of side 1 to 9 px drawn uniformly.
GEOMETRIC_P = 1.0 / 8.0
MAX_POINTS = 32  # P(more than 32 points) = (7/8)^33 < 1.2%: those are cut to 32
PATCH_SIDES = (1, 9)  # px
# A user's point at serve time: a patch of this side (px, at the working size), the
# middle of the simulated sides' range at the 96-128 px the shipped models work at.
POINT_PATCH_SIDE = 3
PADDING = -1.0  # a point row marked by a negative coordinate is padding, not a hint


def _paint(top, left, side, chroma, active, height, width):
    """Squares [top, top + side) x [left, left + side) filled with chroma [K, 2] where
    active [K] -> (hint_chroma [H, W, 2], hint_mask [H, W, 1]); a later point covers an
    earlier one where they overlap."""
    rows = tf.range(height)[None, :]
    cols = tf.range(width)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < (top + side)[:, None])  # [K, H]
    in_cols = (cols >= left[:, None]) & (cols < (left + side)[:, None])  # [K, W]
    cover = in_rows[:, :, None] & in_cols[:, None, :] & active[:, None, None]
    rank = tf.cast(cover, tf.int32) * tf.range(1, tf.shape(top)[0] + 1)[:, None, None]
    owner = tf.reduce_max(rank, axis=0)  # [H, W]: 1 + the index of the last covering point
    values = tf.concat([tf.zeros([1, 2], tf.float32), tf.cast(chroma, tf.float32)], axis=0)
    hint_chroma = tf.gather(values, owner)
    return hint_chroma, tf.cast(owner > 0, tf.float32)[..., None]


def simulate(chroma, mask, seed, count=None):
    """Hints revealed from the truth: chroma [H, W, 2] and mask [H, W, 1] of one image,
    seed int [2] (stateless), count None (drawn: Geometric(GEOMETRIC_P), at most
    MAX_POINTS) or an int32 scalar (evaluation) -> (hint_chroma [H, W, 2], hint_mask
    [H, W, 1]). Each point is a square of side drawn from PATCH_SIDES (at most the
    image's), placed uniformly where it lies wholly inside the mask, filled with the
    mean true chroma of that square; a square that would cross the mask is dropped."""
    shape = tf.shape(chroma)
    height, width = shape[0], shape[1]
    seeds = [tf.random.experimental.stateless_fold_in(seed, i) for i in range(4)]
    if count is None:
        uniform = tf.random.stateless_uniform([], seeds[0], 1e-7, 1.0)
        count = tf.cast(tf.floor(tf.math.log(uniform) / math.log(1.0 - GEOMETRIC_P)),
                        tf.int32)
    count = tf.minimum(tf.cast(count, tf.int32), MAX_POINTS)
    side = tf.random.stateless_uniform([MAX_POINTS], seeds[1], PATCH_SIDES[0],
                                       PATCH_SIDES[1] + 1, dtype=tf.int32)
    side = tf.minimum(side, tf.minimum(height, width))
    where = tf.random.stateless_uniform([MAX_POINTS, 2], seeds[2])
    top = tf.cast(where[:, 0] * tf.cast(height - side + 1, tf.float32), tf.int32)
    left = tf.cast(where[:, 1] * tf.cast(width - side + 1, tf.float32), tf.int32)
    top, left = tf.minimum(top, height - side), tf.minimum(left, width - side)
    # Sums over each square from a summed-area table of (chroma * mask, mask).
    mask = tf.cast(mask, tf.float32)
    table = tf.concat([tf.cast(chroma, tf.float32) * mask, mask], axis=-1)
    table = tf.pad(tf.cumsum(tf.cumsum(table, axis=0), axis=1), [[1, 0], [1, 0], [0, 0]])

    def at(rows, cols):
        return tf.gather_nd(table, tf.stack([rows, cols], axis=-1))
    bottom, right = top + side, left + side
    sums = at(bottom, right) - at(top, right) - at(bottom, left) + at(top, left)
    area = tf.cast(side * side, tf.float32)
    inside = sums[:, 2] >= area - 0.5
    mean = sums[:, :2] / tf.maximum(sums[:, 2:], 1.0)
    active = (tf.range(MAX_POINTS) < count) & inside
    return _paint(top, left, side, mean, active, height, width)


def check_points(points, colors):
    """points float [B, K, 2] (row, column relative to the photo, 0-1; a row with a
    negative coordinate is padding), colors uint8 [B, K, 3] -> the same, after refusing
    (InvalidArgument) other shapes, NaN, and points outside the photo."""
    padding = tf.reduce_any(points < 0.0, axis=-1)
    outside = tf.reduce_any(points > 1.0, axis=-1) | tf.reduce_any(
        tf.math.is_nan(points), axis=-1)
    with tf.control_dependencies([
            tf.debugging.assert_equal(tf.shape(points)[:2], tf.shape(colors)[:2],
                                      message="hint_points and hint_colors must have one "
                                              "row per hint, for each image"),
            tf.debugging.assert_equal(tf.reduce_any(outside & ~padding), False,
                                      message="a hint point is outside the image: give "
                                              "(row, column) in [0, 1], or a negative "
                                              "coordinate for padding")]):
        return tf.identity(points), tf.identity(colors)


def from_points(points, colors, height, width, color_space):
    """One photo's points float [K, 2] (checked by check_points) and colours uint8
    [K, 3] -> (hint_chroma [h, w, 2], hint_mask [h, w, 1]) at the working size h x w:
    each point a square of POINT_PATCH_SIDE px centred on it, with the chroma of its
    colour in color_space."""
    active = tf.reduce_all(points >= 0.0, axis=-1)
    rgb = tf.cast(colors, tf.float32)[:, None, :] / 255.0  # [K, 1, 3]
    chroma = color.rgb_to_luma_chroma(rgb, color_space)[1][:, 0, :]
    side = tf.fill(tf.shape(points)[:1], tf.minimum(POINT_PATCH_SIDE,
                                                    tf.minimum(height, width)))
    size = tf.cast(tf.stack([height, width]), tf.float32)
    centre = tf.cast(tf.minimum(tf.floor(points * size), size - 1.0), tf.int32)
    top = tf.clip_by_value(centre[:, 0] - side // 2, 0, height - side)
    left = tf.clip_by_value(centre[:, 1] - side // 2, 0, width - side)
    return _paint(top, left, side, chroma, active, height, width)


def point_arrays(per_image):
    """The user's hints for a batch -> (points float32 [B, K, 2], colours uint8 [B, K, 3])
    for colorize_with_hints, K the most hints of one image (at least 1), shorter lists
    padded with PADDING. per_image: for each image a list (or None) of hints
    {"point": (row, column) relative to the photo, 0-1, "color": (r, g, b) 0-255}.
    ValueError naming the first bad hint."""
    for i, hints in enumerate(per_image):
        if hints is not None and not isinstance(hints, (list, tuple)):
            raise errors.Error(f"the hints of image {i} must be a list of hints (or None), "
                               f"got {type(hints).__name__}"
                               + (": one image's hints are [hint, ...], so a batch of one "
                                "is [[hint, ...]]" if isinstance(hints, dict) else ""))
    lists = [list(hints or []) for hints in per_image]
    k = max([1] + [len(hints) for hints in lists])
    points = np.full((len(lists), k, 2), PADDING, np.float32)
    colors = np.zeros((len(lists), k, 3), np.uint8)
    for i, hints in enumerate(lists):
        for j, hint in enumerate(hints):
            points[i, j], colors[i, j] = _checked_hint(hint)
    return points, colors


def _checked_hint(hint):
    """-> ((row, column), (r, g, b)) of one hint dict, or ValueError saying what is wrong."""
    if not isinstance(hint, dict) or set(hint) != {"point", "color"}:
        raise errors.Error(f"a hint is {{\"point\": [row, column], \"color\": [r, g, b]}}, "
                           f"got {hint!r}")
    # numpy arrays are as good as lists (their elements are numbers.Real / Integral).
    point, rgb = (v.tolist() if isinstance(v, np.ndarray) else v
                  for v in (hint["point"], hint["color"]))
    if (not isinstance(point, (list, tuple)) or len(point) != 2 or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) and 0.0 <= v <= 1.0
            for v in point)):
        raise errors.Error(f"a hint's point is (row, column), each in [0, 1] relative to the "
                           f"photo, got {point!r}")
    if (not isinstance(rgb, (list, tuple)) or len(rgb) != 3 or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and 0 <= v <= 255
            for v in rgb)):
        raise errors.Error(f"a hint's color is (r, g, b), integers 0-255, got {rgb!r}")
    return tuple(point), tuple(rgb)
