"""From per-pixel bin logits to chroma: softmax, annealed mean, confidence, video smoothing.

Annealed mean (Zhang et al. 2016, eq. 5): f_T(z) = exp(log z / T) / sum exp(log z / T),
chroma = sum_b f_T(z)_b * centre_b. Since log softmax(l) / T = l / T + const,
f_T(softmax(l)) = softmax(l / T): working on logits is exact and safe for small T.
T = 1 gives the mean of the distribution, T -> 0 its mode. Zhang use T = 0.38.
Used by training metrics, evaluation, export and video alike.
"""
import collections
import math

import keras
import numpy as np
import tensorflow as tf

from colorize_tf.serving_api import DEFAULT_TEMPERATURE  # noqa: F401 (0.38, Zhang 3.3)

MIN_TEMPERATURE = 0.01
SMOOTHING_FRAMES = 20  # ColorUNet paper, section 4.3: T = 20 frames
SMOOTHING_ALPHA = 0.2  # ... and alpha = 0.2


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


def annealed_mean(logits, centres, temperature=DEFAULT_TEMPERATURE):
    """logits [..., n], centres [n, 2] -> chroma [..., 2]."""
    weights = annealed_distribution(logits, temperature)
    return tf.tensordot(weights, tf.cast(centres, tf.float32), axes=1)


def annealed_mean_of_probabilities(probabilities, centres, temperature=DEFAULT_TEMPERATURE):
    """Same from probabilities [..., n] (e.g. smoothed over video frames)."""
    log_p = tf.math.log(tf.maximum(tf.cast(probabilities, tf.float32), 1e-30))
    return annealed_mean(log_p, centres, temperature)


@keras.saving.register_keras_serializable(package="colorize_tf")
class AnnealedMean(keras.layers.Layer):
    """Keras layer: (logits [B, H, W, n], temperature [B] or scalar) -> chroma [B, H, W, 2].

    The bin centres are fixed at construction; the temperature is given per call.
    """

    def __init__(self, centres, from_probabilities=False, **kwargs):
        super().__init__(**kwargs)
        self.centres = [list(map(float, c)) for c in np.asarray(centres)]
        self.from_probabilities = from_probabilities

    def call(self, scores, temperature=DEFAULT_TEMPERATURE):
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


class TemporalSmoother:
    """Exponentially weighted window over video frames' bin probabilities.

    p_t = sum_{i=0..frames} p_{t-i} e^{-alpha i}, normalised over bins (ColorUNet
    section 4.3). Holds exactly frames + 1 maps, so memory does not grow with video
    length. Works on numpy arrays [H, W, n].
    """

    def __init__(self, frames=SMOOTHING_FRAMES, alpha=SMOOTHING_ALPHA):
        self.weights = [math.exp(-alpha * i) for i in range(frames + 1)]
        self.window = collections.deque(maxlen=frames + 1)

    def reset(self):
        self.window.clear()

    def __call__(self, probabilities):
        """Adds frame t's probabilities [H, W, n]; returns the smoothed [H, W, n]."""
        self.window.appendleft(np.asarray(probabilities, np.float32))
        if len(self.window) > 1 and self.window[1].shape != self.window[0].shape:
            self.window = collections.deque([self.window[0]], maxlen=self.window.maxlen)
        total = sum(w * p for w, p in zip(self.weights, self.window))
        return total / np.maximum(total.sum(axis=-1, keepdims=True), 1e-12)
