"""Metrics: masked bin accuracy and chroma error for training (Keras metrics on the
packed targets of input_pipeline), and image metrics for evaluation."""
import keras
import numpy as np
import tensorflow as tf

from colorize_tf import decoding


def unpack_targets(y_true):
    """Packed targets -> (true bin [B, H, W] int32, chroma [..., 2], weight, mask)."""
    y_true = tf.cast(y_true, tf.float32)
    target = y_true[..., :-4]
    if target.shape[-1] == 1:
        true_bin = tf.cast(target[..., 0], tf.int32)
    else:  # soft targets: the nearest bin has the largest weight
        true_bin = tf.argmax(target, axis=-1, output_type=tf.int32)
    return true_bin, y_true[..., -4:-2], y_true[..., -2], y_true[..., -1]


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
    """Mean squared chroma error (sum over the 2 channels) of the annealed mean."""

    def __init__(self, centres, temperature=decoding.DEFAULT_TEMPERATURE,
                 name="chroma_mse", **kwargs):
        super().__init__(name=name, **kwargs)
        self.centres = [list(map(float, c)) for c in np.asarray(centres)]
        self.temperature = temperature

    def per_pixel(self, y_true, y_pred):
        _, chroma, _, mask = unpack_targets(y_true)
        predicted = decoding.annealed_mean(y_pred, self.centres, self.temperature)
        return tf.reduce_sum(tf.square(predicted - chroma), axis=-1), mask

    def get_config(self):
        return {**super().get_config(), "centres": self.centres,
                "temperature": self.temperature}
