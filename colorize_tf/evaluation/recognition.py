"""Colorization as a proxy for recognition (Zhang et al. 2016, sec. 3.1): does an
ImageNet classifier trained on colour photos still recognise what the photo shows once
it is colorized, compared with the gray photo?

The judge is EfficientNet-Lite2 (ImageNet top-1 80.2%; modeling/efficientnet_lite.py,
weights from the `pretrained` extra), a network that is not the colorizer's encoder
(the default colorizer's is Lite0) and is never a training loss. Per method (gray, each
temperature) two numbers against the truth:

- recognition: the share of photos whose top-1 class equals the judge's own top-1 on
  the colour truth (agreement; the truth agrees with itself 100%), and the share of
  gray's gap to 100% that a method closes, (method - gray) / (1 - gray);
- FD: the Frechet distance between Gaussians fitted to the judge's pooled features
  (1,280 values after the head's average pool) of the method's photos and of the
  truths, ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)) (Heusel et al. 2017's
  FID, but on Lite2's features, not Inception's: the numbers are not FIDs of the
  literature). Biased upwards on few photos: compare only FDs on the same photos.

Photos go to the judge as ImageNet evaluations give them: the shorter side resized to
Lite2's 260 px (antialiased bilinear), the central 260 x 260 square.
"""
import keras
import numpy as np
import tensorflow as tf

from colorize_tf import errors
from colorize_tf.modeling import efficientnet_lite

JUDGE_SIZE = 260  # EfficientNet-Lite2's training resolution (tensorflow/tpu lite)
JUDGE_NAME = f"EfficientNet-Lite2 (ImageNet; {JUDGE_SIZE} px central square)"


class JudgeUnavailable(errors.Error):
    """The judge's ImageNet weights are not installed (the `pretrained` extra)."""


class Judge:
    """EfficientNet-Lite2 with its ImageNet weights: RGB uint8 [B, H, W, 3] ->
    (top-1 class [B] int, pooled features [B, 1280] float32)."""

    def __init__(self, weights_path=None, net=efficientnet_lite.LITE2):
        try:
            tensors = efficientnet_lite.read_imagenet_weights(weights_path, net)
        except ImportError as e:
            raise JudgeUnavailable(str(e)) from None
        classifier = efficientnet_lite.build_classifier(net)
        efficientnet_lite.load_imagenet_weights(classifier, tensors, net)
        self.model = classifier
        # The pooled features and the logits in one call.
        both = keras.Model(classifier.input, [classifier.get_layer("pool").output,
                                                 classifier.output])
        self._call = tf.function(lambda rgb: both(judge_input(rgb), training=False),
                                 input_signature=[tf.TensorSpec([None, None, None, 3],
                                                                tf.uint8)])

    def __call__(self, rgb):
        features, logits = self._call(tf.convert_to_tensor(rgb, tf.uint8))
        return tf.argmax(logits, axis=-1).numpy(), features.numpy()


def judge_input(rgb, size=JUDGE_SIZE):
    """RGB uint8 [B, H, W, 3] -> float32 [B, size, size, 3] in 0..255: the shorter side
    resized to size (antialiased bilinear), the central square."""
    shape = tf.shape(rgb)
    height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    scale = size / tf.minimum(height, width)
    new_h = tf.maximum(size, tf.cast(tf.round(height * scale), tf.int32))
    new_w = tf.maximum(size, tf.cast(tf.round(width * scale), tf.int32))
    resized = tf.image.resize(tf.cast(rgb, tf.float32), [new_h, new_w], "bilinear",
                              antialias=True)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return tf.clip_by_value(resized[:, top:top + size, left:left + size, :], 0.0, 255.0)


def frechet_distance(features_a, features_b):
    """Frechet distance between Gaussians fitted to two feature sets [N, D], [M, D]
    (N, M >= 2): ||mu_a - mu_b||^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^(1/2)).

    Tr((S_a S_b)^(1/2)) is the sum of the square roots of the eigenvalues of
    S_a^(1/2) S_b S_a^(1/2), a symmetric positive semi-definite matrix with the same
    eigenvalues as S_a S_b: no non-symmetric matrix square root (scipy's sqrtm) needed.
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise errors.Error(f"feature sets must be [N, D] and [M, D], got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise errors.Error(f"a Frechet distance needs 2 samples a set at least, got "
                           f"{len(a)} and {len(b)}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = (np.atleast_2d(np.cov(x, rowvar=False)) for x in (a, b))
    values, vectors = np.linalg.eigh(cov_a)
    sqrt_a = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    inner = np.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a)
    trace_sqrt = np.sum(np.sqrt(np.clip(inner, 0.0, None)))
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b)
                 - 2.0 * trace_sqrt)


def gap_closed(method_agreement, gray_agreement):
    """The share of gray's gap to full agreement (1) that a method closes:
    (method - gray) / (1 - gray); 0 when gray already agrees fully."""
    gap = 1.0 - gray_agreement
    return (method_agreement - gray_agreement) / gap if gap > 0 else 0.0
