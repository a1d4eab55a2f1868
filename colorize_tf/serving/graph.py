"""The exported graph: everything that runs inside the SavedModel, in core TF ops.

    decode (EXIF orientation, alpha over white) -> luma -> antialiased Lanczos to the
    working size -> pad to a multiple of 2^depth -> the model -> annealed mean(T) at
    the logits' resolution (a quarter of the working size for the pretrained
    colorizer, whose chroma is then upsampled to the working size) -> crop -> chroma
    upsampled to the original size guided by its luma (chroma/guided.py; bilinearly for
    exports from before it) + the original full-resolution luma -> PNG (or JPEG)

preprocess() and render() are the two halves around the model; the serving graph,
the Python Colorizer (serving/inference.py) and video smoothing all use them, so a change
to decoding is made once. The signatures are listed in serving_api.py. The photo
stays in 8 bits until its luma is computed from tables (color.rgb_uint8_to_luma),
the result is assembled with a table for the sRGB curve
(color.luma_chroma_to_rgb_uint8), and no probabilities are computed unless asked
for (luma_probabilities, on the logits' grid): measured with bench/colorize.py.
"""
import dataclasses
import json
import os

import tensorflow as tf

from colorize_tf import serving_api
from colorize_tf.chroma import color
from colorize_tf.chroma import decoding
from colorize_tf.chroma import guided
from colorize_tf.chroma import hints
from colorize_tf.data import image_files

DEFAULT_MAX_PIXELS = image_files.DEFAULT_MAX_PIXELS
MIN_WORK_SIZE = 16  # px; below this the model sees too little to colorize anything
# zlib level 1: measured at 768x512, level 6 (the default) encodes ~3x slower than the
# model runs, for outputs only ~10% smaller.
_PNG_COMPRESSION = 1
JPEG_QUALITY = 95  # 4:2:0 chroma, as the model's chroma is smoother than that anyway
EXPORT_INFO_NAME = "export.json"  # in the SavedModel's assets/


@dataclasses.dataclass(frozen=True)
class ExportInfo:
    """What a SavedModel was exported with (assets/export.json): the working size (px),
    the pixel limit, the bins' colour space and fingerprint, the number of poolings
    (the pad multiple is 2^depth), which checkpoint, the version number, how its
    output is decoded (decoding.DECODINGS; its centres are assets/decoder.json), the
    temperature it is meant to be used at (ignored by a regression model), and the
    model's output stride (its logits have 1 / output_stride of the input's sides),
    how the chroma is upsampled to the photo (guided.ChromaUpsampling: radius 0, what
    exports from before it have, is bilinear), and the grid of luma_probabilities'
    output (1 / probabilities_stride of the luma's sides: the logits' own grid since
    2026-12-05; 1, the luma's grid, in exports from before), and where its weights came
    from when they are a mix of two models' (export --interpolate_from; "": one run's)."""
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
    output_stride: int = 1
    guided_radius: int = guided.BILINEAR_RADIUS
    guided_epsilon: float = guided.DEFAULT_EPSILON
    guided_subsample: int = 1
    probabilities_stride: int = 1
    weights: str = ""

    @property
    def upsampling(self):
        return guided.ChromaUpsampling(self.guided_radius, self.guided_epsilon,
                                       self.guided_subsample)

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


def _is_animated_webp(data):
    """image_files.is_animated_webp in graph ops: a WebP whose VP8X flags byte has the
    animation bit."""
    length = tf.strings.length(data)
    part = lambda start, n: tf.strings.substr(  # noqa: E731 (clamped: any bytes are fine)
        data, tf.minimum(start, length), tf.minimum(n, tf.maximum(length - start, 0)))
    is_vp8x = (tf.equal(part(0, 4), b"RIFF") & tf.equal(part(8, 4), b"WEBP")
               & tf.equal(part(12, 4), b"VP8X"))
    flags = tf.io.decode_raw(part(image_files.WEBP_FLAGS_OFFSET, 1), tf.uint8)
    animated = tf.reduce_any(tf.bitwise.bitwise_and(
        flags, image_files.WEBP_ANIMATION_FLAG) > 0)
    return is_vp8x & animated


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
    """Encoded bytes -> RGB uint8 [H, W, 3] as meant to be seen: EXIF orientation
    applied (JPEG), alpha composited over white (rounded to 8 bits), gray expanded,
    16-bit scaled to 8, the first frame of a GIF. Stays in 8 bits throughout: at
    3000x2000 a float copy of the photo costs more than decoding it."""
    image = tf.io.decode_image(data, channels=0, expand_animations=False)
    channels = tf.shape(image)[-1]

    def over_white():
        pixels = tf.cast(image, tf.float32) / 255.0
        alpha = pixels[..., -1:]
        colour = pixels[..., :-1] * alpha + ALPHA_BACKGROUND * (1.0 - alpha)
        return tf.cast(tf.round(colour * 255.0), tf.uint8)

    opaque = tf.cond(tf.equal(channels % 2, 0), over_white, lambda: image)
    rgb = tf.cond(tf.shape(opaque)[-1] >= 3, lambda: opaque[..., :3],
                  lambda: tf.tile(opaque[..., :1], [1, 1, 3]))
    is_jpeg = tf.equal(tf.strings.substr(data, 0, tf.minimum(2, tf.strings.length(data))),
                       b"\xff\xd8")
    orientation = tf.where(is_jpeg, _exif_orientation(data), 1)
    return apply_orientation(rgb, orientation)


def working_size(height, width, work_size):
    """Shrinks (never enlarges) so the longer side is at most work_size; int32 [2]."""
    scale = tf.minimum(1.0, work_size / tf.cast(tf.maximum(height, width), tf.float32))
    size = tf.cast(tf.round(tf.cast(tf.stack([height, width]), tf.float32) * scale), tf.int32)
    return tf.maximum(size, 1)


def to_work_grid(maps, work_shape, output_stride):
    """maps [..., ceil(h / s), ceil(w / s), C] on a model's logits' grid (s =
    output_stride) -> [..., h, w, C] on the grid of its input, work_shape (h, w):
    bilinear to s times their size, where cell i spans pixels s i .. s i + s - 1 as in
    training, then cropped. The identity when s is 1."""
    if output_stride == 1:
        return maps
    size = tf.shape(maps)[-3:-1] * output_stride
    return tf.image.resize(maps, size, method="bilinear")[..., :work_shape[0], :work_shape[1], :]


def preprocess(rgb, work_size, color_space):
    """RGB uint8 [H, W, 3] (or a batch [B, H, W, 3]) -> (full-size luma [H, W, 1] in
    [0, 1], the luma the model sees [h, w, 1]: shrunk with antialiased Lanczos-3 so
    the longer side is at most work_size, never enlarged)."""
    luma = color.rgb_uint8_to_luma(rgb, color_space)
    shape = tf.shape(luma)
    work = working_size(shape[-3], shape[-2], work_size)
    small = tf.image.resize(luma, work, method="lanczos3", antialias=True)
    return luma, tf.clip_by_value(small, 0.0, 1.0)


def render(luma, chroma, confidence, color_space, upsampling=guided.BILINEAR):
    """(full-size luma [H, W, 1], chroma [h, w, 2] and top-1 confidence [h, w] at the
    working size) -> (RGB uint8 [H, W, 3], confidence uint8 [H, W, 1]): the chroma
    upsampled as upsampling says (guided.ChromaUpsampling: by the luma, or bilinearly)
    and recombined with the full-resolution luma, the confidence upsampled bilinearly.
    The same with a batch dimension in front of each."""
    return (render_rgb(luma, chroma, color_space, upsampling),
            render_confidence(luma, confidence))


def render_rgb(luma, chroma, color_space, upsampling=guided.BILINEAR):
    """render's colour half: -> RGB uint8 [..., H, W, 3]."""
    return color.luma_chroma_to_rgb_uint8(luma, upsampling(chroma, luma), color_space)


def render_confidence(luma, confidence):
    """render's confidence half: -> uint8 [..., H, W, 1]."""
    confidence = tf.image.resize(confidence[..., None], tf.shape(luma)[-3:-1],
                                 method="bilinear")
    return tf.image.convert_image_dtype(tf.clip_by_value(confidence, 0.0, 1.0), tf.uint8,
                                        saturate=True)


def encode(image, output_format):
    """uint8 [H, W, C], format name (string scalar, one of OUTPUT_FORMATS) -> bytes."""
    return tf.cond(tf.equal(output_format, serving_api.JPEG),
                   lambda: tf.io.encode_jpeg(image, quality=JPEG_QUALITY),
                   lambda: tf.io.encode_png(image, compression=_PNG_COMPRESSION))


class ColorizerModule(tf.Module):
    """The exported graph: see the module docstring for the signatures."""

    def __init__(self, model, decoder, color_space, work_size, max_pixels=DEFAULT_MAX_PIXELS,
                 depth=3, output_stride=1, upsampling=guided.BILINEAR):
        super().__init__(name="colorizer")
        self.model = model
        self.decoder = decoder
        self.color_space = color_space
        self.work_size = int(work_size)
        self.max_pixels = int(max_pixels)
        self.multiple = 2 ** int(depth)  # the model pools depth times
        self.output_stride = int(output_stride)  # its logits: 1 / output_stride of a side
        self.upsampling = upsampling  # chroma, working size -> the photo's
        # A hints model (model.ModelConfig.hints) takes the luma and the hint maps.
        self.hints = isinstance(model.input, dict)
        if self.hints:
            self._hint_functions()

    def _scores(self, luma, hint_maps=None):
        """luma [B, H, W, 1] of any H, W, hint_maps None (no hints) or (hint_chroma
        [B, H, W, 2], hint_mask [B, H, W, 1]) -> the model's output [B, h, w, n] (zero
        padding, as in training), h = ceil(H / output_stride), w likewise: the cells
        that cover the photo."""
        shape = tf.shape(luma)
        padding = [[0, 0], [0, (-shape[1]) % self.multiple],
                   [0, (-shape[2]) % self.multiple], [0, 0]]
        inputs = tf.pad(luma, padding)
        if self.hints:
            if hint_maps is None:
                hint_maps = (tf.zeros(tf.concat([shape[:3], [2]], 0)), tf.zeros_like(luma))
            inputs = {serving_api.LUMA: inputs,
                      serving_api.HINT_CHROMA: tf.pad(hint_maps[0], padding),
                      serving_api.HINT_MASK: tf.pad(hint_maps[1], padding)}
        logits = self.model(inputs, training=False)
        s = self.output_stride
        return tf.cast(logits, tf.float32)[:, :(shape[1] + s - 1) // s,
                                           :(shape[2] + s - 1) // s, :]

    def _to_luma_grid(self, maps, luma):
        """maps [B, ceil(H / s), ceil(W / s), C] at the logits' resolution (s the output
        stride) -> [B, H, W, C] of luma [B, H, W, 1] (to_work_grid)."""
        return to_work_grid(maps, tf.shape(luma)[1:3], self.output_stride)

    @staticmethod
    def _per_image(values, batch, name, example):
        """values [1] or [batch] -> [batch], refusing other counts."""
        count = tf.size(values)
        with tf.control_dependencies([tf.debugging.assert_equal(
                tf.logical_or(count == 1, count == batch), True,
                message=f"give one {name}, or one per image (e.g. {example})")]):
            return tf.broadcast_to(tf.reshape(values, [-1]), [batch])

    @classmethod
    def _temperatures(cls, temperature, batch):
        """temperature [1] or [batch] -> [batch], refusing T <= 0, infinite or NaN T
        (an infinite one would give a flat, colourless photo) and other counts."""
        with tf.control_dependencies([tf.debugging.assert_equal(
                tf.reduce_all(tf.math.is_finite(temperature) & (temperature > 0.0)), True,
                message="temperature must be a finite number > 0 (e.g. 0.38)")]):
            return cls._per_image(temperature, batch, "temperature", "[0.38]")

    @classmethod
    def _formats(cls, output_format, batch):
        """output_format [1] or [batch] -> [batch], refusing names not in OUTPUT_FORMATS."""
        known = tf.reduce_any(tf.equal(tf.reshape(output_format, [-1, 1]),
                                       tf.constant(serving_api.OUTPUT_FORMATS)), axis=1)
        with tf.control_dependencies([tf.debugging.assert_equal(
                tf.reduce_all(known), True, message="output_format must be one of "
                + ", ".join(serving_api.OUTPUT_FORMATS))]):
            return cls._per_image(output_format, batch, "output_format", '["jpeg"]')

    def _checked_luma(self, luma):
        """luma [B, H, W, 1] -> the same, after refusing values outside [0, 1], an empty
        image and one over the pixel limit."""
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
            return tf.identity(luma)

    def _chroma_and_confidence(self, luma, temperature, hint_maps=None):
        """Working-size luma [B, h, w, 1], temperature [B] (hint_maps: as _scores') ->
        (chroma [B, h, w, 2], top-1 confidence [B, h, w]): the model and the fused
        decoding at the logits' resolution (no probabilities), then upsampled to the
        working size (only the chroma and the confidence: 3 channels)."""
        chroma, confidence = self.decoder.decode_scores(self._scores(luma, hint_maps),
                                                        temperature)
        if self.output_stride == 1:
            return chroma, confidence
        both = self._to_luma_grid(tf.concat([chroma, confidence[..., None]], -1), luma)
        return both[..., :2], both[..., 2]

    @tf.function(input_signature=[
        tf.TensorSpec([None, None, None, 1], tf.float32, name=serving_api.LUMA),
        tf.TensorSpec([None], tf.float32, name=serving_api.TEMPERATURE)])
    def luma_to_chroma(self, luma, temperature):
        luma = self._checked_luma(luma)
        chroma, confidence = self._chroma_and_confidence(
            luma, self._temperatures(temperature, tf.shape(luma)[0]))
        return {serving_api.CHROMA: chroma, serving_api.CONFIDENCE: confidence}

    @tf.function(input_signature=[
        tf.TensorSpec([None, None, None, 1], tf.float32, name=serving_api.LUMA)])
    def luma_to_probabilities(self, luma):
        # On the logits' grid: upsampling all n maps to the luma's cost more than the
        # model (bench/colorize.py); whoever decodes them upsamples the chroma alone
        # (to_work_grid), as _chroma_and_confidence does.
        luma = self._checked_luma(luma)
        return {serving_api.PROBABILITIES: self.decoder.probabilities(self._scores(luma))}

    def _luma_with_hints_to_probabilities(self, luma, hint_chroma, hint_mask):
        luma = self._checked_luma(luma)
        with tf.control_dependencies([tf.debugging.assert_equal(
                tf.concat([tf.shape(hint_chroma)[:3], tf.shape(hint_mask)[:3]], 0),
                tf.tile(tf.shape(luma)[:3], [2]),
                message="hint_chroma and hint_mask must have the luma's batch, height "
                        "and width")]):
            scores = self._scores(luma, (hint_chroma, hint_mask))
        return {serving_api.PROBABILITIES: self.decoder.probabilities(scores)}

    def _colorize_one(self, data, temperature, output_format, points=None, colors=None):
        # Checks run before decoding (control dependencies), so an empty string or a
        # decompression bomb is refused with a clear message, not a crash.
        with tf.control_dependencies([tf.debugging.assert_greater(
                tf.strings.length(data), 0, message="image_bytes is empty")]):
            size = _header_size(data)
        # TF's WebP decoder aborts the process on an animation (image_files.
        # check_decodable): refused here, before the decoder sees it.
        with tf.control_dependencies([tf.debugging.assert_equal(
                _is_animated_webp(data), False, message="animated WebP is not supported: "
                "save one frame as PNG or JPEG")]):
            data = tf.identity(data)
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
        hint_maps = None
        if points is not None:
            size = tf.shape(small)
            hint_maps = [m[None] for m in hints.from_points(points, colors, size[0], size[1],
                                                            self.color_space)]
        chroma, confidence = self._chroma_and_confidence(small[None], temperature[None],
                                                         hint_maps)
        colorized, confidence = render(luma, chroma[0], confidence[0], self.color_space,
                                       self.upsampling)
        return encode(colorized, output_format), encode(confidence, output_format)

    def _colorize_batch(self, image_bytes, temperature, output_format):
        batch = tf.shape(image_bytes)[0]
        return tf.map_fn(
            lambda args: self._colorize_one(*args),
            (image_bytes, self._temperatures(temperature, batch),
             self._formats(output_format, batch)),
            fn_output_signature=(tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.string)))

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string, name=serving_api.IMAGE_BYTES),
        tf.TensorSpec([None], tf.float32, name=serving_api.TEMPERATURE)])
    def serve(self, image_bytes, temperature):
        colorized, confidence = self._colorize_batch(image_bytes, temperature,
                                                     tf.constant([serving_api.PNG]))
        return {serving_api.COLORIZED_PNG: colorized,
                serving_api.CONFIDENCE_PNG: confidence}

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string, name=serving_api.IMAGE_BYTES),
        tf.TensorSpec([None], tf.float32, name=serving_api.TEMPERATURE),
        tf.TensorSpec([None], tf.string, name=serving_api.OUTPUT_FORMAT)])
    def serve_as(self, image_bytes, temperature, output_format):
        colorized, confidence = self._colorize_batch(image_bytes, temperature, output_format)
        return {serving_api.COLORIZED_BYTES: colorized,
                serving_api.CONFIDENCE_BYTES: confidence}

    def _serve_with_hints(self, image_bytes, temperature, hint_points, hint_colors):
        batch = tf.shape(image_bytes)[0]
        with tf.control_dependencies([tf.debugging.assert_equal(
                tf.shape(hint_points)[0], batch,
                message="give hint_points and hint_colors for each image (pad with "
                        "negative coordinates)")]):
            points, colors = hints.check_points(hint_points, hint_colors)
        colorized, confidence = tf.map_fn(
            lambda args: self._colorize_one(args[0], args[1], serving_api.PNG, args[2],
                                            args[3]),
            (image_bytes, self._temperatures(temperature, batch), points, colors),
            fn_output_signature=(tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.string)))
        return {serving_api.COLORIZED_PNG: colorized,
                serving_api.CONFIDENCE_PNG: confidence}

    def signatures(self):
        """{signature name: tf.function} for tf.saved_model.save; a hints model also has
        colorize_with_hints and luma_hints_probabilities."""
        signatures = {serving_api.SERVING_SIGNATURE: self.serve,
                      serving_api.IMAGE_SIGNATURE: self.serve_as,
                      serving_api.LUMA_SIGNATURE: self.luma_to_chroma,
                      serving_api.PROBABILITIES_SIGNATURE: self.luma_to_probabilities}
        if self.hints:
            signatures[serving_api.HINTS_SIGNATURE] = self.serve_with_hints
            signatures[serving_api.LUMA_HINTS_SIGNATURE] = \
                self.luma_with_hints_to_probabilities
        return signatures

    def _hint_functions(self):
        """The hints model's tf.functions (attributes only for it, so that other exports
        do not trace them)."""
        self.serve_with_hints = tf.function(self._serve_with_hints, input_signature=[
            tf.TensorSpec([None], tf.string, name=serving_api.IMAGE_BYTES),
            tf.TensorSpec([None], tf.float32, name=serving_api.TEMPERATURE),
            tf.TensorSpec([None, None, 2], tf.float32, name=serving_api.HINT_POINTS),
            tf.TensorSpec([None, None, 3], tf.uint8, name=serving_api.HINT_COLORS)])
        self.luma_with_hints_to_probabilities = tf.function(
            self._luma_with_hints_to_probabilities, input_signature=[
                tf.TensorSpec([None, None, None, 1], tf.float32, name=serving_api.LUMA),
                tf.TensorSpec([None, None, None, 2], tf.float32,
                              name=serving_api.HINT_CHROMA),
                tf.TensorSpec([None, None, None, 1], tf.float32,
                              name=serving_api.HINT_MASK)])
