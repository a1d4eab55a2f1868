"""From per-pixel bin logits to chroma: softmax, annealed mean, confidence (video
smoothing over frames: video_smoothing.py).

A Decoder says how a model's output becomes chroma: over joint chroma bins (ColorUNet,
Zhang), over each chroma channel's own bins (Sun and Shen, eq. 1), or the chroma itself
(regression, Sun and Shen eq. 2).

Annealed mean (Zhang et al. 2016, eq. 5): f_T(z) = exp(log z / T) / sum exp(log z / T),
chroma = sum_b f_T(z)_b * centre_b. Since log softmax(l) / T = l / T + const,
f_T(softmax(l)) = softmax(l / T): working on logits is exact and safe for small T.
T = 1 gives the mean of the distribution, T -> 0 its mode. Zhang use T = 0.38.
Used by training metrics, evaluation, export and video alike.

Tint correction (a Decoder's tint_correction beta, joint bins only): a model trained
with class rebalancing weights w over-predicts bin b by w_b (Zhang et al. 2016 eq. 4),
which the annealed mean turns into a tint over flat, uncertain regions (bright walls,
sand and water painted blue or pink). Dividing the probabilities by w undoes it (the
calibrated posterior), but per pixel it mutes every colour (held_out.py --alphas=1:
colourfulness 0.51). So only the photo's mean chroma is moved, by beta times the
distance from the annealed mean's to the calibrated posterior's mean: each pixel keeps
its own colour relative to the photo's. On the default model's 500 val-split photos
(docs/eval_general/held_out_tint.md) beta 1 took the colour cast from 9.6 to 7.9, at a
cost of 1.2 points of rebalanced AuC and some colour: a trade, so no shipped model
uses it (export --tint_correction turns it on).

Coherent colours (a Decoder's smoothing_sigma and flat_temperature, joint bins only;
export --smoothing_sigma, --flat_temperature): blotches are uncertain regions decoded to
saturated colours. smoothing_sigma blurs each bin's probabilities over the photo
(a Gaussian of that many cells of the model's output grid) before the annealed mean, so
a pixel's colour agrees with its neighbourhood's distribution; flat_temperature raises
each pixel's temperature towards 1 (the mean: muted) by that share of its
distribution's flatness (entropy / log n). Both take whole photos [..., H, W, n]. Screened
on the world's val split (docs/eval_world/README.md): sigma 1 gained 0.21 dB of PSNR for
0.3 points of rebalanced AuC; flat_temperature 1 gained a little of both; neither moved
the colour cast as the tint correction does. No shipped model uses them.
"""
import dataclasses
import json
import math
import os

import keras
import numpy as np
import tensorflow as tf

from colorize_tf import errors
from colorize_tf import safe_write
from colorize_tf.chroma import video_smoothing
from colorize_tf.serving_api import DEFAULT_TEMPERATURE  # noqa: F401 (0.38, Zhang 3.3)

MIN_TEMPERATURE = 0.01


def annealed_distribution(logits, temperature):
    """logits [..., n], temperature scalar or [B] -> f_T(softmax(logits)) [..., n].

    Temperatures below MIN_TEMPERATURE are raised to it (T = 0.01 is already the
    mode to float32 precision).
    """
    logits = tf.cast(logits, tf.float32)
    temperature = tf.maximum(tf.cast(temperature, tf.float32), MIN_TEMPERATURE)
    rank = tf.rank(logits)
    # A per-image temperature [B] broadcasts over [B, H, W, n].
    temperature = tf.reshape(temperature, tf.concat(
        [tf.shape(temperature), tf.ones([rank - tf.rank(temperature)], tf.int32)], 0))
    return tf.nn.softmax(logits / temperature, axis=-1)


def annealed_mean(logits, centres, temperature):
    """logits [..., n], centres [n, 2] -> chroma [..., 2]."""
    weights = annealed_distribution(logits, temperature)
    return tf.tensordot(weights, tf.cast(centres, tf.float32), axes=1)


def annealed_mean_of_probabilities(probabilities, centres, temperature):
    """Same from probabilities [..., n] (e.g. smoothed over video frames)."""
    return annealed_mean(_log_probabilities(probabilities), centres, temperature)


def _log_probabilities(probabilities):
    return tf.math.log(tf.maximum(tf.cast(probabilities, tf.float32), 1e-30))


def tint_corrected(chroma, logits, centres, weights, beta):
    """chroma [..., H, W, 2] decoded from logits [..., H, W, n] (or log-probabilities)
    of whole photos -> the same with each photo's mean chroma moved by beta towards
    the mean of the calibrated posterior softmax(logits - log weights) @ centres
    (module doc; weights: the bins' rebalancing weights [n], beta in [0, 1])."""
    logits = tf.cast(logits, tf.float32)
    calibrated = tf.tensordot(
        tf.nn.softmax(logits - tf.math.log(tf.constant(weights, tf.float32)), axis=-1),
        tf.constant(centres, tf.float32), axes=1)
    shift = (tf.reduce_mean(calibrated, axis=[-3, -2], keepdims=True)
             - tf.reduce_mean(chroma, axis=[-3, -2], keepdims=True))
    return chroma + beta * shift


def spatially_smoothed(probabilities, sigma):
    """probabilities [H, W, n] or [B, H, W, n] -> the same, each bin's map blurred by a
    Gaussian of standard deviation sigma (pixels of this grid) over the pixels inside
    the photo (at the borders the weights of the pixels that exist are renormalised).

    Written as two matrix products with [H, H] and [W, W] row-normalised Gaussian
    matrices (core TF ops; exact, no truncated kernel): the logits' grid of a model is
    small (a quarter of the working size, 48 x 48 for the default model), so the
    products cost less than the softmax before them."""
    probabilities = tf.cast(probabilities, tf.float32)
    shape = tf.shape(probabilities)
    height, width = shape[-3], shape[-2]

    def gaussian_matrix(size):
        positions = tf.cast(tf.range(size), tf.float32)
        squared = tf.square(positions[:, None] - positions[None, :])
        weights = tf.exp(-squared / (2.0 * sigma * sigma))
        return weights / tf.reduce_sum(weights, axis=1, keepdims=True)
    smoothed = tf.einsum("gh,...hwn->...gwn", gaussian_matrix(height), probabilities)
    smoothed = tf.einsum("vw,...hwn->...hvn", gaussian_matrix(width), smoothed)
    return smoothed / tf.maximum(tf.reduce_sum(smoothed, axis=-1, keepdims=True), 1e-30)


def flatness(probabilities):
    """probabilities [..., n] -> [...] in [0, 1]: the entropy over log n (0: one bin
    holds it all, 1: uniform)."""
    p = tf.cast(probabilities, tf.float32)
    n = tf.cast(tf.shape(p)[-1], tf.float32)
    entropy = -tf.reduce_sum(p * tf.math.log(tf.maximum(p, 1e-30)), axis=-1)
    return tf.clip_by_value(entropy / tf.math.log(tf.maximum(n, 2.0)), 0.0, 1.0)


def flat_raised_temperature(temperature, probabilities, strength):
    """A per-pixel temperature: T + (1 - T) * strength * flatness(p) [...]: T where the
    distribution is peaked, moving towards 1 (the mean: safe, muted) as it flattens.
    temperature scalar or [B]; probabilities [B, H, W, n] or [H, W, n]."""
    flat = flatness(probabilities)
    temperature = tf.cast(temperature, tf.float32)
    temperature = tf.reshape(temperature, tf.concat(
        [tf.shape(temperature), tf.ones([tf.rank(flat) - tf.rank(temperature)], tf.int32)], 0))
    return temperature + (1.0 - temperature) * strength * flat


@keras.saving.register_keras_serializable(package="colorize_tf")
class AnnealedMean(keras.layers.Layer):
    """Keras layer: (logits [B, H, W, n], temperature [B] or scalar) -> chroma [B, H, W, 2].

    The bin centres are fixed at construction; the temperature is given per call.
    """

    def __init__(self, centres, from_probabilities=False, **kwargs):
        super().__init__(**kwargs)
        self.centres = [list(map(float, c)) for c in np.asarray(centres)]
        self.from_probabilities = from_probabilities

    def call(self, scores, temperature):
        if self.from_probabilities:
            return annealed_mean_of_probabilities(scores, self.centres, temperature)
        return annealed_mean(scores, self.centres, temperature)

    def get_config(self):
        return {**super().get_config(), "centres": self.centres,
                "from_probabilities": self.from_probabilities}


def confidence_maps(probabilities):
    """probabilities [..., n] -> (top-1 probability [...], top1 / top2 ratio [...]).

    ColorUNet section 4.2.2: a high top-1 probability or a large ratio means the
    network is sure of the colour there.
    """
    top2 = tf.math.top_k(tf.cast(probabilities, tf.float32), k=2).values
    return top2[..., 0], top2[..., 0] / tf.maximum(top2[..., 1], 1e-12)




DECODER_NAME = "decoder.json"  # a Decoder saved beside its model: run dir, SavedModel assets
BINS = "bins"  # one distribution over n joint chroma bins
PER_CHANNEL = "per_channel"  # a distribution over each chroma channel's own bins
REGRESSION = "regression"  # the model outputs the chroma; no temperature
DECODINGS = (BINS, PER_CHANNEL, REGRESSION)


@dataclasses.dataclass(frozen=True)
class Decoder:
    """How a model's output ("scores") becomes chroma, graph-safe.

    BINS: scores are logits [..., n]; centres ((c0, c1), ...) n joint bin centres.
    PER_CHANNEL: logits [..., n0 + n1], the first n0 over chroma 0's bins, the rest
    over chroma 1's; centres ((n0 values), (n1 values)); each channel gets its own
    annealed mean. REGRESSION: scores are the chroma [..., 2]; centres (); the
    temperature is accepted and ignored.
    tint_correction (BINS only; 0: none) moves each photo's mean chroma that far
    towards the calibrated posterior's (module doc), with weights the bins'
    rebalancing weights; chroma() and chroma_of_scores() then take whole photos
    [..., H, W, n].
    "Probabilities" are what the exported colorize_luma signature returns and what
    video smoothing averages: the softmax (per channel for PER_CHANNEL), or the chroma
    itself for REGRESSION.
    """
    kind: str
    centres: tuple
    tint_correction: float = 0.0
    weights: tuple = ()
    smoothing_sigma: float = 0.0
    flat_temperature: float = 0.0

    def __post_init__(self):
        for name in ("smoothing_sigma", "flat_temperature"):
            value = getattr(self, name)
            if value and self.kind != BINS:
                raise errors.Error(f"{name} needs decoding {BINS!r}, not {self.kind!r}")
            if not 0.0 <= value < math.inf:
                raise errors.Error(f"{name} must be a finite number >= 0, got {value}")
        if self.flat_temperature > 1.0:
            raise errors.Error(f"flat_temperature must be in [0, 1], got {self.flat_temperature}")
        if self.tint_correction and self.kind != BINS:
            raise errors.Error(f"tint_correction needs decoding {BINS!r}, not {self.kind!r}")
        if not 0.0 <= self.tint_correction <= 1.0:
            raise errors.Error(f"tint_correction must be in [0, 1], got {self.tint_correction}")
        if self.tint_correction and len(self.weights) != len(self.centres):
            raise errors.Error(f"tint_correction needs one rebalancing weight per bin "
                               f"({len(self.centres)}), got {len(self.weights)}")

    @classmethod
    def for_bins(cls, bins):
        return cls(BINS, tuple(tuple(float(v) for v in c) for c in bins.centres))

    def with_tint_correction(self, beta, bins):
        """This decoder with tint_correction beta and the rebalancing weights of bins
        (beta 0: none)."""
        weights = tuple(float(w) for w in bins.weights) if beta else ()
        return dataclasses.replace(self, tint_correction=float(beta), weights=weights)

    @classmethod
    def for_channels(cls, grid):
        """Per-channel bins of a bins.Grid (cells[i] bins along chroma i)."""
        return cls(PER_CHANNEL, tuple(tuple(float(v) for v in axis)
                                      for axis in grid.channel_centres()))

    @classmethod
    def regression(cls):
        return cls(REGRESSION, ())

    @property
    def num_scores(self):
        """Channels of the model's output."""
        if self.kind == BINS:
            return len(self.centres)
        if self.kind == PER_CHANNEL:
            return len(self.centres[0]) + len(self.centres[1])
        return 2

    @property
    def uses_temperature(self):
        return self.kind != REGRESSION

    def probabilities(self, scores):
        """scores [..., num_scores] -> probabilities [..., num_scores] (see the class)."""
        scores = tf.cast(scores, tf.float32)
        if self.kind == BINS:
            return tf.nn.softmax(scores, axis=-1)
        if self.kind == PER_CHANNEL:
            n0 = len(self.centres[0])
            return tf.concat([tf.nn.softmax(scores[..., :n0], axis=-1),
                              tf.nn.softmax(scores[..., n0:], axis=-1)], axis=-1)
        return scores

    @property
    def coherent(self):
        """Whether the probabilities are smoothed over space or the temperature raised
        where they are flat before the annealed mean (module doc): whole photos then."""
        return bool(self.smoothing_sigma or self.flat_temperature)

    def chroma_of_scores(self, scores, temperature):
        """The model's output [..., num_scores] -> chroma [..., 2]; for BINS straight from
        the logits (annealed_mean: exact for small T)."""
        if self.kind == BINS and not self.coherent:
            return self._tint_corrected(annealed_mean(scores, self.centres, temperature),
                                        scores)
        return self.chroma(self.probabilities(scores), temperature)

    def _tint_corrected(self, chroma, logits):
        if not self.tint_correction:
            return chroma
        return tint_corrected(chroma, logits, self.centres, self.weights,
                              self.tint_correction)

    def decode_scores(self, scores, temperature):
        """The model's output [..., num_scores] -> (chroma [..., 2], confidence [...]):
        what the serving graph needs, without handing out the probabilities. For BINS
        two fused softmax kernels (at T and at 1) and a max: measured 2x faster than the
        same with top_k, at 255 bins (bench/colorize.py)."""
        return (self.chroma_of_scores(scores, temperature),
                self.confidence(self.probabilities(scores)))

    def chroma(self, probabilities, temperature):
        """probabilities [..., num_scores], temperature scalar or [B] -> chroma [..., 2]."""
        if self.kind == BINS:
            if self.smoothing_sigma:
                probabilities = spatially_smoothed(probabilities, self.smoothing_sigma)
            if self.flat_temperature:
                temperature = flat_raised_temperature(temperature, probabilities,
                                                      self.flat_temperature)
            log_p = _log_probabilities(probabilities)
            return self._tint_corrected(annealed_mean(log_p, self.centres, temperature),
                                        log_p)
        if self.kind == PER_CHANNEL:
            n0 = len(self.centres[0])
            parts = [probabilities[..., :n0], probabilities[..., n0:]]
            return tf.concat([annealed_mean_of_probabilities(
                p, tf.constant(c, tf.float32)[:, None], temperature)
                for p, c in zip(parts, self.centres)], axis=-1)
        return tf.cast(probabilities, tf.float32)

    def confidence(self, probabilities):
        """probabilities -> [...] in [0, 1]: the top-1 probability (BINS), the product
        of both channels' (PER_CHANNEL), 1 (REGRESSION: no distribution to judge)."""
        if self.kind == BINS:  # confidence_maps' top-1, without its top_k sort
            return tf.reduce_max(tf.cast(probabilities, tf.float32), axis=-1)
        if self.kind == PER_CHANNEL:
            n0 = len(self.centres[0])
            return (tf.reduce_max(probabilities[..., :n0], axis=-1) *
                    tf.reduce_max(probabilities[..., n0:], axis=-1))
        return tf.ones_like(probabilities[..., 0])

    def smoother(self, frames=video_smoothing.SMOOTHING_FRAMES,
                 alpha=video_smoothing.SMOOTHING_ALPHA, motion=video_smoothing.SMOOTHING_MOTION):
        """A smoother for video frames of this decoder's probabilities: MotionSmoother
        (motion; frames unused) or TemporalSmoother; both are called with
        (probabilities, luma)."""
        if motion:
            return video_smoothing.MotionSmoother(alpha, normalise=self.kind != REGRESSION)
        return video_smoothing.TemporalSmoother(frames, alpha,
                                                normalise=self.kind != REGRESSION)

    def with_coherence(self, smoothing_sigma=0.0, flat_temperature=0.0):
        """This decoder with the coherent-colour settings (0, 0: the plain annealed mean)."""
        return dataclasses.replace(self, smoothing_sigma=float(smoothing_sigma),
                                   flat_temperature=float(flat_temperature))

    def to_dict(self):
        data = {"kind": self.kind, "centres": [list(c) for c in self.centres]}
        if self.tint_correction:
            data.update(tint_correction=self.tint_correction, weights=list(self.weights))
        if self.smoothing_sigma:
            data["smoothing_sigma"] = self.smoothing_sigma
        if self.flat_temperature:
            data["flat_temperature"] = self.flat_temperature
        return data

    def save(self, folder):
        """Writes folder/DECODER_NAME (temp file, then rename)."""
        safe_write.write_json(os.path.join(folder, DECODER_NAME), self.to_dict())

    @classmethod
    def load(cls, folder, bins):
        """The Decoder saved in folder; a folder from before decoders were saved holds
        a model over the joint bins. ValueError naming the file for a damaged one, and
        for joint-bin centres that are not bins' (the model's logits mean bins)."""
        path = os.path.join(folder, DECODER_NAME)
        if not os.path.exists(path):
            return cls.for_bins(bins)
        try:
            with open(path, "rb") as f:
                decoder = cls.from_dict(json.loads(f.read()))
            if decoder.kind == BINS and len(decoder.centres) != len(bins.centres):
                raise errors.Error(f"it has {len(decoder.centres)} bin centres where the "
                                   f"model's bins have {len(bins.centres)}")
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            raise errors.Error(f"{path!r} is not a decoder file: {e}") from None
        return decoder

    @classmethod
    def from_dict(cls, data):
        """A Decoder from to_dict()'s dict; ValueError naming the field that is wrong."""
        if not isinstance(data, dict):
            raise errors.Error(f"expected a JSON object, got {type(data).__name__}")
        kind = data.get("kind")
        if kind not in DECODINGS:
            raise errors.Error(f"unknown decoding {kind!r}; expected one of {DECODINGS}")
        centres = data.get("centres")
        if not isinstance(centres, list) or not all(isinstance(c, list) for c in centres):
            raise errors.Error("its centres must be a list of lists of numbers")
        expected = {BINS: "pairs of numbers, one per bin", PER_CHANNEL: "two lists of numbers",
                    REGRESSION: "empty"}[kind]
        if (kind == BINS and (not centres or any(len(c) != 2 for c in centres))) or \
                (kind == PER_CHANNEL and (len(centres) != 2 or not all(centres))) or \
                (kind == REGRESSION and centres):
            raise errors.Error(f"its centres for decoding {kind!r} must be {expected}")
        return cls(kind, tuple(_finite_numbers(c, "centres") for c in centres),
                   _finite_number(data.get("tint_correction", 0.0), "tint_correction"),
                   _finite_numbers(data.get("weights", []), "weights"),
                   _finite_number(data.get("smoothing_sigma", 0.0), "smoothing_sigma"),
                   _finite_number(data.get("flat_temperature", 0.0), "flat_temperature"))


def _finite_number(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value):
        raise errors.Error(f"its {name} must be a finite number, got {value!r:.40}")
    return float(value)


def _finite_numbers(values, name):
    if not isinstance(values, list):
        raise errors.Error(f"its {name} must be a list of numbers")
    return tuple(_finite_number(v, name) for v in values)
