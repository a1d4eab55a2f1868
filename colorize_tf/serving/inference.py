"""The Python API: colorize arrays and encoded photos with an exported SavedModel.

    from colorize_tf import Colorizer
    rgb = Colorizer("saved_models/colorunet_landscapes").colorize(gray_uint8, temperature=0.38)

Photos go through the SavedModel's `serving_default` (the graph TF Serving runs);
with a work size of their own, or for video frames, through `luma_probabilities` with the
same preprocess and render steps (serving/graph.py), so that video frames can have their
bin probabilities smoothed over time (ColorUNet section 4.3) before the annealed mean.
"""
import os

import cv2
import numpy as np
import tensorflow as tf

from colorize_tf import errors
from colorize_tf import presets
from colorize_tf import serving_api
from colorize_tf.chroma.bins import BINS_NAME, Bins
from colorize_tf.chroma import color
from colorize_tf.chroma import decoding
from colorize_tf.chroma.hints import point_arrays, simulate
from colorize_tf.modeling.model import build_model, decoder_output_only, read_config
# Where models are and the errors of finding one live with the shipped models (no
# TensorFlow: data prep and the client use them); the Python API offers them here too.
from colorize_tf.presets import ModelError
from colorize_tf.presets import ModelNotFound  # noqa: F401
from colorize_tf.presets import SAVED_MODEL_ENV  # noqa: F401
from colorize_tf.presets import default_saved_model
from colorize_tf.presets import resolve_saved_model
from colorize_tf.presets import shipped_model_path  # noqa: F401
from colorize_tf.serving import graph


def load_keras_model(saved_model):
    """A SavedModel of colorize_tf -> (its Keras model, returning the output the decoder
    reads, with the exported weights; its Bins; its graph.ExportInfo): for a new
    serving graph around its weights (export --from_saved_model) or a warm start."""
    saved_model = resolve_saved_model(saved_model)
    assets = os.path.join(saved_model, "assets")
    try:
        info = graph.ExportInfo.load(saved_model)
        bins = Bins.load(os.path.join(assets, BINS_NAME))
        model_config = read_config(assets)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"{saved_model!r} is not a SavedModel of colorize_tf: "
                         f"{e}") from None
    model = decoder_output_only(build_model(model_config))
    try:  # the module's "model" attribute holds the Keras model's variables
        status = tf.train.Checkpoint(model=model).read(os.path.join(
            saved_model, "variables", "variables"))
    except (ValueError, IndexError, tf.errors.OpError) as e:  # IndexError: cut short
        raise ModelError(f"cannot read the weights of {saved_model!r}: its variables/ "
                         f"are damaged or cut short ({type(e).__name__}: "
                         f"{str(e)[:200]})") from None
    try:
        status.assert_existing_objects_matched()
    except AssertionError as e:
        raise ModelError(f"the weights of {saved_model!r} do not fit its "
                         f"model_config.json: {str(e)[:300]}") from None
    return model, bins, info


def model_name(saved_model):
    """A SavedModel's name: saved_models/NAME or saved_models/NAME/VERSION -> NAME (a
    folder that holds saved_model.pb itself and is not a version: its own name)."""
    parent, name = os.path.split(os.path.normpath(resolve_saved_model(saved_model)))
    return os.path.basename(parent) if serving_api.version_number(name) is not None \
        else name


IMAGE_EXPECTED = "a uint8 image array [H, W], [H, W, 1] or RGB [H, W, 3]"


def _described(value):
    """What a caller gave, in a few words: its type, and an array's dtype and shape."""
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    return f"{type(value).__name__} {ascii(value)[:40]}" if isinstance(
        value, (str, bytes, bytearray)) else type(value).__name__


def checked_image(image):
    """Colorizer.colorize's image -> uint8 RGB [H, W, 3]; TypeError for what is not a
    uint8 array, ValueError for a shape that is not an image's, each saying what was
    expected and what came."""
    # numpy arrays and what converts to one (a tf.Tensor, a PIL image), not lists:
    # a list of numbers is never uint8.
    if not hasattr(image, "__array__") and not hasattr(image, "__array_interface__"):
        hint = " (encoded image bytes: colorize_bytes([data]))" \
            if isinstance(image, (bytes, bytearray)) else ""
        raise TypeError(f"expected {IMAGE_EXPECTED}, got {_described(image)}{hint}")
    array = np.asarray(image)
    if array.dtype != np.uint8:
        scale = " (scale to 0-255 and use .astype(np.uint8))" \
            if array.dtype.kind in "fiu" else ""
        raise TypeError(f"expected {IMAGE_EXPECTED}, got {_described(array)}{scale}")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3):
        raise errors.Error(f"expected {IMAGE_EXPECTED}, got {_described(np.asarray(image))}")
    if min(array.shape[:2]) < 1:
        raise errors.Error(f"expected {IMAGE_EXPECTED}, got an empty image: "
                           f"{_described(np.asarray(image))}")
    return np.repeat(array, 3, axis=-1) if array.shape[-1] == 1 else array


HINT_SEED = 2017  # evaluation's simulated hints: the same points for every model and run


class Colorizer:
    """Colorizes images with an exported SavedModel (see python -m colorize_tf.export)."""

    def __init__(self, saved_model=None):
        """saved_model: a version or model base folder (str or os.PathLike), or a
        shipped model's name (presets.py); None: default_saved_model(), looked up now.
        ModelError (ModelNotFound where nothing is there) for anything else, and for a
        folder that is not a usable SavedModel of colorize_tf."""
        if saved_model is None:
            saved_model = default_saved_model()
        elif isinstance(saved_model, os.PathLike):
            saved_model = os.fspath(saved_model)
        if not isinstance(saved_model, str) or not saved_model:
            names = ", ".join(p.name for p in presets.PRESETS)
            raise ModelError(f"saved_model must be a SavedModel folder or a shipped "
                             f"model's name ({names}), or None for the default; got "
                             f"{saved_model!r}")
        self.path = resolve_saved_model(saved_model)
        try:
            self._load()
        except (OSError, ValueError, KeyError, TypeError, tf.errors.OpError) as e:
            if isinstance(e, ModelError):
                raise
            raise ModelError(f"{self.path!r} is not a usable SavedModel of colorize_tf: "
                             f"{type(e).__name__}: {str(e)[:300]}") from None

    def _load(self):
        """Loads self.path's signatures and assets (raises what TF and json raise)."""
        self._loaded = tf.saved_model.load(self.path)
        self._serve = self._loaded.signatures[serving_api.SERVING_SIGNATURE]
        self._luma = self._loaded.signatures[serving_api.LUMA_SIGNATURE]
        self._probabilities = self._loaded.signatures.get(serving_api.PROBABILITIES_SIGNATURE)
        self._with_hints = self._loaded.signatures.get(serving_api.HINTS_SIGNATURE)
        self._luma_hints = self._loaded.signatures.get(serving_api.LUMA_HINTS_SIGNATURE)
        assets = os.path.join(self.path, "assets")
        self.export_info = graph.ExportInfo.load(self.path)
        self.bins = Bins.load(os.path.join(assets, BINS_NAME))
        self.decoder = decoding.Decoder.load(assets, self.bins)
        self.color_space = self.bins.grid.color_space

    def _temperature(self, temperature):
        """None -> the model's own default temperature (its export metadata); TypeError
        or ValueError for anything but a finite number > 0."""
        if temperature is None:
            return self.export_info.default_temperature
        problem = serving_api.temperature_problem(temperature)
        if problem:
            raise (TypeError if "must be a number" in problem else errors.Error)(problem)
        return float(temperature)

    @property
    def takes_hints(self):
        """Whether the model was trained with colour hints (--hints)."""
        return self._with_hints is not None

    def _check_hints(self):
        if not self.takes_hints:
            raise errors.Error(f"{self.path} takes no colour hints (a model trained with "
                               "hints does: the shipped one is 'landscapes_hints')")

    def colorize_bytes(self, images, temperature=None, hints=None):
        """Encoded images [list of bytes] -> [(colorized PNG bytes, confidence PNG bytes)].
        temperature None: the model's default (ExportInfo.default_temperature). hints
        (a hints model only): for each image a list of {"point": (row, column)
        relative to the photo, 0-1, "color": (r, g, b) 0-255}, or None."""
        if isinstance(images, (bytes, bytearray, str)) or not isinstance(
                images, (list, tuple)) or not all(isinstance(d, bytes) for d in images):
            raise TypeError("images must be a list of encoded images (bytes), got "
                            f"{_described(images)}" + (
                                " (one image: [data])" if isinstance(images, bytes) else ""))
        temperature = self._temperature(temperature)
        if not images:  # a batch of none: nothing to send to the graph
            return []
        arguments = dict(image_bytes=tf.constant(images, tf.string),
                         temperature=tf.constant([temperature], tf.float32))
        if hints is None:
            out = self._serve(**arguments)
        else:
            self._check_hints()
            if not isinstance(hints, (list, tuple)) or len(hints) != len(images):
                given = len(hints) if isinstance(hints, (list, tuple)) else \
                    f"a {type(hints).__name__}"
                raise errors.Error(f"hints: one list per image, got {given} for "
                                   f"{len(images)} image{'s' if len(images) != 1 else ''}")
            points, colors = point_arrays(hints)
            out = self._with_hints(**arguments, **{
                serving_api.HINT_POINTS: tf.constant(points),
                serving_api.HINT_COLORS: tf.constant(colors)})
        return list(zip(out[serving_api.COLORIZED_PNG].numpy(),
                        out[serving_api.CONFIDENCE_PNG].numpy()))

    def colorize(self, image, temperature=None, confidence=False,
                 work_size=None, smoother=None, hints=None):
        """uint8 image [H, W], [H, W, 1] or RGB [H, W, 3] -> colour RGB uint8 [H, W, 3].

        A colour image is colorized from its luma; temperature None is the model's
        default (0.5 for the shipped general model, 0.38 for the landscapes one).
        confidence=True also returns the top-1 bin probability [H, W] in [0, 1].
        work_size overrides the exported working size; smoother
        (video_smoothing.TemporalSmoother) smooths video frames.
        hints (a hints model, at its exported working size): a list of {"point":
        (row, column) relative to the image, 0-1, "color": (r, g, b) 0-255}.
        """
        image = checked_image(image)
        if isinstance(hints, (list, tuple)) and any(isinstance(h, (list, tuple))
                                                    for h in hints):
            raise errors.Error(f"hints: colorize() takes one photo's hints, a list of "
                               f"{{\"point\": ..., \"color\": ...}}; got a list of "
                               f"{len(hints)} holding lists (hints for several photos go "
                               f"to colorize_bytes, one list per image)")
        if hints is not None and (work_size is not None or smoother is not None):
            raise errors.Error("hints are given at the exported working size and not to "
                               "video frames: leave work_size and smoother out")
        if work_size is None and smoother is None:
            ok, png = cv2.imencode(".png", image[..., ::-1].copy())
            colorized, conf = self.colorize_bytes(
                [png.tobytes()], temperature, None if hints is None else [hints])[0]
            rgb = tf.io.decode_png(colorized, channels=3).numpy()
            if confidence:
                return rgb, tf.io.decode_png(conf).numpy()[..., 0].astype(np.float32) / 255.0
            return rgb
        return self._colorize_frame(image, temperature, confidence,
                                    work_size or self.export_info.work_size, smoother)

    def probabilities(self, rgb_uint8, work_size=None, hint_count=None, hint_seeds=None):
        """RGB uint8 [B, H, W, 3] (photos of one size) -> (full-size luma [B, H, W, 1],
        bin probabilities [B, h', w', n] on the luma_probabilities grid: the working
        size h x w over export_info.probabilities_stride, the model's logits' grid),
        float32 tensors: the serving graph's steps up to the softmax, in one model call
        (to_work_grid brings what is decoded from them to the working size).

        hint_count (a hints model): that many hints revealed from each photo's own
        colours at the working size, as in training (hints.simulate), seeded by
        (HINT_SEED, hint_seeds[i]) (default: i)."""
        rgb = tf.convert_to_tensor(rgb_uint8, tf.uint8)
        luma, small = graph.preprocess(rgb, work_size or self.export_info.work_size,
                                       self.color_space)
        if hint_count is None:
            return luma, self.probabilities_of_luma(small)
        self._check_hints()
        truth = tf.image.resize(tf.cast(rgb, tf.float32) / 255.0, tf.shape(small)[1:3],
                                method="lanczos3", antialias=True)
        chroma = color.rgb_to_luma_chroma(tf.clip_by_value(truth, 0.0, 1.0),
                                          self.color_space)[1]
        seeds = range(len(chroma)) if hint_seeds is None else hint_seeds
        maps = [simulate(c, tf.ones_like(c[..., :1]),
                                   tf.constant([HINT_SEED, seed], tf.int64), hint_count)
                for c, seed in zip(chroma, seeds)]
        probabilities = self._luma_hints(**{
            serving_api.LUMA: small,
            serving_api.HINT_CHROMA: tf.stack([m[0] for m in maps]),
            serving_api.HINT_MASK: tf.stack([m[1] for m in maps])})[
                serving_api.PROBABILITIES]
        return luma, probabilities

    def probabilities_of_luma(self, small_luma):
        """Working-size luma [B, h, w, 1] in [0, 1] -> bin probabilities [B, h', w', n]
        (as probabilities()): the model and its softmax (the luma_probabilities
        signature; colorize_luma at T = 1 in exports from before it)."""
        if self._probabilities is None:
            return self._luma(**{serving_api.LUMA: small_luma,
                                 serving_api.TEMPERATURE: tf.constant([1.0])})[
                serving_api.PROBABILITIES]
        return self._probabilities(**{serving_api.LUMA: small_luma})[
            serving_api.PROBABILITIES]

    def predict_probabilities(self, rgb_uint8, work_size=None):
        """RGB uint8 [H, W, 3] -> (full-size luma [H, W, 1], bin probabilities [h', w', n]
        as probabilities(), numpy): one photo of probabilities()."""
        luma, probabilities = self.probabilities(tf.convert_to_tensor(rgb_uint8)[None],
                                                 work_size)
        return luma[0], probabilities[0].numpy()

    def to_work_grid(self, maps, luma, work_size=None):
        """maps [..., h', w', C] on the probabilities' grid (what is decoded from them:
        chroma, confidence) of the full-size luma [..., H, W, 1] -> [..., h, w, C] on
        the working-size grid that work_size (None: the exported one) gives that luma:
        the serving graph's upsampling from the logits' grid (graph.to_work_grid)."""
        shape = tf.shape(luma)
        work = graph.working_size(shape[-3], shape[-2],
                                  work_size or self.export_info.work_size)
        return graph.to_work_grid(maps, work, self.export_info.probabilities_stride)

    def render(self, luma, probabilities, temperature=None, work_size=None):
        """(luma [H, W, 1], probabilities [h', w', n] of predict_probabilities at
        work_size) -> (RGB uint8 [H, W, 3], top-1 [H, W] in [0, 1]): the annealed mean
        at this temperature and the top-1 probability on the probabilities' grid, then
        the serving graph's steps: to the working size, and its render step."""
        chroma = self.decoder.chroma(probabilities, self._temperature(temperature))
        top1 = self.decoder.confidence(probabilities)
        both = self.to_work_grid(tf.concat([chroma, top1[..., None]], -1), luma, work_size)
        rgb, confidence = graph.render(luma, both[..., :-1], both[..., -1],
                                       self.color_space, self.export_info.upsampling)
        return rgb.numpy(), confidence.numpy()[..., 0].astype(np.float32) / 255.0

    def _colorize_frame(self, rgb_uint8, temperature, confidence, work_size, smoother):
        luma, probabilities = self.predict_probabilities(rgb_uint8, work_size)
        if smoother is not None:
            probabilities = smoother(probabilities, luma)
        result, top1 = self.render(luma, probabilities, temperature, work_size)
        return (result, top1) if confidence else result
