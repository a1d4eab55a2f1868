import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from colorize_tf import decoding

CENTRES = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
PROBS = np.array([0.2, 0.3, 0.5], np.float32)


def test_t1_is_the_expectation():
    chroma = decoding.annealed_mean(np.log(PROBS), CENTRES, 1.0).numpy()
    np.testing.assert_allclose(chroma, [0.3, 0.5], atol=1e-6)


def test_half_temperature_by_hand():
    # f_0.5(z) = z^2 / sum z^2 = (0.04, 0.09, 0.25) / 0.38.
    chroma = decoding.annealed_mean_of_probabilities(PROBS, CENTRES, 0.5).numpy()
    np.testing.assert_allclose(chroma, [0.09 / 0.38, 0.25 / 0.38], atol=1e-6)


@pytest.mark.parametrize("temperature", [0.01, 1e-4, 0.0])
def test_small_temperature_is_the_mode_and_finite(temperature):
    logits = np.array([[50.0, -80.0, 51.0]], np.float32)  # extreme logits
    chroma = decoding.annealed_mean(logits, CENTRES, temperature).numpy()
    assert np.all(np.isfinite(chroma))
    np.testing.assert_allclose(chroma, [[0.0, 1.0]], atol=1e-6)


def test_per_image_temperature_and_layer_serialization():
    logits = np.log(np.tile(PROBS, (2, 1, 1, 1)))  # [2, 1, 1, 3]
    layer = decoding.AnnealedMean(CENTRES)
    chroma = layer(logits, tf.constant([1.0, 0.01])).numpy()
    np.testing.assert_allclose(chroma[0, 0, 0], [0.3, 0.5], atol=1e-6)
    np.testing.assert_allclose(chroma[1, 0, 0], [0.0, 1.0], atol=1e-6)
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    np.testing.assert_allclose(clone(logits, temperature=1.0).numpy(),
                               layer(logits, temperature=1.0).numpy())


def test_confidence_maps():
    top1, ratio = decoding.confidence_maps(tf.constant([[0.2, 0.3, 0.5], [0.1, 0.8, 0.1]]))
    np.testing.assert_allclose(top1.numpy(), [0.5, 0.8])
    np.testing.assert_allclose(ratio.numpy(), [0.5 / 0.3, 8.0], rtol=1e-6)


def test_temporal_smoothing_golden_and_bounded_memory():
    smoother = decoding.TemporalSmoother(frames=20, alpha=0.2)
    first = smoother(np.array([[[1.0, 0.0]]]))
    np.testing.assert_allclose(first, [[[1.0, 0.0]]])
    second = smoother(np.array([[[0.0, 1.0]]]))
    decay = math.exp(-0.2)
    np.testing.assert_allclose(second, [[[decay / (1 + decay), 1 / (1 + decay)]]], rtol=1e-6)
    for _ in range(100):
        smoother(np.array([[[0.0, 1.0]]]))
    assert len(smoother.window) == 21
    # After 21 frames of [0, 1] the old [1, 0] frame has left the window exactly.
    np.testing.assert_allclose(smoother(np.array([[[0.0, 1.0]]])), [[[0.0, 1.0]]])
