"""Masked, rebalanced cross-entropy over chroma bins, and the optional head losses.

For one image with valid pixels V (mask = 1):
    loss = (1 / |V|) * sum_{p in V} w(p) * CE(target_p, softmax(logits_p))
where w(p) is the rebalancing weight of the pixel's true (nearest) bin. Dividing by
|V| per image, not by H * W, keeps padding from diluting small photos (the original
ColorUNet code divided by all pixels). Targets are packed as input_pipeline says.
"""
import keras
import tensorflow as tf

from colorize_tf import input_pipeline


def _valid_mean(per_pixel, mask):
    """per_pixel, mask [B, H, W] -> [B]: mean over valid pixels of each image."""
    total = tf.reduce_sum(per_pixel * mask, axis=[1, 2])
    return total / tf.maximum(tf.reduce_sum(mask, axis=[1, 2]), 1.0)


@keras.saving.register_keras_serializable(package="colorize_tf")
class MaskedRebalancedCrossEntropy(keras.losses.Loss):
    """y_true packed [B, H, W, 5] (index, chroma, weight, mask) or [B, H, W, n + 4] (soft);
    y_pred logits [B, H, W, n]. Returns the per-image loss [B]; Keras averages it
    over the global batch (also under tf.distribute)."""

    def __init__(self, soft=False, name="masked_rebalanced_ce", **kwargs):
        super().__init__(name=name, **kwargs)
        self.soft = soft

    def call(self, y_true, y_pred):
        logits = tf.cast(y_pred, tf.float32)
        parts = input_pipeline.unpack_targets(y_true)
        if self.soft:
            ce = tf.nn.softmax_cross_entropy_with_logits(labels=parts.target, logits=logits)
        else:
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=tf.cast(parts.target[..., 0], tf.int32), logits=logits)
        return _valid_mean(parts.weight * ce, parts.mask)

    def get_config(self):
        return {**super().get_config(), "soft": self.soft}


@keras.saving.register_keras_serializable(package="colorize_tf")
class MaskedChromaMSE(keras.losses.Loss):
    """Regression head: y_true [B, H, W, 3] = (chroma, mask), y_pred chroma [B, H, W, 2]."""

    def __init__(self, name="masked_chroma_mse", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        chroma, mask = input_pipeline.unpack_regression(y_true)
        error = tf.reduce_sum(tf.square(tf.cast(y_pred, tf.float32) - chroma), -1)
        return _valid_mean(error, mask)


def scene_loss():
    """Scene head: sparse CE on the image's class; unlabeled images (-1) are ignored."""
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1,
                                                      name="scene_ce")
