import math

import numpy as np
import pytest

from colorize_tf.modeling import metrics


def test_psnr_of_known_error():
    truth = np.full((8, 8, 3), 100, np.uint8)
    predicted = truth + 5  # MSE 25
    assert metrics.psnr(predicted, truth) == pytest.approx(10 * math.log10(255 ** 2 / 25), 1e-4)


def test_ssim_identity_and_drop():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
    assert metrics.ssim(image, image) == pytest.approx(1.0)
    assert metrics.ssim(np.full_like(image, 128), image) < 0.1


def test_colourfulness():
    assert metrics.colourfulness(np.full((4, 4, 3), 77)) == 0.0
    red = np.zeros((4, 4, 3))
    red[..., 0] = 200  # rg = 200, yb = 100: std 0, mean sqrt(200^2 + 100^2)
    assert metrics.colourfulness(red) == pytest.approx(0.3 * math.sqrt(200 ** 2 + 100 ** 2))


def test_auc_perfect_gray_and_rebalanced():
    curve = metrics.ErrorCurve(num_classes=3)
    curve.add(np.zeros(10), np.zeros(10, int))
    assert curve.auc() == 1.0 and curve.rebalanced_auc() == 1.0
    # Errors of 50.5: within thresholds 51..150, i.e. 100 of 151.
    gray = metrics.ErrorCurve(num_classes=3)
    gray.add(np.full(4, 50.5), np.zeros(4, int))
    assert gray.auc() == pytest.approx(100 / 151)
    # 9 pixels of class 0 perfect, 1 pixel of class 1 always wrong (error > 150):
    # raw AuC 0.9, rebalanced (mean over the two classes) 0.5.
    mixed = metrics.ErrorCurve(num_classes=3)
    mixed.add(np.r_[np.zeros(9), 200.0], np.r_[np.zeros(9, int), 1])
    assert mixed.auc() == pytest.approx(0.9)
    assert mixed.rebalanced_auc() == pytest.approx(0.5)


def test_kl():
    assert metrics.kl_divergence([1, 1], [1, 1]) == pytest.approx(0.0, abs=1e-9)
    assert metrics.kl_divergence([1, 0], [0.5, 0.5]) == pytest.approx(math.log(2), 1e-6)


def test_colourfulness_std_term_by_hand():
    # Two pixels, red (200, 0, 0) and black: rg = [200, 0], yb = [100, 0];
    # population std (100, 50) and mean (100, 50): sqrt(100^2 + 50^2) * (1 + 0.3).
    image = np.array([[[200, 0, 0], [0, 0, 0]]])
    assert metrics.colourfulness(image) == pytest.approx(1.3 * math.sqrt(100 ** 2 + 50 ** 2))
