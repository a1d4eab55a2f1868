import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from colorize_tf.chroma import decoding
from colorize_tf.chroma import video_smoothing

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
    smoother = video_smoothing.TemporalSmoother(frames=20, alpha=0.2)
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


def _moving_square(t, size=48, side=12, step=2):
    """Frame t of a bright square moving right step px per frame on a dark ground:
    (luma [size, size] in [0, 1], probabilities [size, size, 2]: bin 1 on the square)."""
    luma = np.full((size, size), 0.2, np.float32)
    left = 6 + step * t
    luma[18:18 + side, left:left + side] = 0.8
    on = (luma > 0.5).astype(np.float32)
    return luma, np.stack([1.0 - on, on], axis=-1)


def test_motion_smoothing_follows_the_scene():
    """A square moving 2 px a frame: smoothed along the flow it stays itself and leaves
    no trail; smoothed at fixed pixels (the ColorUNet's way) it drags one behind."""
    along = video_smoothing.MotionSmoother(alpha=0.1)
    fixed = video_smoothing.TemporalSmoother(20, 0.1)
    for t in range(8):
        luma, probabilities = _moving_square(t)
        moving, still = along(probabilities, luma), fixed(probabilities, luma)
    inside, trail = (slice(20, 28), slice(24, 28)), (slice(20, 28), slice(8, 14))
    assert moving[inside + (1,)].min() > 0.9 and still[inside + (1,)].min() < 0.8
    assert moving[trail + (1,)].max() < 0.1 and still[trail + (1,)].max() > 0.3


def test_motion_smoothing_by_hand_and_at_a_cut():
    smoother = video_smoothing.MotionSmoother(alpha=0.2)
    luma = np.full((16, 16), 0.5, np.float32)
    first = smoother(np.tile([1.0, 0.0], (16, 16, 1)), luma)
    np.testing.assert_allclose(first, np.tile([1.0, 0.0], (16, 16, 1)))
    second = smoother(np.tile([0.0, 1.0], (16, 16, 1)), luma)  # still scene: no motion
    decay = math.exp(-0.2)
    np.testing.assert_allclose(second[8, 8], [decay / (1 + decay), 1 / (1 + decay)],
                               rtol=1e-5)
    # A cut (another scene's luma): the past is dropped.
    cut = smoother(np.tile([1.0, 0.0], (16, 16, 1)), np.full((16, 16), 0.95, np.float32))
    np.testing.assert_allclose(cut, np.tile([1.0, 0.0], (16, 16, 1)))


def test_per_channel_decoding_by_hand():
    # Chroma 0's bins at -1 and 1, chroma 1's at 0, 2, 4.
    decoder = decoding.Decoder("per_channel", ((-1.0, 1.0), (0.0, 2.0, 4.0)))
    probabilities = np.array([[0.25, 0.75, 0.5, 0.5, 0.0]], np.float32)
    # T = 1: the means, -0.25 + 0.75 = 0.5 and 0 + 1 = 1.
    np.testing.assert_allclose(decoder.chroma(probabilities, 1.0), [[0.5, 1.0]], atol=1e-5)
    # T = 0.5: p^2 renormalised, (0.0625, 0.5625) -> (0.1, 0.9): -0.1 + 0.9 = 0.8.
    np.testing.assert_allclose(decoder.chroma(probabilities, 0.5), [[0.8, 1.0]], atol=1e-5)
    np.testing.assert_allclose(decoder.confidence(probabilities), [0.375], atol=1e-6)
    # Each channel's softmax on its own: logits 0 everywhere -> 1/2 and 1/3.
    np.testing.assert_allclose(decoder.probabilities(np.zeros((1, 5))),
                               [[0.5, 0.5, 1 / 3, 1 / 3, 1 / 3]], atol=1e-6)
    assert decoding.Decoder.from_dict(decoder.to_dict()) == decoder


def test_regression_decoding_is_the_chroma_at_any_temperature():
    decoder = decoding.Decoder.regression()
    chroma = np.array([[[0.1, -0.2]]], np.float32)
    for t in (0.01, 0.38, 1.0):
        np.testing.assert_array_equal(decoder.chroma(decoder.probabilities(chroma), t), chroma)
    np.testing.assert_array_equal(decoder.confidence(chroma), [[1.0]])
    assert not decoder.uses_temperature and decoder.num_scores == 2
    # Video: a weighted mean of the chroma (weights 1, e^-0.2), not a normalised sum.
    luma = np.full((1, 1), 0.5)
    for motion in (False, True):
        smoother = decoder.smoother(frames=1, alpha=0.2, motion=motion)
        smoother(np.full((1, 1, 2), 1.0), luma)
        w = np.exp(-0.2)
        np.testing.assert_allclose(smoother(np.full((1, 1, 2), 0.0), luma),
                                   (w * 1.0) / (1 + w), atol=1e-6)


def test_fused_decoding_by_hand():
    # Per-image temperatures [1, 0.5] over the same probabilities (0.2, 0.3, 0.5):
    # T = 1 -> (0.3, 0.5); T = 0.5 -> (0.09, 0.25) / 0.38; top-1 0.5 for both.
    decoder = decoding.Decoder(decoding.BINS, tuple(map(tuple, CENTRES)))
    logits = np.log(np.tile(PROBS, (2, 1, 1, 1))) + 7.0  # a shift changes nothing
    chroma, confidence = decoder.decode_scores(logits, tf.constant([1.0, 0.5]))
    np.testing.assert_allclose(chroma.numpy()[:, 0, 0], [[0.3, 0.5], [0.09 / 0.38, 0.25 / 0.38]],
                               atol=1e-6)
    np.testing.assert_allclose(confidence.numpy()[:, 0, 0], [0.5, 0.5], atol=1e-6)
    # Extreme logits at a tiny temperature: the mode, finite.
    chroma, confidence = decoder.decode_scores(np.array([[50.0, -80.0, 51.0]]), 1e-4)
    np.testing.assert_allclose(chroma.numpy(), [[0.0, 1.0]], atol=1e-6)
    np.testing.assert_allclose(confidence.numpy(), [1 / (1 + math.exp(-1))], rtol=1e-6)


def test_tint_correction_by_hand():
    # One photo of two pixels, bins at a = 0 and a = 10 (b = 0), weights (1, 4): the
    # rebalancing multiplied bin 1 by 4, so the calibrated posterior divides it back.
    # Pixel probabilities (0.5, 0.5) and (0.2, 0.8): T = 1 means a = 5 and 8 (photo
    # mean 6.5); calibrated (0.8, 0.2) and (0.5, 0.5): a = 2 and 5 (mean 3.5). beta 1
    # moves both pixels by 3.5 - 6.5 = -3, beta 0.5 by -1.5.
    centres, weights = ((0.0, 0.0), (10.0, 0.0)), (1.0, 4.0)
    logits = np.log([[[[0.5, 0.5], [0.2, 0.8]]]])  # [1 photo, 1, 2, 2 bins]
    for beta, expected in [(1.0, [2.0, 5.0]), (0.5, [3.5, 6.5]), (0.0, [5.0, 8.0])]:
        decoder = decoding.Decoder(decoding.BINS, centres, beta, weights if beta else ())
        chroma = decoder.chroma_of_scores(logits, 1.0).numpy()
        np.testing.assert_allclose(chroma[0, 0, :, 0], expected, atol=1e-5)
        np.testing.assert_allclose(chroma[..., 1], 0.0, atol=1e-6)
        # From the probabilities (video, Python render): the same.
        np.testing.assert_allclose(decoder.chroma(np.exp(logits), 1.0), chroma, atol=1e-5)


def test_tint_correction_is_per_photo_against_numpy():
    # Two photos of 3 x 4 pixels at T = 0.5: each photo's mean moves to the mean of
    # its own calibrated posterior (beta 1), each pixel by the same amount.
    rng = np.random.default_rng(3)
    n = 6
    centres = rng.uniform(-40, 40, (n, 2))
    weights = rng.uniform(0.5, 3.0, n)
    logits = rng.normal(0, 2, (2, 3, 4, n))
    decoder = decoding.Decoder(decoding.BINS, tuple(map(tuple, centres)), 1.0,
                               tuple(weights))
    chroma = decoder.chroma_of_scores(logits, 0.5).numpy()

    def softmax(x):
        z = np.exp(x - x.max(-1, keepdims=True))
        return z / z.sum(-1, keepdims=True)
    annealed = softmax(logits / 0.5) @ centres
    calibrated = softmax(logits - np.log(weights)) @ centres
    for photo in range(2):
        np.testing.assert_allclose(chroma[photo].mean((0, 1)),
                                   calibrated[photo].mean((0, 1)), atol=1e-3)
        shift = chroma[photo] - annealed[photo]
        np.testing.assert_allclose(shift, np.broadcast_to(shift[0, 0], shift.shape),
                                   atol=1e-3)
    # Half of it with beta 0.5; saved and loaded with the decoder.
    half = decoding.Decoder.from_dict({**decoder.to_dict(), "tint_correction": 0.5})
    np.testing.assert_allclose(half.chroma_of_scores(logits, 0.5),
                               (annealed + chroma) / 2, atol=1e-3)
    assert decoding.Decoder.from_dict({"kind": "bins", "centres": [[0, 0]]}).tint_correction == 0


@pytest.mark.parametrize("kind,beta,weights,message", [
    (decoding.PER_CHANNEL, 0.5, (), "needs decoding 'bins'"),
    (decoding.BINS, 1.5, (1.0, 1.0), r"must be in \[0, 1\]"),
    (decoding.BINS, 0.5, (1.0,), "one rebalancing weight per bin"),
])
def test_impossible_tint_corrections_are_refused(kind, beta, weights, message):
    with pytest.raises(ValueError, match=message):
        decoding.Decoder(kind, ((0.0, 0.0), (1.0, 1.0)), beta, weights)


def _coherent_oracle(probabilities, centres, temperature, sigma, strength):
    """numpy, pixel by pixel: each pixel's distribution the Gaussian-weighted mean of
    every pixel's inside the photo (weights exp(-d^2 / 2 sigma^2), d the distance in
    pixels), then the annealed mean at T + (1 - T) * strength * entropy / log n."""
    p = np.asarray(probabilities, np.float64)
    height, width, n = p.shape
    rows, cols = np.mgrid[0:height, 0:width]
    out = np.zeros((height, width, 2))
    for i in range(height):
        for j in range(width):
            if sigma:
                w = np.exp(-((rows - i) ** 2 + (cols - j) ** 2) / (2.0 * sigma ** 2))
                q = np.tensordot(w, p, axes=([0, 1], [0, 1])) / w.sum()
            else:
                q = p[i, j]
            q = q / q.sum()
            flat = -np.sum(q * np.log(np.maximum(q, 1e-30))) / np.log(n)
            t = temperature + (1.0 - temperature) * strength * flat
            z = np.exp(np.log(np.maximum(q, 1e-30)) / t)
            out[i, j] = (z / z.sum()) @ np.asarray(centres, np.float64)
    return out


@pytest.mark.parametrize("sigma, strength", [(1.5, 0.0), (0.0, 1.0), (1.0, 0.5)])
def test_coherent_decoding_equals_numpy(sigma, strength):
    rng = np.random.default_rng(3)
    centres = rng.uniform(-40, 40, (5, 2))
    logits = rng.normal(0, 2, (2, 6, 7, 5))
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    decoder = decoding.Decoder.for_bins(_Bins(centres)).with_coherence(sigma, strength)
    temperature = np.array([0.38, 0.7], np.float32)
    got = decoder.chroma(probabilities.astype(np.float32), temperature).numpy()
    from_logits = decoder.chroma_of_scores(logits.astype(np.float32), temperature).numpy()
    for b in range(2):
        expected = _coherent_oracle(probabilities[b], centres, temperature[b], sigma, strength)
        np.testing.assert_allclose(got[b], expected, atol=2e-3)
        np.testing.assert_allclose(from_logits[b], expected, atol=2e-3)
    # One photo [H, W, n] at a scalar temperature: the same as its row of the batch.
    one = decoder.chroma(probabilities[1].astype(np.float32), 0.7).numpy()
    np.testing.assert_allclose(one, got[1], atol=1e-4)
    # A round trip through decoder.json keeps the settings.
    assert decoding.Decoder.from_dict(decoder.to_dict()) == decoder


def test_coherent_decoding_leaves_a_confident_uniform_region_as_it_is():
    # Every pixel sure of bin 2: smoothing changes nothing, flatness is ~0.
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [30.0, -20.0]])
    probabilities = np.full((5, 6, 3), 1e-6, np.float32)
    probabilities[..., 2] = 1.0 - 2e-6
    decoder = decoding.Decoder.for_bins(_Bins(centres)).with_coherence(2.0, 1.0)
    np.testing.assert_allclose(decoder.chroma(probabilities, 0.38).numpy(),
                               np.broadcast_to([30.0, -20.0], (5, 6, 2)), atol=1e-2)


@pytest.mark.parametrize("kwargs, message", [
    (dict(smoothing_sigma=-1.0), "finite number >= 0"),
    (dict(smoothing_sigma=math.inf), "finite number >= 0"),
    (dict(flat_temperature=1.5), r"in \[0, 1\]"),
])
def test_impossible_coherence_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        decoding.Decoder(decoding.BINS, ((0.0, 0.0), (1.0, 1.0)), **kwargs)
    with pytest.raises(ValueError, match="needs decoding"):
        decoding.Decoder(decoding.REGRESSION, (), smoothing_sigma=1.0)


class _Bins:
    def __init__(self, centres):
        self.centres = np.asarray(centres)


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe garbage", "not a decoder file"),
    (b"[]", "expected a JSON object, got list"),
    (b"null", "expected a JSON object, got NoneType"),
    (b'{"kind": "argmax", "centres": []}', "unknown decoding 'argmax'"),
    (b'{"kind": "bins"}', "centres must be a list of lists"),
    (b'{"kind": "bins", "centres": [[0, 0], [1]]}', "must be pairs of numbers"),
    (b'{"kind": "bins", "centres": [[0, 0], [1, "x"]]}', "centres must be a finite number"),
    (b'{"kind": "bins", "centres": [[0, 0], [1, NaN]]}', "centres must be a finite number"),
    (b'{"kind": "bins", "centres": [[0, 0], [1, 1], [2, 2]]}',
     "3 bin centres where the model's bins have 2"),
    (b'{"kind": "per_channel", "centres": [[0, 1]]}', "must be two lists of numbers"),
    (b'{"kind": "regression", "centres": [[0, 1]]}', "must be empty"),
    (b'{"kind": "bins", "centres": [[0, 0], [1, 1]], "weights": 3}', "weights must be a list"),
    (b'{"kind": "bins", "centres": [[0, 0], [1, 1]], "tint_correction": true}',
     "tint_correction must be a finite number"),
    (b'{"kind": "bins", "centres": [[0, 0], [1, 1]], "tint_correction": 2}',
     r"tint_correction must be in \[0, 1\]"),
])
def test_a_damaged_decoder_file_is_one_error_naming_it(tmp_path, content, message):
    # Issue 41: a garbage decoder.json reached export as a bare KeyError/TypeError.
    (tmp_path / decoding.DECODER_NAME).write_bytes(content)
    with pytest.raises(ValueError, match=message) as caught:
        decoding.Decoder.load(str(tmp_path), _Bins([[0, 0], [1, 1]]))
    assert str(caught.value).startswith(f"{str(tmp_path / 'decoder.json')!r} is not a decoder")


def test_a_saved_decoder_loads_back_equal(tmp_path):
    bins = _Bins([[0, 0], [1, 1]])
    for decoder in (decoding.Decoder.for_bins(bins).with_coherence(1.5, 0.5),
                    decoding.Decoder.regression(),
                    decoding.Decoder(decoding.PER_CHANNEL, ((0.0, 1.0), (2.0,)))):
        decoder.save(str(tmp_path))
        assert decoding.Decoder.load(str(tmp_path), bins) == decoder
