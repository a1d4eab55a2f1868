"""Per-photo work of data prep: decode a file's bytes, reject what teaches nothing,
Lanczos-fit into the training frame, PNG-encode, count its chroma, make its example.
Pure functions, used by the build_records entry point, its worker processes and the
Beam pipeline.

Nothing here loads TensorFlow (tests/test_prepare.py checks): a worker process then
starts in ~0.1 s instead of ~2 s, most of a small build (issue 13). The resize is
TF's antialiased Lanczos-3 (the serving graph's) computed in numpy, the colour
conversions are color_numpy's.
"""
import ctypes
import dataclasses
import functools
import os
import signal

import cv2
import numpy as np

from colorize_tf import errors
from colorize_tf.chroma import color_numpy
from colorize_tf.chroma.grid import ChromaHistogram, DEFAULT_GRIDS
from colorize_tf.data import example_proto
from colorize_tf.data import image_files

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


class SkipImage(errors.Error):
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
    color_space: str = color_numpy.YUV
    min_size: int = 32
    grayscale_threshold: float = color_numpy.GRAY_SPREAD
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


# The shorter side a photo must keep once fitted into its frame (px): 8 px is the
# smallest frame build_records accepts and 2 pixels of the models' quarter-resolution
# logits. A 40x6000 strip fits a 256 px frame as 2x256 px: nothing to learn from.
MIN_FITTED_SIDE = 8


def fitted_size(height, width, frame_size):
    """(h, w) after shrinking to fit the frame keeping the aspect ratio; never enlarges."""
    scale = min(1.0, frame_size / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


LANCZOS_RADIUS = 3.0


@functools.lru_cache(maxsize=256)
def lanczos_weights(in_size, out_size):
    """float32 [out_size, in_size]: row i weighs the input samples of output sample i.

    TF's ScaleAndTranslate with the Lanczos-3 kernel, antialiased, no translation
    (scale_and_translate_op.cc, ComputeSpansCore): output i samples the input at
    (i + 0.5) * in / out; when shrinking the kernel is stretched by in / out (a low-pass
    filter); taps outside the image are dropped and each row renormalised to sum 1.
    """
    inverse_scale = in_size / out_size
    kernel_scale = max(inverse_scale, 1.0)
    sample = (np.arange(out_size, dtype=np.float64)[:, None] + 0.5) * inverse_scale
    x = np.abs(np.arange(in_size, dtype=np.float64)[None, :] + 0.5 - sample) / kernel_scale
    with np.errstate(divide="ignore", invalid="ignore"):
        kernel = (LANCZOS_RADIUS * np.sin(np.pi * x) * np.sin(np.pi * x / LANCZOS_RADIUS) /
                  (np.pi * np.pi * x * x))
    kernel = np.where(x <= 1e-3, 1.0, np.where(x > LANCZOS_RADIUS, 0.0, kernel))
    return (kernel / kernel.sum(axis=1, keepdims=True)).astype(np.float32)


_BAND_ROWS = 32  # output samples per matrix product: their input span is a band


@functools.lru_cache(maxsize=256)
def _lanczos_bands(in_size, out_size):
    """[(first output, end output, first input, end input)]: the input samples each block
    of _BAND_ROWS output samples uses (the weights are zero elsewhere)."""
    weights = lanczos_weights(in_size, out_size)
    bands = []
    for first in range(0, out_size, _BAND_ROWS):
        used = np.flatnonzero(weights[first:first + _BAND_ROWS].any(axis=0))
        bands.append((first, min(first + _BAND_ROWS, out_size), used[0], used[-1] + 1))
    return bands


def _resample_rows(x, out_size):
    """x [in, K] (any real dtype) -> float32 [out_size, K]: lanczos_weights(in, out) @ x,
    one band at a time, so a 48 Mpx photo costs its band's products, not the full
    matrix's, and only a band of it is ever in float32."""
    weights = lanczos_weights(x.shape[0], out_size)
    out = np.empty((out_size, x.shape[1]), np.float32)
    for first, end, low, high in _lanczos_bands(x.shape[0], out_size):
        out[first:end] = weights[first:end, low:high] @ x[low:high].astype(np.float32)
    return out


def lanczos_resize(image, size):
    """uint8 [H, W, C] -> uint8 [size[0], size[1], C] with antialiased Lanczos-3.

    What tf.image.resize(method="lanczos3", antialias=True) gives, rounded (within one
    8-bit step: tested), as matrix products along each axis. It low-pass filters when
    shrinking (OpenCV's INTER_LANCZOS4 does not), and the serving graph uses TF's op.
    """
    height, width, channels = image.shape
    rows = _resample_rows(image.reshape(height, width * channels), size[0])
    # columns: [h, W, C] -> [W, h * C], resampled, back to [h, w, C]
    columns = np.ascontiguousarray(rows.reshape(size[0], width, channels).transpose(1, 0, 2))
    resized = _resample_rows(columns.reshape(width, size[0] * channels), size[1])
    resized = resized.reshape(size[1], size[0], channels).transpose(1, 0, 2)
    return np.clip(np.round(resized), 0, 255).astype(np.uint8)


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
    cells: np.ndarray  # [h * w] their cells in the space's default grid (Grid.cells_of)
    notes: list  # what was unusual but handled


def prepare_image(data, config, name=""):
    """File bytes -> PreparedImage, or SkipImage with the reason."""
    image, notes = decode_image(data, config.alpha_background, name, config.max_pixels)
    original_shape = image.shape[:2]
    if min(original_shape) < config.min_size:
        raise SkipImage(TOO_SMALL, f"{original_shape[1]}x{original_shape[0]} px, "
                                   f"shorter side under {config.min_size}")
    fitted_h, fitted_w = fitted_size(*original_shape, config.frame_size)
    if min(fitted_h, fitted_w) < MIN_FITTED_SIDE:
        raise SkipImage(TOO_SMALL, f"{original_shape[1]}x{original_shape[0]} px fits the "
                                   f"{config.frame_size} px frame as {fitted_w}x{fitted_h} px, "
                                   f"shorter side under {MIN_FITTED_SIDE} (a strip)")
    frame, box = fit_into_frame(image, config.frame_size)
    fitted = frame[:box[2], :box[3]]  # the histogram counts the photo, not the padding
    yuv_chroma = color_numpy.rgb_uint8_to_chroma(fitted, color_numpy.YUV)
    chroma = yuv_chroma if config.color_space == color_numpy.YUV else \
        color_numpy.rgb_uint8_to_chroma(fitted, config.color_space)
    # The gray test is in YUV whatever the bins' space, so one threshold fits both.
    spread = color_numpy.chroma_spread(yuv_chroma)
    if spread < config.grayscale_threshold:
        raise SkipImage(GRAYSCALE, f"chroma spread {spread:.4f} < threshold "
                                   f"{config.grayscale_threshold} (gray or single tint)")
    ok, png = cv2.imencode(".png", np.ascontiguousarray(frame[..., ::-1]),
                           [cv2.IMWRITE_PNG_COMPRESSION, config.png_compression])
    if not ok:
        raise RuntimeError("OpenCV failed to PNG-encode a frame")
    cells = DEFAULT_GRIDS[config.color_space].cells_of(chroma).reshape(-1)
    return PreparedImage(png.tobytes(), frame.shape[:2], box, original_shape, chroma, cells,
                         notes)


@dataclasses.dataclass(frozen=True)
class Source:
    """One input photo. data is set for in-memory sources (TFDS), else read from path."""
    source_id: str
    path: str = ""
    label_text: str = ""
    data: bytes = None

    def read(self):
        if self.data is not None:
            return self.data
        return image_files.read_file(self.path)  # OSError: FIFOs, devices, > 64 MB


def make_example(source, prepared, label):
    """source's PreparedImage -> its serialized tf.train.Example; label: its class id."""
    return example_proto.make_example(
        prepared.png, prepared.frame_shape, prepared.box, prepared.original_shape,
        source.source_id, label, source.label_text)


def prepare_chunk(args):
    """Worker task: ([(Source, counted, label)], PrepConfig) -> ([(Source, serialized
    example | None, skip (reason, detail) | None, notes)], the histogram (counts, sums)
    of the counted photos' chroma). counted: the photo's chroma goes into the histogram
    (the train split's photos: the bins are learned from them); label: its class id.
    One histogram per chunk, not per photo, crosses the process boundary (each is
    num_cells x 3 floats), and the examples are made here: the process that writes
    them only writes."""
    chunk, config = args
    out = []
    histogram = ChromaHistogram(DEFAULT_GRIDS[config.color_space])
    for source, counted, label in chunk:
        try:
            prepared = prepare_image(source.read(), config, source.source_id)
        except SkipImage as e:
            out.append((source, None, (e.reason, e.detail), []))
            continue
        except OSError as e:
            out.append((source, None, (UNREADABLE, e.strerror or str(e)), []))
            continue
        if counted:
            histogram.add_cells(prepared.cells, prepared.chroma)
        out.append((source, make_example(source, prepared, label), None, prepared.notes))
    return out, (histogram.counts, histogram.sums)


# mallopt's parameters (glibc's malloc.h) and the values data prep sets.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD = 32 << 20  # glibc's largest (DEFAULT_MMAP_THRESHOLD_MAX on 64 bits)
_TRIM_THRESHOLD = 64 << 20


def tune_malloc():
    """Keeps the per-photo arrays' memory in the process's heap; -> True if set.

    glibc maps each block over 128 KB afresh and unmaps it when freed (its threshold
    adapts, but trimming the heap's top can undo that), so whether every decoded
    photo, Lanczos band and chroma array page-faults its memory in again depends on
    the process's history: one process preparing 1,200 landscape photos (128 px
    frames) took 2.97 s untuned, 2.64 s tuned (Lanczos 0.59 -> 0.38 s). A build's
    workers mostly kept their memory already (~1.5% faster tuned); the bench's limit
    worker did not (490 -> 565 photos/s). Set in every worker, so that neither rate
    hangs on that history. The cost: up to 64 MB of freed heap kept per process. For
    data prep's own processes (the workers; the entry point, which prepares the
    photos itself with --workers=1); on a C library without mallopt, nothing.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) and
                mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))


def init_worker():
    """A worker process's set-up: its allocator (tune_malloc), one thread for OpenCV
    (the workers are the parallelism: N processes of N threads each would fight over
    the cores; numpy's BLAS gets one through the environment the pool starts them
    with), then one small photo through prepare_image, so its first chunk does not pay
    for warming up. Ctrl-C reaches the whole process group: a worker ignores it, and the
    parent, which gets it too, ends the pool (one line, no worker tracebacks)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tune_malloc()
    cv2.setNumThreads(1)
    ramp = np.linspace(0, 255, 48 * 64 * 3).reshape(48, 64, 3).astype(np.uint8)
    data = cv2.imencode(".png", ramp)[1].tobytes()
    for color_space in color_numpy.COLOR_SPACES:
        try:
            prepare_image(data, PrepConfig(frame_size=32, color_space=color_space))
        except SkipImage:  # not expected of a colour ramp; the warm-up is optional
            pass
