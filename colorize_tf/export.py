r"""Export a trained run as a versioned SavedModel for TF Serving.

    python -m colorize_tf.export --model_dir=runs/landscapes_cpu \
        --export_dir=saved_models/colorunet_landscapes

writes saved_models/colorunet_landscapes/<N>/ (N: the next free version) through a
temp dir and a rename, so TF Serving never sees a half-written version. The graph
does all pre- and post-processing in core TF ops:

serving_default(image_bytes: string [B], temperature: float [B] or [1])
    -> colorized_png_bytes: string [B], confidence_png_bytes: string [B]
    decode -> luma -> antialiased Lanczos to the working size -> pad to a multiple
    of 8 -> ColorUNet -> annealed mean(T) -> crop -> chroma upsampled to the original
    size + the original full-resolution luma -> PNG.
colorize_luma(luma: float [B, H, W, 1] in [0, 1], temperature: float [B] or [1])
    -> chroma [B, H, W, 2], probabilities [B, H, W, n], confidence [B, H, W]
    for clients that do their own I/O, and for video smoothing.
"""
from colorize_tf import cli  # first: as an entry point, hide TF start-up lines
if __name__ == "__main__":
    cli.quiet_tensorflow()
import json
import os
import shutil

import tensorflow as tf

from colorize_tf import bins as bins_lib
from colorize_tf import color
from colorize_tf import decoding
from colorize_tf import image_files
from colorize_tf import safe_write
from colorize_tf import serving_api
from colorize_tf import training_state

# The signature contract lives in serving_api (no TF import, for clients).
SERVING_SIGNATURE = serving_api.SERVING_SIGNATURE
LUMA_SIGNATURE = serving_api.LUMA_SIGNATURE
IMAGE_BYTES = serving_api.IMAGE_BYTES
TEMPERATURE = serving_api.TEMPERATURE
COLORIZED_PNG = serving_api.COLORIZED_PNG
CONFIDENCE_PNG = serving_api.CONFIDENCE_PNG
DEFAULT_MAX_PIXELS = image_files.DEFAULT_MAX_PIXELS
WARMUP_FILE = "tf_serving_warmup_requests"
MIN_WORK_SIZE = 16  # px; below this the model sees too little to colorize anything
# zlib level 1: measured at 768x512, level 6 (the default) encodes ~3x slower than the
# model runs, for outputs only ~10% smaller.
_PNG_COMPRESSION = 1


def load_trained_model(model_dir, checkpoint="best"):
    """-> (keras model returning logits, Bins, the run's flags dict) from a training run."""
    import keras
    path = os.path.join(model_dir, training_state.CHECKPOINT_DIR, f"{checkpoint}.keras")
    if not os.path.exists(path):
        raise cli.UsageError(f"no checkpoint {path!r}: is {model_dir!r} a training run?")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as e:  # zip, h5 and Keras errors of a damaged file
        other = "last" if checkpoint == "best" else "best"
        raise cli.UsageError(f"cannot load {path!r} ({type(e).__name__}: {str(e)[:200]}); "
                             f"try --checkpoint={other}") from None
    if isinstance(model.output, dict):  # keep only the colour classes
        model = keras.Model(model.input, model.output["logits"], name=model.name)
    try:
        bins = bins_lib.Bins.load(os.path.join(model_dir, bins_lib.ARTIFACT_NAME))
        with open(os.path.join(model_dir, training_state.FLAGS_NAME)) as f:
            run_flags = json.load(f)
    except (OSError, ValueError, KeyError) as e:
        raise cli.UsageError(f"{model_dir!r} is not a complete training run: {e}") from None
    return model, bins, run_flags


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


class ColorizerModule(tf.Module):
    """The exported graph: see the module docstring for the signatures."""

    def __init__(self, model, bins, work_size, max_pixels=DEFAULT_MAX_PIXELS, depth=3):
        super().__init__(name="colorizer")
        self.model = model
        self.centres = tf.constant(bins.centres, tf.float32)
        self.color_space = bins.grid.color_space
        self.work_size = int(work_size)
        self.max_pixels = int(max_pixels)
        self.multiple = 2 ** int(depth)  # the U-Net pools depth times

    def _logits(self, luma):
        """luma [B, H, W, 1] of any H, W -> logits [B, H, W, n] (zero padding, as in training)."""
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
        tf.TensorSpec([None, None, None, 1], tf.float32, name="luma"),
        tf.TensorSpec([None], tf.float32, name=TEMPERATURE)])
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
        logits = self._logits(luma)
        probabilities = tf.nn.softmax(logits, axis=-1)
        chroma = decoding.annealed_mean(logits, self.centres, temperature)
        confidence, _ = decoding.confidence_maps(probabilities)
        return {"chroma": chroma, "probabilities": probabilities, "confidence": confidence}

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
        luma = color.rgb_to_luma(rgb, self.color_space)
        work = working_size(shape[0], shape[1], self.work_size)
        small = tf.clip_by_value(tf.image.resize(luma, work, method="lanczos3", antialias=True),
                                 0.0, 1.0)
        outputs = self.luma_to_chroma(small[None], temperature[None])
        chroma = tf.image.resize(outputs["chroma"][0], shape[:2], method="bilinear")
        colorized = color.luma_chroma_to_rgb(luma, chroma, self.color_space)
        confidence = tf.image.resize(outputs["confidence"][0][..., None], shape[:2],
                                     method="bilinear")
        return (tf.io.encode_png(tf.image.convert_image_dtype(colorized, tf.uint8, saturate=True),
                                 compression=_PNG_COMPRESSION),
                tf.io.encode_png(tf.image.convert_image_dtype(
                    tf.clip_by_value(confidence, 0.0, 1.0), tf.uint8, saturate=True),
                    compression=_PNG_COMPRESSION))

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string, name=IMAGE_BYTES),
        tf.TensorSpec([None], tf.float32, name=TEMPERATURE)])
    def serve(self, image_bytes, temperature):
        temperature = self._temperatures(temperature, tf.shape(image_bytes)[0])
        colorized, confidence = tf.map_fn(
            lambda args: self._colorize_one(args[0], args[1]), (image_bytes, temperature),
            fn_output_signature=(tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.string)))
        return {COLORIZED_PNG: colorized, CONFIDENCE_PNG: confidence}


def next_version(export_dir):
    """1 + the largest integer version under export_dir (1 if none)."""
    versions = [int(n) for n in os.listdir(export_dir) if n.isdigit()] \
        if os.path.isdir(export_dir) else []
    return max(versions, default=0) + 1


def _field(number, wire_type, payload):
    """One protobuf field: tag varint, then a length-delimited payload or a varint."""
    def varint(value):
        out = bytearray()
        while True:
            bits = value & 0x7F
            value >>= 7
            out.append(bits | (0x80 if value else 0))
            if not value:
                return bytes(out)
    tag = varint(number << 3 | wire_type)
    return tag + varint(len(payload)) + payload


def warmup_record(model_name, inputs):
    """A serialized tensorflow.serving.PredictionLog holding one PredictRequest.

    Written by hand (tensorflow-serving-api is not a dependency): PredictionLog
    .predict_log = 6 -> PredictLog.request = 1 -> PredictRequest {model_spec = 1
    {name = 1, signature_name = 3}, inputs = 2 (map<string, TensorProto>)}.
    """
    spec = _field(1, 2, model_name.encode()) + _field(3, 2, SERVING_SIGNATURE.encode())
    request = _field(1, 2, spec)
    for key, value in inputs.items():
        entry = _field(1, 2, key.encode()) + _field(2, 2, tf.make_tensor_proto(value)
                                                    .SerializeToString())
        request += _field(2, 2, entry)
    return _field(6, 2, _field(1, 2, request))


def _warmup_png():
    """A small gray gradient photo, PNG bytes, for warmup requests."""
    ramp = tf.cast(tf.linspace(0.0, 255.0, 64), tf.uint8)
    image = tf.tile(ramp[None, :, None], [48, 1, 3])
    return tf.io.encode_png(image).numpy()


def _model_depth(model_dir):
    """The run's U-Net depth (model_config.json), which sets the pad multiple 2^depth."""
    try:
        with open(os.path.join(model_dir, training_state.MODEL_CONFIG_NAME)) as f:
            return int(json.load(f)["model"]["depth"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise cli.UsageError(f"cannot read the model config of {model_dir!r}: {e}") from None


def export(model_dir, export_dir, version=None, work_size=None, max_pixels=DEFAULT_MAX_PIXELS,
           checkpoint="best"):
    """Writes export_dir/<version>/ atomically; returns its path.

    The version appears under its final name only when complete (a temp dir, then a
    rename); temp dirs of killed exports are removed first.
    """
    if version is not None and version < 1:
        raise cli.UsageError(f"--version must be a positive integer, got {version}")
    if work_size is not None and work_size < MIN_WORK_SIZE:
        raise cli.UsageError(f"--work_size must be >= {MIN_WORK_SIZE} px, got {work_size}")
    if max_pixels < 1:
        raise cli.UsageError(f"--max_pixels must be >= 1, got {max_pixels}")
    cli.check_output_dir(export_dir, "--export_dir")
    model, bins, run_flags = load_trained_model(model_dir, checkpoint)
    depth = _model_depth(model_dir)
    work_size = work_size or int(run_flags.get("crop_size", 256))
    os.makedirs(export_dir, exist_ok=True)
    for name in safe_write.remove_stale_temps(export_dir):
        print(f"export: removed {name}, left by an export that did not finish")
    version = version or next_version(export_dir)
    final = os.path.join(export_dir, str(version))
    if os.path.exists(final):
        raise cli.UsageError(f"{final!r} exists; versions are never overwritten "
                             "(omit --version to take the next free one)")
    module = ColorizerModule(model, bins, work_size, max_pixels, depth)
    staging = safe_write.temp_path(final + "-assets")
    try:
        os.makedirs(staging)
        for name in (bins_lib.ARTIFACT_NAME, training_state.FLAGS_NAME,
                     training_state.MODEL_CONFIG_NAME):
            shutil.copy(os.path.join(model_dir, name), staging)
        with open(os.path.join(staging, "export.json"), "w") as f:
            json.dump({"work_size": work_size, "max_pixels": max_pixels,
                       "color_space": bins.grid.color_space,
                       "bins_fingerprint": bins.fingerprint, "depth": depth,
                       "checkpoint": checkpoint, "version": version}, f, indent=1)
        module.assets = [tf.saved_model.Asset(os.path.join(staging, n)) for n in sorted(
            os.listdir(staging))]
        with safe_write.replacing(final) as tmp:
            tf.saved_model.save(module, tmp, signatures={
                SERVING_SIGNATURE: module.serve, LUMA_SIGNATURE: module.luma_to_chroma})
            extra = os.path.join(tmp, "assets.extra")
            os.makedirs(extra, exist_ok=True)
            with tf.io.TFRecordWriter(os.path.join(extra, WARMUP_FILE)) as writer:
                writer.write(warmup_record(os.path.basename(os.path.normpath(export_dir)), {
                    IMAGE_BYTES: tf.constant([_warmup_png()]),
                    TEMPERATURE: tf.constant([decoding.DEFAULT_TEMPERATURE])}))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def define_flags(fv):
    """Defines this entry point's flags on the FlagValues fv."""
    d = cli.definer(fv)
    d.string("model_dir", None, "The training run to export (python -m colorize_tf.train).")
    d.string("export_dir", None, "Model base dir, e.g. saved_models/NAME; the version "
             "goes below it.")
    d.integer("version", 0, "Version number; 0: the next free one.")
    d.enum("checkpoint", "best", ["best", "last"], "Which checkpoint of the run.")
    d.integer("work_size", 0, f"Longest side the model sees (px, >= {MIN_WORK_SIZE}); 0: the "
              "training crop size.")
    d.integer("max_pixels", DEFAULT_MAX_PIXELS, "Larger images are refused.")


def main(argv=None):
    f, _ = cli.parse(define_flags, argv)
    try:
        if not f["model_dir"] or not f["export_dir"]:
            raise cli.UsageError("--model_dir and --export_dir are required")
        if f["version"] < 0 or f["work_size"] < 0:
            raise cli.UsageError("--version and --work_size must be >= 0 (0: automatic)")
        if not os.path.isdir(f["model_dir"]):
            raise cli.UsageError(f"--model_dir {f['model_dir']!r} is not a folder")
        path = export(f["model_dir"], f["export_dir"], f["version"] or None,
                      f["work_size"] or None, f["max_pixels"], f["checkpoint"])
    except cli.UsageError as e:
        cli.fail("export", e)
    except OSError as e:
        cli.fail("export", f"cannot write {f['export_dir']!r}: {e.strerror or e}")
    print(f"exported {path}\n  inspect: saved_model_cli show --dir {path} --all")


if __name__ == "__main__":
    cli.run_main("export", main)
