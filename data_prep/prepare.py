"""Per-photo work of data prep: decode a file's bytes, reject what teaches nothing,
Lanczos-fit into the training frame, PNG-encode. Pure functions, used by the
build_records entry point and its worker processes.
"""
import dataclasses
import functools
import os

import cv2
import numpy as np
import tensorflow as tf

from colorize_tf import bins as bins_lib
from colorize_tf import color
from colorize_tf import image_files

# Skip reasons, as they appear in the report.
UNREADABLE = "unreadable"
NOT_AN_IMAGE = "not_an_image"
TRUNCATED = "truncated"
TOO_SMALL = "too_small"
GRAYSCALE = "grayscale"
DUPLICATE = "duplicate"
TOO_LARGE = "too_large"
SKIP_REASONS = (UNREADABLE, NOT_AN_IMAGE, TRUNCATED, TOO_SMALL, TOO_LARGE, GRAYSCALE, DUPLICATE)

_SIGNATURES = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)


_EXTENSION_FORMATS = {"jpg": "jpeg", "jpe": "jpeg", "tif": "tiff"}


class SkipImage(Exception):
    """A photo that data prep leaves out, with one of SKIP_REASONS and a detail."""

    def __init__(self, reason, detail):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


ALPHA_BACKGROUNDS = ("white", "black")


@dataclasses.dataclass(frozen=True)
class PrepConfig:
    """frame_size: side of the square frame (px); min_size: shorter side below which a
    photo is too small (px); grayscale_threshold: chroma standard deviation in YUV
    units below which a photo counts as gray or single-tint (sepia); alpha_background:
    "white" (as the serving graph does) or "black", what transparent pixels become;
    png_compression: 0-9; max_pixels: larger photos (by their header) are skipped
    before decoding."""
    frame_size: int = 256
    color_space: str = color.YUV
    min_size: int = 32
    grayscale_threshold: float = color.GRAY_SPREAD
    alpha_background: str = "white"
    png_compression: int = 1
    max_pixels: int = image_files.DEFAULT_MAX_PIXELS


def sniff_format(data):
    """The image format from the file's first bytes, or None."""
    for magic, name in _SIGNATURES:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def decode_image(data, alpha_background="white", name="",
                 max_pixels=image_files.DEFAULT_MAX_PIXELS):
    """Encoded bytes -> (RGB uint8 [H, W, 3], notes), or SkipImage.

    notes lists what was unusual but handled (a GIF named .jpg, alpha dropped, ...).

    JPEG is decoded with EXIF orientation applied and CMYK converted; other formats
    keep their alpha, which is composited over `alpha_background`; 16-bit images
    are scaled to 8 bits; GIF gives its first frame.
    """
    if not data:
        raise SkipImage(NOT_AN_IMAGE, "empty file (0 bytes)")
    kind = sniff_format(data)
    if kind is None:
        raise SkipImage(NOT_AN_IMAGE, f"unknown file signature {data[:8]!r}")
    try:
        image_files.check_pixels(data, max_pixels)
    except image_files.ImageRejected as e:
        raise SkipImage(TOO_LARGE, str(e)) from None
    if kind == "jpeg" and not image_files.jpeg_is_complete(data):
        raise SkipImage(TRUNCATED, "JPEG data ends before its end-of-image marker")
    notes = []
    extension = os.path.splitext(name)[1].lower().lstrip(".")
    if extension and _EXTENSION_FORMATS.get(extension, extension) != kind:
        notes.append(f"{kind.upper()} data in a .{extension} file")
    if kind == "gif":
        notes.append("GIF: first frame used")
    buffer = np.frombuffer(data, np.uint8)
    flags = cv2.IMREAD_COLOR if kind == "jpeg" else cv2.IMREAD_UNCHANGED
    try:
        image = cv2.imdecode(buffer, flags)
    except cv2.error as e:
        raise SkipImage(TRUNCATED, f"OpenCV failed to decode this {kind}: {e}") from None
    if image is None:
        raise SkipImage(TRUNCATED, f"OpenCV could not decode this {kind} (damaged or cut short)")
    if image.dtype != np.uint8:
        notes.append(f"{image.dtype} samples scaled to 8 bits")
    if image.dtype == np.uint16:
        image = np.round(image.astype(np.float32) / 257.0).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = (np.clip(image.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if image.ndim == 2:
        image = image[..., None]
    channels = image.shape[2]
    if channels == 1:
        notes.append("single-channel image")
        return np.repeat(image, 3, axis=2), notes
    if channels == 2:  # gray + alpha -> BGRA
        image = np.concatenate([np.repeat(image[..., :1], 3, axis=2), image[..., 1:]], axis=2)
    if image.shape[2] == 4:
        if kind != "gif":
            notes.append(f"alpha channel dropped, transparent pixels composited over "
                         f"{alpha_background}" if image[..., 3].min() < 255
                         else "alpha channel dropped (fully opaque)")
        bgr = image[..., :3].astype(np.float32)
        alpha = image[..., 3:].astype(np.float32) / 255.0
        background = 255.0 if alpha_background == "white" else 0.0
        image = (bgr * alpha + background * (1.0 - alpha) + 0.5).astype(np.uint8)
    return np.ascontiguousarray(image[..., 2::-1]), notes


def fitted_size(height, width, frame_size):
    """(h, w) after shrinking to fit the frame keeping the aspect ratio; never enlarges."""
    scale = min(1.0, frame_size / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def lanczos_resize(image, size):
    """uint8 [H, W, C] -> uint8 [size[0], size[1], C] with antialiased Lanczos-3.

    tf.image.resize(antialias=True) low-pass filters when shrinking (OpenCV's
    INTER_LANCZOS4 does not), and the serving graph uses the same op.
    """
    return _lanczos_resize_graph(image, tf.constant(size, tf.int32)).numpy()


# Data prep calls these once per photo: as graphs they cost one dispatch instead of
# dozens of eager ops (measured: ~3x faster per photo on 150 px landscapes).
@tf.function(reduce_retracing=True)
def _lanczos_resize_graph(image, size):
    resized = tf.image.resize(tf.cast(image, tf.float32), size, method="lanczos3",
                              antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


@functools.lru_cache(maxsize=None)
def _fit_and_chroma_graph(color_space):
    """The TF half of preparing one photo, as one graph call (a call costs more than
    the ops of a small photo: measured 2.5 -> 1.3 ms per photo in three calls and in
    one): (photo uint8 [H, W, 3], fitted size int32 [2]) -> (the photo Lanczos-fitted
    uint8 [h, w, 3], its YUV chroma [h, w, 2], its chroma in color_space [h, w, 2], the
    cells of the latter in the space's default grid int32 [h * w])."""
    grid = bins_lib.DEFAULT_GRIDS[color_space]

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8),
                                  tf.TensorSpec([2], tf.int32)])
    def fit_and_chroma(image, size):
        fitted = tf.cond(tf.reduce_all(tf.equal(size, tf.shape(image)[:2])),
                         lambda: image, lambda: _lanczos_resize_graph(image, size))
        rgb = tf.cast(fitted, tf.float32) / 255.0
        yuv = color.rgb_to_luma_chroma(rgb, color.YUV)[1]
        chroma = yuv if color_space == color.YUV else color.rgb_to_luma_chroma(
            rgb, color_space)[1]
        return fitted, yuv, chroma, tf.reshape(bins_lib.cell_index(chroma, grid), [-1])

    return fit_and_chroma


def fit_into_frame(image, frame_size):
    """RGB uint8 [H, W, 3] -> (frame uint8 [F, F, 3], box (0, 0, h, w)).

    Shrinks with Lanczos only when larger than the frame, places the photo at the
    top-left corner and pads with zeros; the box marks the valid pixels.
    """
    h, w = fitted_size(image.shape[0], image.shape[1], frame_size)
    if (h, w) != image.shape[:2]:
        image = lanczos_resize(image, (h, w))
    frame = np.zeros((frame_size, frame_size, 3), np.uint8)
    frame[:h, :w] = image
    return frame, (0, 0, h, w)


@dataclasses.dataclass
class PreparedImage:
    png: bytes
    frame_shape: tuple
    box: tuple
    original_shape: tuple
    chroma: np.ndarray  # [h, w, 2] of the valid pixels, in config.color_space
    cells: np.ndarray  # [h * w] their cells in the space's default grid (bins.cell_index)
    notes: list  # what was unusual but handled


def prepare_image(data, config, name=""):
    """File bytes -> PreparedImage, or SkipImage with the reason."""
    image, notes = decode_image(data, config.alpha_background, name, config.max_pixels)
    original_shape = image.shape[:2]
    if min(original_shape) < config.min_size:
        raise SkipImage(TOO_SMALL, f"{original_shape[1]}x{original_shape[0]} px, "
                                   f"shorter side under {config.min_size}")
    h, w = fitted_size(image.shape[0], image.shape[1], config.frame_size)
    fitted, yuv_chroma, chroma, cells = (t.numpy() for t in _fit_and_chroma_graph(
        config.color_space)(image, tf.constant([h, w], tf.int32)))
    frame = np.zeros((config.frame_size, config.frame_size, 3), np.uint8)
    frame[:h, :w] = fitted
    box = (0, 0, h, w)
    # The gray test is in YUV whatever the bins' space, so one threshold fits both.
    spread = color.chroma_spread(yuv_chroma)
    if spread < config.grayscale_threshold:
        raise SkipImage(GRAYSCALE, f"chroma spread {spread:.4f} < threshold "
                                   f"{config.grayscale_threshold} (gray or single tint)")
    ok, png = cv2.imencode(".png", np.ascontiguousarray(frame[..., ::-1]),
                           [cv2.IMWRITE_PNG_COMPRESSION, config.png_compression])
    if not ok:
        raise RuntimeError("OpenCV failed to PNG-encode a frame")
    return PreparedImage(png.tobytes(), frame.shape[:2], box, original_shape, chroma, cells,
                         notes)
