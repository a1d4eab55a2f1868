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
import json
import os
import shutil

import tensorflow as tf

from colorize_tf import bins as bins_lib
from colorize_tf import cli
from colorize_tf import color
from colorize_tf import decoding

SERVING_SIGNATURE = "serving_default"
LUMA_SIGNATURE = "colorize_luma"
IMAGE_BYTES = "image_bytes"
TEMPERATURE = "temperature"
COLORIZED_PNG = "colorized_png_bytes"
CONFIDENCE_PNG = "confidence_png_bytes"
DEFAULT_MAX_PIXELS = 50_000_000  # 8660 x 5773; larger inputs are refused (decompression bombs)
WARMUP_FILE = "tf_serving_warmup_requests"
_MULTIPLE = 8  # the U-Net pools three times
# zlib level 1: measured at 768x512, level 6 (the default) encodes ~3x slower than the
# model runs, for outputs only ~10% smaller.
_PNG_COMPRESSION = 1


def load_trained_model(model_dir, checkpoint="best"):
    """-> (keras model returning logits, Bins, the run's flags dict) from a training run."""
    import keras
    from colorize_tf import train
    path = os.path.join(model_dir, train.CHECKPOINT_DIR, f"{checkpoint}.keras")
    if not os.path.exists(path):
        raise cli.UsageError(f"no checkpoint {path!r}: is {model_dir!r} a training run?")
    model = keras.models.load_model(path, compile=False)
    if isinstance(model.output, dict):  # keep only the colour classes
        model = keras.Model(model.input, model.output["logits"], name=model.name)
    bins = bins_lib.Bins.load(os.path.join(model_dir, bins_lib.ARTIFACT_NAME))
    with open(os.path.join(model_dir, train.FLAGS_NAME)) as f:
        run_flags = json.load(f)
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


def working_size(height, width, work_size):
    """Shrinks (never enlarges) so the longer side is at most work_size; int32 [2]."""
    scale = tf.minimum(1.0, work_size / tf.cast(tf.maximum(height, width), tf.float32))
    size = tf.cast(tf.round(tf.cast(tf.stack([height, width]), tf.float32) * scale), tf.int32)
    return tf.maximum(size, 1)


class ColorizerModule(tf.Module):
    """The exported graph: see the module docstring for the signatures."""

    def __init__(self, model, bins, work_size, max_pixels=DEFAULT_MAX_PIXELS):
        super().__init__(name="colorizer")
        self.model = model
        self.centres = tf.constant(bins.centres, tf.float32)
        self.color_space = bins.grid.color_space
        self.work_size = int(work_size)
        self.max_pixels = int(max_pixels)

    def _logits(self, luma):
        """luma [B, H, W, 1] of any H, W -> logits [B, H, W, n] (zero padding, as in training)."""
        shape = tf.shape(luma)
        pad_h = (-shape[1]) % _MULTIPLE
        pad_w = (-shape[2]) % _MULTIPLE
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
        temperature = self._temperatures(temperature, tf.shape(luma)[0])
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
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        shape = tf.shape(image)
        tf.debugging.assert_less_equal(
            tf.cast(shape[0], tf.int64) * tf.cast(shape[1], tf.int64),
            tf.constant(self.max_pixels, tf.int64),
            message=too_large)
        rgb = tf.image.convert_image_dtype(image, tf.float32)
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


def export(model_dir, export_dir, version=None, work_size=None, max_pixels=DEFAULT_MAX_PIXELS,
           checkpoint="best"):
    """Writes export_dir/<version>/ atomically; returns its path."""
    model, bins, run_flags = load_trained_model(model_dir, checkpoint)
    from colorize_tf import train
    work_size = work_size or int(run_flags.get("crop_size", 256))
    version = version or next_version(export_dir)
    final = os.path.join(export_dir, str(version))
    if os.path.exists(final):
        raise cli.UsageError(f"{final!r} exists; versions are never overwritten "
                             "(omit --version to take the next free one)")
    os.makedirs(export_dir, exist_ok=True)
    tmp = os.path.join(export_dir, f".tmp-{version}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    module = ColorizerModule(model, bins, work_size, max_pixels)
    staging = tmp + "-assets"
    os.makedirs(staging, exist_ok=True)
    for name in (bins_lib.ARTIFACT_NAME, train.FLAGS_NAME, train.MODEL_CONFIG_NAME):
        shutil.copy(os.path.join(model_dir, name), staging)
    with open(os.path.join(staging, "export.json"), "w") as f:
        json.dump({"work_size": work_size, "max_pixels": max_pixels,
                   "color_space": bins.grid.color_space, "bins_fingerprint": bins.fingerprint,
                   "checkpoint": checkpoint, "version": version}, f, indent=1)
    module.assets = [tf.saved_model.Asset(os.path.join(staging, n)) for n in sorted(
        os.listdir(staging))]
    try:
        tf.saved_model.save(module, tmp, signatures={
            SERVING_SIGNATURE: module.serve, LUMA_SIGNATURE: module.luma_to_chroma})
        extra = os.path.join(tmp, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        with tf.io.TFRecordWriter(os.path.join(extra, WARMUP_FILE)) as writer:
            writer.write(warmup_record(os.path.basename(os.path.normpath(export_dir)), {
                IMAGE_BYTES: tf.constant([_warmup_png()]),
                TEMPERATURE: tf.constant([decoding.DEFAULT_TEMPERATURE])}))
        os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
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
    d.integer("work_size", 0, "Longest side the model sees (px); 0: the training crop size.")
    d.integer("max_pixels", DEFAULT_MAX_PIXELS, "Larger images are refused.")


def main(argv=None):
    f, _ = cli.parse(define_flags, argv)
    try:
        if not f["model_dir"] or not f["export_dir"]:
            raise cli.UsageError("--model_dir and --export_dir are required")
        path = export(f["model_dir"], f["export_dir"], f["version"] or None,
                      f["work_size"] or None, f["max_pixels"], f["checkpoint"])
    except cli.UsageError as e:
        cli.fail("export", e)
    print(f"exported {path}\n  inspect: saved_model_cli show --dir {path} --all")


if __name__ == "__main__":
    main()
