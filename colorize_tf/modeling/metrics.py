"""Metrics: masked bin accuracy and chroma error for training (Keras metrics on the
packed targets of input_pipeline), and image metrics for evaluation."""
import keras
import numpy as np
import tensorflow as tf

from colorize_tf.chroma import decoding
from colorize_tf.data import input_pipeline


def unpack_targets(y_true):
    """Packed targets -> (true bin [B, H, W] int32, chroma [..., 2], weight, mask)."""
    parts = input_pipeline.unpack_targets(y_true)
    # Soft targets list the nearest bin (the largest probability) first.
    return parts.bins[..., 0], parts.chroma, parts.weight, parts.mask


class _MaskedMean(keras.metrics.Metric):
    """Mean of a per-pixel value over the valid pixels of everything seen."""

    def __init__(self, name, **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def per_pixel(self, y_true, y_pred):
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        del sample_weight
        values, mask = self.per_pixel(y_true, tf.cast(y_pred, tf.float32))
        self.total.assign_add(tf.reduce_sum(values * mask))
        self.count.assign_add(tf.reduce_sum(mask))

    def result(self):
        return self.total / tf.maximum(self.count, 1.0)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)


@keras.saving.register_keras_serializable(package="colorize_tf")
class MaskedTopKAccuracy(_MaskedMean):
    """Fraction of valid pixels whose true bin is among the k highest logits."""

    def __init__(self, k=1, name=None, **kwargs):
        super().__init__(name=name or f"top{k}_accuracy", **kwargs)
        self.k = k

    def per_pixel(self, y_true, y_pred):
        true_bin, _, _, mask = unpack_targets(y_true)
        flat_logits = tf.reshape(y_pred, [-1, tf.shape(y_pred)[-1]])
        hit = tf.math.in_top_k(tf.reshape(true_bin, [-1]), flat_logits, self.k)
        return tf.reshape(tf.cast(hit, tf.float32), tf.shape(mask)), mask

    def get_config(self):
        return {**super().get_config(), "k": self.k}


@keras.saving.register_keras_serializable(package="colorize_tf")
class MaskedChromaError(_MaskedMean):
    """Mean squared chroma error (sum over the 2 channels) of the decoded chroma at
    temperature (the annealed mean over centres [n, 2], or decoder: a
    decoding.Decoder's dict for per-channel and regression outputs)."""

    def __init__(self, centres=None, temperature=decoding.DEFAULT_TEMPERATURE,
                 name="chroma_mse", decoder=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if decoder is None:
            decoder = {"kind": decoding.BINS, "centres": [list(map(float, c))
                                                          for c in np.asarray(centres)]}
        self.decoder = decoding.Decoder.from_dict(decoder)
        self.temperature = temperature

    def per_pixel(self, y_true, y_pred):
        if self.decoder.kind == decoding.REGRESSION:
            chroma, mask = input_pipeline.unpack_regression(y_true)
        else:
            _, chroma, _, mask = unpack_targets(y_true)
        predicted = self.decoder.chroma_of_scores(y_pred, self.temperature)
        return tf.reduce_sum(tf.square(predicted - chroma), axis=-1), mask

    def get_config(self):
        return {**super().get_config(), "decoder": self.decoder.to_dict(),
                "temperature": self.temperature}


# ---------------------------------------------------------------------------
# Image metrics for evaluation (numpy / eager TF on single images).

AUC_THRESHOLDS = np.arange(0, 151)  # Zhang et al. 2016, section 3.1: 0 to 150 in ab units


def psnr(predicted, truth):
    """PSNR in dB of two uint8 RGB images [H, W, 3] (peak 255)."""
    return float(tf.image.psnr(tf.constant(predicted), tf.constant(truth), max_val=255))


def ssim(predicted, truth):
    """SSIM of two uint8 RGB images [H, W, 3] (Gaussian window 11, sigma 1.5)."""
    size = min(predicted.shape[0], predicted.shape[1], 11)
    return float(tf.image.ssim(tf.constant(predicted), tf.constant(truth), max_val=255,
                               filter_size=size))


def colourfulness(rgb):
    """Hasler and Suesstrunk 2003: std + 0.3 mean of the opponent colours rg, yb (0-255)."""
    rgb = np.asarray(rgb, np.float64)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    return float(np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 +
                                                                        yb.mean() ** 2))


class ErrorCurve:
    """Cumulative per-pixel ab-error curve (Zhang et al.'s raw accuracy) and its AuC.

    Pixels are grouped by the Lab grid cell of their true colour, so that the
    class-rebalanced AuC can weigh every colour class equally (inverse frequency).
    """

    def __init__(self, num_classes, thresholds=AUC_THRESHOLDS):
        self.thresholds = np.asarray(thresholds, np.float64)
        self.within = np.zeros((num_classes, len(self.thresholds)), np.float64)
        self.pixels = np.zeros(num_classes, np.float64)

    def add(self, error, true_class):
        """error [N] ab distances (Lab units), true_class [N] int classes."""
        error = np.asarray(error, np.float64).reshape(-1)
        true_class = np.asarray(true_class).reshape(-1)
        # The first threshold each pixel is within (len(thresholds): none).
        first = np.searchsorted(self.thresholds, error, side="left")
        counts = np.zeros((self.within.shape[0], len(self.thresholds) + 1), np.float64)
        np.add.at(counts, (true_class, first), 1.0)
        self.add_histogram(counts)

    def add_histogram(self, first_within):
        """first_within [num_classes, thresholds + 1]: pixels of each class counted at
        the first threshold they are within, the last column those within none
        (evaluation.error_histogram gives it for a batch)."""
        first_within = np.asarray(first_within, np.float64)
        self.pixels += first_within.sum(1)
        self.within += np.cumsum(first_within[:, :-1], axis=1)

    def curve(self):
        """Fraction of all pixels within each threshold."""
        return self.within.sum(0) / max(self.pixels.sum(), 1.0)

    def rebalanced_curve(self):
        """Mean over the colour classes present of each class's fraction within."""
        present = self.pixels > 0
        return (self.within[present] / self.pixels[present, None]).mean(0)

    def auc(self):
        return float(self.curve().mean())

    def rebalanced_auc(self):
        return float(self.rebalanced_curve().mean())


def kl_divergence(p, q, epsilon=1e-8):
    """KL(p || q) of two histograms (normalised here), in nats."""
    p = np.asarray(p, np.float64) + epsilon
    q = np.asarray(q, np.float64) + epsilon
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum(p * np.log(p / q)))
