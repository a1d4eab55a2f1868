"""Masked, rebalanced cross-entropy over chroma bins, and the optional head losses.

For one image with valid pixels V (mask = 1):
    loss = (1 / |V|) * sum_{p in V} w(p) * CE(target_p, softmax(logits_p))
where w(p) is the rebalancing weight of the pixel's true (nearest) bin. Dividing by
|V| per image, not by H * W, keeps padding from diluting small photos (the original
ColorUNet code divided by all pixels). Targets are packed as input_pipeline says.
"""
import keras
import tensorflow as tf

from colorize_tf import errors
from colorize_tf.chroma.bins import Grid, channel_index
from colorize_tf.data import input_pipeline


def _valid_mean(per_pixel, mask):
    """per_pixel, mask [B, H, W] -> [B]: mean over valid pixels of each image."""
    total = tf.reduce_sum(per_pixel * mask, axis=[1, 2])
    return total / tf.maximum(tf.reduce_sum(mask, axis=[1, 2]), 1.0)


@keras.saving.register_keras_serializable(package="colorize_tf")
class MaskedRebalancedCrossEntropy(keras.losses.Loss):
    """y_true packed [B, H, W, 5] (index, chroma, weight, mask) or [B, H, W, 2k + 4]
    (soft: k bins and their probabilities first); y_pred logits [B, H, W, n]. Returns
    the per-image loss [B]; Keras averages it over the global batch (also under
    tf.distribute).

    cast_weight > 0 (with the bins' centres [n, 2]) adds cast_weight times the image's
    colour cast: the chroma-unit distance between the mean over its valid pixels of
    the expected chroma (softmax(logits) @ centres) and of the true chroma. Per-pixel
    cross-entropy does not see a tint spread over a whole photo; this term is the
    evaluation's colour cast, made differentiable."""

    def __init__(self, cast_weight=0.0, centres=None, name="masked_rebalanced_ce",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.cast_weight = float(cast_weight)
        self.centres = None if centres is None else [list(map(float, c)) for c in centres]
        if self.cast_weight > 0 and self.centres is None:
            raise errors.Error("cast_weight > 0 needs the bins' centres")

    def call(self, y_true, y_pred):
        logits = tf.cast(y_pred, tf.float32)
        parts = input_pipeline.unpack_targets(y_true)
        if parts.bins.shape[-1] == 1:
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=parts.bins[..., 0],
                                                                logits=logits)
        else:
            # -sum_k p_k log softmax(l)_{b_k} = logsumexp(l) - sum_k p_k l_{b_k}, as the
            # probabilities sum to 1: the dense [..., n] target is never built.
            picked = tf.gather(logits, parts.bins, batch_dims=3)
            ce = tf.reduce_logsumexp(logits, axis=-1) - tf.reduce_sum(
                parts.probability * picked, axis=-1)
        loss = _valid_mean(parts.weight * ce, parts.mask)
        if self.cast_weight <= 0:
            return loss
        expected = tf.tensordot(tf.nn.softmax(logits), tf.constant(self.centres), axes=1)
        difference = tf.stack([_valid_mean(expected[..., c] - parts.chroma[..., c],
                                           parts.mask) for c in (0, 1)], -1)
        # + 1e-6 under the root: its gradient stays finite when the cast is 0.
        return loss + self.cast_weight * tf.sqrt(
            tf.reduce_sum(tf.square(difference), -1) + 1e-6)

    def get_config(self):
        return {**super().get_config(), "cast_weight": self.cast_weight,
                "centres": self.centres}


@keras.saving.register_keras_serializable(package="colorize_tf")
class MaskedPerChannelCrossEntropy(keras.losses.Loss):
    """Seed 002, eq. 1: cross-entropy over chroma 0's bins plus cross-entropy over
    chroma 1's, each channel classified on its own. y_true packed as for
    MaskedRebalancedCrossEntropy (its chroma and mask are used; no rebalancing);
    y_pred logits [B, H, W, n0 + n1]. grid: bins.Grid whose cells are (n0, n1)."""

    def __init__(self, low, high, cells, name="masked_per_channel_ce", **kwargs):
        super().__init__(name=name, **kwargs)
        self.low, self.high, self.cells = tuple(low), tuple(high), tuple(cells)

    def call(self, y_true, y_pred):
        logits = tf.cast(y_pred, tf.float32)
        parts = input_pipeline.unpack_targets(y_true)
        grid = Grid("", self.low, self.high, self.cells)
        index = channel_index(parts.chroma, grid)
        n0 = self.cells[0]
        ce = sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=index[..., c],
                                                                logits=part)
                 for c, part in enumerate([logits[..., :n0], logits[..., n0:]]))
        return _valid_mean(ce, parts.mask)

    def get_config(self):
        return {**super().get_config(), "low": self.low, "high": self.high,
                "cells": self.cells}


@keras.saving.register_keras_serializable(package="colorize_tf")
class MaskedChromaMSE(keras.losses.Loss):
    """Regression head: y_true [B, H, W, 3] = (chroma, mask), y_pred chroma [B, H, W, 2]."""

    def __init__(self, name="masked_chroma_mse", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        chroma, mask = input_pipeline.unpack_regression(y_true)
        error = tf.reduce_sum(tf.square(tf.cast(y_pred, tf.float32) - chroma), -1)
        return _valid_mean(error, mask)


@keras.saving.register_keras_serializable(package="colorize_tf")
class SceneCrossEntropy(keras.losses.Loss):
    """Scene head: CE of the logits [B, k] against the image's class [B] (int; -1:
    unlabeled, no loss), with label smoothing (the target puts 1 - s on the class and
    s / k on every class, Szegedy et al. 2016)."""

    def __init__(self, label_smoothing=0.0, name="scene_ce", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        logits = tf.cast(y_pred, tf.float32)
        label = tf.reshape(tf.cast(y_true, tf.int32), [-1])
        k = tf.shape(logits)[-1]
        target = tf.one_hot(tf.maximum(label, 0), k) * (1.0 - self.label_smoothing) + \
            self.label_smoothing / tf.cast(k, tf.float32)
        ce = tf.nn.softmax_cross_entropy_with_logits(labels=target, logits=logits)
        return ce * tf.cast(label >= 0, tf.float32)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def scene_loss(label_smoothing=0.0):
    """Scene head loss; unlabeled images (-1) are ignored."""
    return SceneCrossEntropy(label_smoothing)
