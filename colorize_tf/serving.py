"""The exported graph: everything that runs inside the SavedModel, in core TF ops.

    decode (EXIF orientation, alpha over white) -> luma -> antialiased Lanczos to the
    working size -> pad to a multiple of 2^depth -> ColorUNet -> annealed mean(T) ->
    crop -> chroma upsampled to the original size + the original full-resolution luma
    -> PNG

preprocess() and render() are the two halves around the model; the serving graph,
the Python Colorizer (inference.py) and video smoothing all use them, so a change
to decoding is made once. The signatures (serving_api.py):

serving_default(image_bytes: string [B], temperature: float [B] or [1])
    -> colorized_png_bytes: string [B], confidence_png_bytes: string [B]
colorize_luma(luma: float [B, H, W, 1] in [0, 1], temperature: float [B] or [1])
    -> chroma [B, H, W, 2], probabilities [B, H, W, n], confidence [B, H, W]
"""
import dataclasses
import json
import os

import tensorflow as tf

from colorize_tf import color
from colorize_tf import decoding
from colorize_tf import image_files
from colorize_tf import serving_api

DEFAULT_MAX_PIXELS = image_files.DEFAULT_MAX_PIXELS
MIN_WORK_SIZE = 16  # px; below this the model sees too little to colorize anything
# zlib level 1: measured at 768x512, level 6 (the default) encodes ~3x slower than the
# model runs, for outputs only ~10% smaller.
_PNG_COMPRESSION = 1
EXPORT_INFO_NAME = "export.json"  # in the SavedModel's assets/


@dataclasses.dataclass(frozen=True)
class ExportInfo:
    """What a SavedModel was exported with (assets/export.json): the working size (px),
    the pixel limit, the bins' colour space and fingerprint, the number of poolings
    (the pad multiple is 2^depth), which checkpoint, the version number, how its
    output is decoded (decoding.DECODINGS; its centres are assets/decoder.json), and
    the temperature it is meant to be used at (ignored by a regression model)."""
    work_size: int
    max_pixels: int
    color_space: str
    bins_fingerprint: str
    depth: int = 3
    checkpoint: str = "best"
    version: int = 1
    decoding: str = decoding.BINS
    default_temperature: float = serving_api.DEFAULT_TEMPERATURE
    uses_temperature: bool = True

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})

    def save(self, folder):
        with open(os.path.join(folder, EXPORT_INFO_NAME), "w") as f:
            json.dump(self.to_dict(), f, indent=1)

    @classmethod
    def load(cls, saved_model_dir):
        with open(os.path.join(saved_model_dir, "assets", EXPORT_INFO_NAME)) as f:
            return cls.from_dict(json.load(f))


def _header_size(data):
    """(height, width) from a JPEG/PNG/GIF/BMP header without decoding; (0, 0) if unknown."""
    def be32(offset):
        return _int_from_bytes(data, offset, 4, big_endian=True)

    def le(offset, n):
        return _int_from_bytes(data, offset, n, big_endian=False)

    length = tf.strings.length(data)
    magic = tf.strings.substr(data, 0, tf.minimum(4, length))
    is_png = tf.equal(magic, b"\x89PNG") & (length >= 24)
    is_gif = tf.equal(tf.strings.substr(data, 0, tf.minimum(3, length)), b"GIF") & (length >= 10)
    is_bmp = tf.equal(tf.strings.substr(data, 0, tf.minimum(2, length)), b"BM") & (length >= 26)
    is_jpeg = tf.equal(tf.strings.substr(data, 0, tf.minimum(2, length)), b"\xff\xd8")
    return tf.case([
        (is_png, lambda: tf.stack([be32(20), be32(16)])),
        (is_gif, lambda: tf.stack([le(8, 2), le(6, 2)])),
        (is_bmp, lambda: tf.abs(tf.stack([le(22, 4), le(18, 4)]))),
        (is_jpeg, lambda: tf.cast(tf.image.extract_jpeg_shape(data)[:2], tf.int32)),
    ], default=lambda: tf.zeros([2], tf.int32))


def _int_from_bytes(data, offset, n, big_endian):
    raw = tf.cast(tf.io.decode_raw(tf.strings.substr(data, offset, n), tf.uint8), tf.int64)
    powers = tf.constant([256 ** i for i in range(n)], tf.int64)
    if big_endian:
        powers = tf.reverse(powers, [0])
    value = tf.reduce_sum(raw * powers)
    if n == 4 and not big_endian:  # BMP sizes are signed (negative height: top-down)
        value = tf.where(value >= 2 ** 31, value - 2 ** 32, value)
    return tf.cast(tf.minimum(tf.abs(value), 2 ** 31 - 1), tf.int32)


def _exif_orientation(data):
    """JPEG bytes -> its EXIF orientation 1..8 (int32 scalar; 1 when absent or unreadable).

    Finds the APP1 "Exif\\0\\0" header in the first 64 KiB, reads the TIFF byte order
    and IFD0, and looks for tag 0x0112 among its first 32 entries. Positions are
    clamped, so any bytes give an answer, never an error.
    """
    head = tf.strings.substr(data, 0, tf.minimum(tf.strings.length(data), 1 << 16))
    length = tf.strings.length(head)
    parts = tf.strings.split(head, sep="Exif\x00\x00", maxsplit=1)
    tiff = tf.strings.length(parts[0]) + 6
    little = tf.equal(tf.strings.substr(head, tf.minimum(tiff, length), 2), b"II")

    def read(offset, n):
        raw = tf.io.decode_raw(tf.strings.substr(head, tf.clip_by_value(offset, 0, length), n),
                               tf.uint8)
        raw = tf.cast(tf.pad(raw, [[0, n - tf.size(raw)]]), tf.int64)
        return raw

    def value(raw, axis_bytes):
        powers = tf.constant([256 ** i for i in range(axis_bytes)], tf.int64)
        little_value = tf.reduce_sum(raw * powers, axis=-1)
        big_value = tf.reduce_sum(raw * tf.reverse(powers, [0]), axis=-1)
        return tf.where(little, little_value, big_value)

    ifd = tiff + tf.cast(tf.minimum(value(read(tiff + 4, 4), 4), 1 << 20), tf.int32)
    count = value(read(ifd, 2), 2)
    entries = tf.reshape(read(ifd + 2, 12 * 32), [32, 12])
    tags = value(entries[:, 0:2], 2)
    values = value(entries[:, 8:10], 2)
    wanted = (tf.range(32, dtype=tf.int64) < count) & tf.equal(tags, 0x0112)
    orientation = tf.reduce_max(tf.where(wanted, values, 0))
    valid = (tf.size(parts) > 1) & (orientation >= 1) & (orientation <= 8)
    return tf.where(valid, tf.cast(orientation, tf.int32), 1)


def apply_orientation(image, orientation):
    """image [H, W, C] as stored, EXIF orientation 1..8 -> the image as it is meant to be
    seen (what OpenCV's IMREAD_COLOR and PIL's exif_transpose give)."""
    transpose = lambda: tf.transpose(image, [1, 0, 2])  # noqa: E731
    branches = [
        lambda: image,
        lambda: image,
        lambda: tf.image.flip_left_right(image),
        lambda: tf.image.rot90(image, 2),
        lambda: tf.image.flip_up_down(image),
        transpose,
        lambda: tf.image.rot90(image, 3),  # 90 degrees clockwise
        lambda: tf.image.rot90(transpose(), 2),  # transverse
        lambda: tf.image.rot90(image, 1),  # 90 degrees counter-clockwise
    ]
    return tf.switch_case(orientation, branches)


# What transparent pixels become, here and in data prep's default (PrepConfig): the
# colour of paper, so that a logo or a scan with a transparent margin stays light.
ALPHA_BACKGROUND = 1.0


def decode_rgb(data):
    """Encoded bytes -> RGB float32 [H, W, 3] in [0, 1] as meant to be seen: EXIF
    orientation applied (JPEG), alpha composited over white, gray expanded, 16-bit
    scaled, the first frame of a GIF."""
    image = tf.io.decode_image(data, channels=0, expand_animations=False)
    image = tf.image.convert_image_dtype(image, tf.float32)
    channels = tf.shape(image)[-1]
    colour = tf.cond(channels >= 3, lambda: image[..., :3],
                     lambda: tf.tile(image[..., :1], [1, 1, 3]))
    alpha = tf.cond(tf.equal(channels % 2, 0), lambda: image[..., -1:],
                    lambda: tf.ones_like(image[..., :1]))
    rgb = colour * alpha + ALPHA_BACKGROUND * (1.0 - alpha)
    is_jpeg = tf.equal(tf.strings.substr(data, 0, tf.minimum(2, tf.strings.length(data))),
                       b"\xff\xd8")
    orientation = tf.where(is_jpeg, _exif_orientation(data), 1)
    return apply_orientation(rgb, orientation)


def working_size(height, width, work_size):
    """Shrinks (never enlarges) so the longer side is at most work_size; int32 [2]."""
    scale = tf.minimum(1.0, work_size / tf.cast(tf.maximum(height, width), tf.float32))
    size = tf.cast(tf.round(tf.cast(tf.stack([height, width]), tf.float32) * scale), tf.int32)
    return tf.maximum(size, 1)


def preprocess(rgb, work_size, color_space):
    """RGB float [H, W, 3] (or a batch [B, H, W, 3]) in [0, 1] -> (full-size luma
    [H, W, 1], the luma the model sees [h, w, 1]: shrunk with antialiased Lanczos-3 so
    the longer side is at most work_size, never enlarged)."""
    luma = color.rgb_to_luma(rgb, color_space)
    shape = tf.shape(luma)
    work = working_size(shape[-3], shape[-2], work_size)
    small = tf.image.resize(luma, work, method="lanczos3", antialias=True)
    return luma, tf.clip_by_value(small, 0.0, 1.0)


def render(luma, chroma, confidence, color_space):
    """(full-size luma [H, W, 1], chroma [h, w, 2] and top-1 confidence [h, w] at the
    working size) -> (RGB uint8 [H, W, 3], confidence uint8 [H, W, 1]): chroma and
    confidence upsampled bilinearly, recombined with the full-resolution luma. The
    same with a batch dimension in front of each."""
    return render_rgb(luma, chroma, color_space), render_confidence(luma, confidence)


def render_rgb(luma, chroma, color_space):
    """render's colour half: -> RGB uint8 [..., H, W, 3]."""
    chroma = tf.image.resize(chroma, tf.shape(luma)[-3:-1], method="bilinear")
    rgb = color.luma_chroma_to_rgb(luma, chroma, color_space)
    return tf.image.convert_image_dtype(rgb, tf.uint8, saturate=True)


def render_confidence(luma, confidence):
    """render's confidence half: -> uint8 [..., H, W, 1]."""
    confidence = tf.image.resize(confidence[..., None], tf.shape(luma)[-3:-1],
                                 method="bilinear")
    return tf.image.convert_image_dtype(tf.clip_by_value(confidence, 0.0, 1.0), tf.uint8,
                                        saturate=True)


class ColorizerModule(tf.Module):
    """The exported graph: see the module docstring for the signatures."""

    def __init__(self, model, decoder, color_space, work_size, max_pixels=DEFAULT_MAX_PIXELS,
                 depth=3):
        super().__init__(name="colorizer")
        self.model = model
        self.decoder = decoder
        self.color_space = color_space
        self.work_size = int(work_size)
        self.max_pixels = int(max_pixels)
        self.multiple = 2 ** int(depth)  # the model pools depth times

    def _scores(self, luma):
        """luma [B, H, W, 1] of any H, W -> the model's output [B, H, W, n] (zero padding,
        as in training)."""
        shape = tf.shape(luma)
        pad_h = (-shape[1]) % self.multiple
        pad_w = (-shape[2]) % self.multiple
        padded = tf.pad(luma, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]])
        logits = self.model(padded, training=False)
        return tf.cast(logits, tf.float32)[:, :shape[1], :shape[2], :]

    @staticmethod
    def _temperatures(temperature, batch):
        """temperature [1] or [batch] -> [batch], refusing T <= 0 and other counts."""
        count = tf.size(temperature)
        with tf.control_dependencies([
                tf.debugging.assert_greater(temperature, 0.0,
                                            message="temperature must be > 0 (e.g. 0.38)"),
                tf.debugging.assert_equal(tf.logical_or(count == 1, count == batch), True,
                                          message="give one temperature, or one per image")]):
            return tf.broadcast_to(tf.reshape(temperature, [-1]), [batch])

    @tf.function(input_signature=[
        tf.TensorSpec([None, None, None, 1], tf.float32, name=serving_api.LUMA),
        tf.TensorSpec([None], tf.float32, name=serving_api.TEMPERATURE)])
    def luma_to_chroma(self, luma, temperature):
        shape = tf.shape(luma)
        with tf.control_dependencies([
                tf.debugging.assert_equal(
                    tf.reduce_all((luma >= 0.0) & (luma <= 1.0)), True,
                    message="luma must be finite and in [0, 1]"),
                tf.debugging.assert_positive(shape[1:3], message="luma is empty (H or W is 0)"),
                tf.debugging.assert_less_equal(
                    tf.cast(shape[1], tf.int64) * tf.cast(shape[2], tf.int64),
                    tf.constant(self.max_pixels, tf.int64),
                    message=f"luma is larger than the limit of {self.max_pixels} pixels")]):
            luma = tf.identity(luma)
        temperature = self._temperatures(temperature, shape[0])
        scores = self._scores(luma)
        probabilities = self.decoder.probabilities(scores)
        chroma = self.decoder.chroma_of_scores(scores, temperature)
        confidence = self.decoder.confidence(probabilities)
        return {serving_api.CHROMA: chroma, serving_api.PROBABILITIES: probabilities,
                serving_api.CONFIDENCE: confidence}

    def _colorize_one(self, data, temperature):
        # Checks run before decoding (control dependencies), so an empty string or a
        # decompression bomb is refused with a clear message, not a crash.
        with tf.control_dependencies([tf.debugging.assert_greater(
                tf.strings.length(data), 0, message="image_bytes is empty")]):
            size = _header_size(data)
        too_large = f"image is larger than the limit of {self.max_pixels} pixels"
        with tf.control_dependencies([tf.debugging.assert_less_equal(
                tf.cast(size[0], tf.int64) * tf.cast(size[1], tf.int64),
                tf.constant(self.max_pixels, tf.int64), message=too_large)]):
            data = tf.identity(data)
        rgb = decode_rgb(data)
        shape = tf.shape(rgb)
        with tf.control_dependencies([tf.debugging.assert_less_equal(
                tf.cast(shape[0], tf.int64) * tf.cast(shape[1], tf.int64),
                tf.constant(self.max_pixels, tf.int64), message=too_large)]):
            rgb = tf.identity(rgb)
        luma, small = preprocess(rgb, self.work_size, self.color_space)
        outputs = self.luma_to_chroma(small[None], temperature[None])
        colorized, confidence = render(luma, outputs[serving_api.CHROMA][0],
                                       outputs[serving_api.CONFIDENCE][0], self.color_space)
        return (tf.io.encode_png(colorized, compression=_PNG_COMPRESSION),
                tf.io.encode_png(confidence, compression=_PNG_COMPRESSION))

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string, name=serving_api.IMAGE_BYTES),
        tf.TensorSpec([None], tf.float32, name=serving_api.TEMPERATURE)])
    def serve(self, image_bytes, temperature):
        temperature = self._temperatures(temperature, tf.shape(image_bytes)[0])
        colorized, confidence = tf.map_fn(
            lambda args: self._colorize_one(args[0], args[1]), (image_bytes, temperature),
            fn_output_signature=(tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.string)))
        return {serving_api.COLORIZED_PNG: colorized,
                serving_api.CONFIDENCE_PNG: confidence}
