import math

import numpy as np
import pytest
import tensorflow as tf

from colorize_tf.data import input_pipeline
from colorize_tf.modeling import losses
from colorize_tf.modeling import metrics


def _packed(indices, weights, mask, chroma=None):
    """[1, 2, 2, 5] packed one-hot targets from per-pixel lists (row-major)."""
    chroma = np.zeros((4, 2)) if chroma is None else np.asarray(chroma)
    rows = [[i, c[0], c[1], w, m] for i, c, w, m in zip(indices, chroma, weights, mask)]
    return tf.constant(np.array(rows, np.float32).reshape(1, 2, 2, 5))


def test_uniform_logits_golden_value():
    # 2 x 2 image, 3 bins, uniform logits: CE = ln 3 everywhere. True bins 0, 1, 2, 0 with
    # weights 0.5, 1, 2, 0.5; the last pixel is padding. Loss = ln3 * 3.5 / 3.
    y_true = _packed([0, 1, 2, 0], [0.5, 1.0, 2.0, 0.5], [1, 1, 1, 0])
    loss = losses.MaskedRebalancedCrossEntropy()
    per_image = loss.call(y_true, tf.zeros([1, 2, 2, 3]))
    assert float(per_image[0]) == np.float32(math.log(3) * 3.5 / 3)
    assert float(loss(y_true, tf.zeros([1, 2, 2, 3]))) == np.float32(math.log(3) * 3.5 / 3)


def test_divides_by_valid_pixels_not_all():
    logits = np.log(np.array([0.25, 0.5, 0.25], np.float32)) * np.ones([1, 2, 2, 3], np.float32)
    one_valid = _packed([1, 0, 0, 0], [1.0] * 4, [1, 0, 0, 0])
    # softmax = (0.25, 0.5, 0.25): CE of bin 1 = ln 2, mean over the single valid pixel.
    value = float(losses.MaskedRebalancedCrossEntropy().call(one_valid, logits)[0])
    assert abs(value - math.log(2)) < 1e-6


def test_soft_targets_golden_value():
    logits = np.log(np.array([0.25, 0.5, 0.25], np.float32)) * np.ones([1, 2, 2, 3], np.float32)
    # Bins (0, 1) with probabilities (0.5, 0.5), chroma (0, 0), weight 2, mask 1.
    soft = np.tile(np.array([0, 1, 0.5, 0.5, 0, 0, 2.0, 1.0], np.float32), (1, 2, 2, 1))
    # CE = -(0.5 ln 0.25 + 0.5 ln 0.5) = 1.5 ln 2, weight 2.
    value = float(losses.MaskedRebalancedCrossEntropy().call(soft, logits)[0])
    assert abs(value - 2 * 1.5 * math.log(2)) < 1e-6


def test_sparse_soft_targets_equal_dense_cross_entropy():
    rng = np.random.default_rng(0)
    n, k = 7, 3
    logits = rng.normal(0, 3, (2, 3, 4, n)).astype(np.float32)
    bins = np.stack([rng.permutation(n)[:k] for _ in range(24)]).reshape(2, 3, 4, k)
    probability = rng.uniform(0.1, 1, (2, 3, 4, k))
    probability /= probability.sum(-1, keepdims=True)
    weight, mask = rng.uniform(0.5, 2, (2, 3, 4, 1)), rng.integers(0, 2, (2, 3, 4, 1))
    mask[:, 0, 0] = 1
    packed = np.concatenate([bins, probability, np.zeros((2, 3, 4, 2)), weight, mask], -1)
    value = losses.MaskedRebalancedCrossEntropy().call(packed.astype(np.float32), logits)
    # Oracle: the dense target and numpy's log softmax.
    dense = np.zeros((2, 3, 4, n))
    np.put_along_axis(dense, bins, probability, axis=-1)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ce = -(dense * log_p).sum(-1) * weight[..., 0] * mask[..., 0]
    expected = ce.sum((1, 2)) / mask[..., 0].sum((1, 2))
    np.testing.assert_allclose(value.numpy(), expected, rtol=1e-5)


def test_cast_term_is_the_distance_between_mean_expected_and_true_chroma():
    # 3 bins at chroma (0, 0), (30, 0), (0, 40); uniform logits: every pixel's expected
    # chroma is (10, 40 / 3). True chroma of the 3 valid pixels (20, 4), (-5, 10), (0,
    # 7): mean (5, 7); the padding pixel (99, 99) must not count. Cast = |(5, 19/3)|.
    centres = [[0, 0], [30, 0], [0, 40]]
    y_true = _packed([0, 1, 2, 0], [0.5, 1.0, 2.0, 0.5], [1, 1, 1, 0],
                     chroma=[[20, 4], [-5, 10], [0, 7], [99, 99]])
    plain = float(losses.MaskedRebalancedCrossEntropy().call(
        y_true, tf.zeros([1, 2, 2, 3]))[0])
    with_cast = float(losses.MaskedRebalancedCrossEntropy(0.1, centres).call(
        y_true, tf.zeros([1, 2, 2, 3]))[0])
    assert with_cast - plain == pytest.approx(0.1 * math.hypot(5, 19 / 3), rel=1e-5)
    # The oracle for random logits: numpy softmax, masked means.
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, (1, 2, 2, 3)).astype(np.float32)
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    mean_expected = (p @ np.array(centres, float))[0].reshape(4, 2)[:3].mean(0)
    cast = np.hypot(*(mean_expected - [5, 7]))
    difference = losses.MaskedRebalancedCrossEntropy(1.0, centres).call(y_true, logits) - \
        losses.MaskedRebalancedCrossEntropy().call(y_true, logits)
    assert float(difference[0]) == pytest.approx(cast, rel=1e-4)
    with pytest.raises(ValueError, match="centres"):
        losses.MaskedRebalancedCrossEntropy(0.1)


def test_empty_mask_gives_zero_not_nan():
    y_true = _packed([0, 1, 2, 0], [1.0] * 4, [0, 0, 0, 0])
    assert float(losses.MaskedRebalancedCrossEntropy().call(y_true, tf.zeros([1, 2, 2, 3]))[0]) == 0


def test_chroma_mse_head():
    y_true = tf.constant([[[[1.0, 2.0, 1.0], [0.0, 0.0, 0.0]]]])  # second pixel masked
    value = losses.MaskedChromaMSE().call(y_true, tf.constant([[[[0.0, 0.0], [5.0, 5.0]]]]))
    assert float(value[0]) == 5.0


def test_masked_accuracy_and_chroma_error():
    centres = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
    logits = np.zeros([1, 2, 2, 3], np.float32)
    logits[..., 1] = 10.0  # predicts bin 1 everywhere, decisively
    y_true = _packed([1, 1, 2, 0], [1.0] * 4, [1, 1, 1, 0],
                     chroma=[[1, 0], [1, 0], [0, 1], [0, 0]])
    top1 = metrics.MaskedTopKAccuracy(1)
    top1.update_state(y_true, logits)
    assert abs(float(top1.result()) - 2 / 3) < 1e-6
    top2 = metrics.MaskedTopKAccuracy(3)
    top2.update_state(y_true, logits)
    assert float(top2.result()) == 1.0
    error = metrics.MaskedChromaError(centres, temperature=0.01)
    error.update_state(y_true, logits)
    # Prediction (1, 0) everywhere: errors 0, 0, 2 over three valid pixels.
    assert abs(float(error.result()) - 2 / 3) < 1e-4


def test_per_channel_cross_entropy_by_hand():
    # Grid: chroma 0 over [0, 2] in 2 bins, chroma 1 over [0, 3] in 3 bins. The pixel's
    # chroma (1.5, 0.5) is in bins (1, 0); uniform logits give CE ln 2 + ln 3 = ln 6.
    loss = losses.MaskedPerChannelCrossEntropy((0.0, 0.0), (2.0, 3.0), (2, 3))
    packed = input_pipeline.pack(tf.zeros([1, 1, 1, 1]), tf.constant([[[[1.5, 0.5]]]]),
                                 tf.ones([1, 1, 1, 1]), tf.ones([1, 1, 1, 1]))
    assert float(loss.call(packed, tf.zeros([1, 1, 1, 5]))[0]) == pytest.approx(np.log(6))
    # A confident right answer costs almost nothing; the same logits on bin 0 of chroma 0
    # cost the full margin.
    right = tf.constant([[[[-9.0, 9.0, 9.0, -9.0, -9.0]]]])
    assert float(loss.call(packed, right)[0]) < 1e-6
    wrong = tf.constant([[[[9.0, -9.0, 9.0, -9.0, -9.0]]]])
    assert float(loss.call(packed, wrong)[0]) == pytest.approx(18.0, abs=1e-3)


def test_scene_label_smoothing_by_hand():
    # softmax(ln 3, 0) = (0.75, 0.25); smoothing 0.2 over 2 classes -> target (0.9, 0.1).
    logits = tf.constant([[np.log(3.0), 0.0], [np.log(3.0), 0.0]], tf.float32)
    values = losses.scene_loss(0.2).call(tf.constant([0, -1]), logits).numpy()
    assert values[0] == pytest.approx(-(0.9 * np.log(0.75) + 0.1 * np.log(0.25)), abs=1e-5)
    assert values[1] == 0.0  # unlabeled
    plain = losses.scene_loss().call(tf.constant([0]), logits[:1]).numpy()[0]
    assert plain == pytest.approx(-np.log(0.75), abs=1e-5)
