"""The exported graph: everything that runs inside the SavedModel, in core TF ops.

    decode (EXIF orientation, alpha over white) -> luma -> antialiased Lanczos to the
    working size -> pad to a multiple of 2^pad_log2 -> the model -> annealed mean(T) at
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
from colorize_tf.serving import photo_decoding

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
    the pixel limit, the bins' colour space and fingerprint, pad_log2 (inputs are padded
    to a multiple of 2^pad_log2: the model's ModelConfig.pad_multiple; "depth" in the
    export.json of exports from before 2026-12-07), which checkpoint, the version number, how its
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
    pad_log2: int = 3
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
        data = dict(data)
        if "depth" in data and "pad_log2" not in data:  # its name until 2026-12-07
            data["pad_log2"] = data.pop("depth")
        return cls(**{k: v for k, v in data.items() if k in fields})

    def save(self, folder):
        with open(os.path.join(folder, EXPORT_INFO_NAME), "w") as f:
            json.dump(self.to_dict(), f, indent=1)

    @classmethod
    def load(cls, saved_model_dir):
        with open(os.path.join(saved_model_dir, "assets", EXPORT_INFO_NAME)) as f:
            return cls.from_dict(json.load(f))


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
                 pad_log2=3, output_stride=1, upsampling=guided.BILINEAR):
        super().__init__(name="colorizer")
        self.model = model
        self.decoder = decoder
        self.color_space = color_space
        self.work_size = int(work_size)
        self.max_pixels = int(max_pixels)
        self.multiple = 2 ** int(pad_log2)  # inputs padded to a multiple of this
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
            size = photo_decoding.header_size(data)
        # TF's WebP decoder aborts the process on an animation (image_files.
        # check_decodable): refused here, before the decoder sees it.
        with tf.control_dependencies([tf.debugging.assert_equal(
                photo_decoding.is_animated_webp(data), False,
                message="animated WebP is not supported: save one frame as PNG or JPEG")]):
            data = tf.identity(data)
        too_large = f"image is larger than the limit of {self.max_pixels} pixels"
        with tf.control_dependencies([tf.debugging.assert_less_equal(
                tf.cast(size[0], tf.int64) * tf.cast(size[1], tf.int64),
                tf.constant(self.max_pixels, tf.int64), message=too_large)]):
            data = tf.identity(data)
        rgb = photo_decoding.decode_rgb(data)
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
