"""Every method of the seed study trains a few steps on tiny records, exports, and
serves both signatures like the plain ColorUNet."""
import json
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from colorize_tf import cli
from colorize_tf import train
from colorize_tf.evaluation import scoring
from colorize_tf.serving import inference
from colorize_tf.training.config import ConfigError
from colorize_tf.training import exporter
from colorize_tf.training import trainer
from colorize_tf.training.config import TrainConfig
from tests.conftest import make_photo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

VARIANTS = {
    "per_channel": ["--decoding=per_channel", "--channel_bins=6"],
    "regression": ["--decoding=regression", "--scene_weight=0.1"],
    "zhang_small": ["--architecture=zhang_small", "--base_filters=4", "--soft_targets"],
    "multitask": ["--soft_targets", "--regression_weight=0.5", "--scene_weight=0.1",
                  "--scene_label_smoothing=0.1", "--rebalance_lambda=1"],
    "global_context": ["--soft_targets", "--global_context"],
    "cast": ["--soft_targets", "--cast_weight=0.1"],
}
# The default suite trains the two new decodings and the cast loss; the others run
# with -m slow (CI).
_SLOW = {"zhang_small", "multitask", "global_context"}


def _train_and_export(records, tmp_path, name, args):
    values, _ = cli.parse(train.define_flags, [
        "train", f"--flagfile={REPO}/colorize_tf/configs/smoke.flags",
        f"--records_dir={records}", f"--model_dir={tmp_path}/{name}", "--epochs=1",
        "--steps_per_epoch=2", "--verbose=0", "--num_log_images=1", *args])
    history = trainer.run(TrainConfig.from_flags(values))
    assert np.isfinite(history.history["loss"][0])
    if name in _SLOW:  # exported by a fresh process, as users and the study do: it must
        # find the model's own layers (BilinearUpsample) without train having run
        result = subprocess.run(
            [sys.executable, "-m", "colorize_tf.export", f"--model_dir={tmp_path / name}",
             f"--export_dir={tmp_path / 'models' / name}", "--work_size=32"],
            cwd=REPO, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        return inference.resolve_saved_model(str(tmp_path / "models" / name))
    return exporter.export(str(tmp_path / name), str(tmp_path / "models" / name), work_size=32)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in _SLOW else n
                                  for n in VARIANTS])
def test_variant_trains_exports_and_serves(tiny_records, tmp_path, name):
    path = _train_and_export(tiny_records, tmp_path, name, VARIANTS[name])
    loaded = tf.saved_model.load(path)
    photo = make_photo(27, 37, seed=1)  # odd sizes: padded and cropped back
    png = cv2.imencode(".png", photo[..., ::-1].copy())[1].tobytes()
    out = loaded.signatures["serving_default"](image_bytes=tf.constant([png]),
                                               temperature=tf.constant([0.38]))
    assert tf.io.decode_png(out["colorized_png_bytes"][0]).shape == (27, 37, 3)
    luma = loaded.signatures["colorize_luma"](luma=tf.random.uniform([2, 27, 37, 1]),
                                              temperature=tf.constant([0.38]))
    assert luma["chroma"].shape == (2, 27, 37, 2) and luma["confidence"].shape == (2, 27, 37)
    info = json.load(open(os.path.join(path, "assets", "export.json")))
    colorizer = inference.Colorizer(path)
    probabilities = loaded.signatures["luma_probabilities"](luma=tf.random.uniform(
        [2, 27, 37, 1]))["probabilities"]
    assert colorizer.decoder.num_scores == probabilities.shape[-1]
    assert info["decoding"] == colorizer.decoder.kind
    assert colorizer.colorize(photo).shape == photo.shape
    # The evaluation decodes it through its decoder too.
    results, _, _, scores = scoring.BatchScorer(colorizer, [0.2, 1.0])(
        np.stack([photo, make_photo(27, 37, seed=2)]))
    assert results["T=0.2"].shape == (2, 27, 37, 3) and scores["T=1"]["psnr"].shape == (2,)
    if name == "regression":  # no temperature: every T gives the same colours
        np.testing.assert_array_equal(results["T=0.2"], results["T=1"])
    else:
        assert not np.array_equal(results["T=0.2"], results["T=1"])


def test_regression_model_ignores_the_temperature_and_says_so(tiny_records, tmp_path):
    path = _train_and_export(tiny_records, tmp_path, "reg", ["--decoding=regression"])
    info = json.load(open(os.path.join(path, "assets", "export.json")))
    assert info["decoding"] == "regression" and info["uses_temperature"] is False
    loaded = tf.saved_model.load(path)
    luma = tf.random.uniform([1, 16, 24, 1], seed=3)
    cold = loaded.signatures["colorize_luma"](luma=luma, temperature=tf.constant([0.05]))
    warm = loaded.signatures["colorize_luma"](luma=luma, temperature=tf.constant([1.0]))
    np.testing.assert_array_equal(cold["chroma"], warm["chroma"])
    # Its "probabilities" are the chroma itself, its confidence 1 (no distribution).
    probabilities = loaded.signatures["luma_probabilities"](luma=luma)["probabilities"]
    np.testing.assert_array_equal(probabilities, cold["chroma"])
    np.testing.assert_array_equal(cold["confidence"], np.ones((1, 16, 24)))


def test_rebalance_lambda_1_gives_uniform_weights(tiny_records, tmp_path):
    from colorize_tf.chroma.bins import Bins
    _train_and_export(tiny_records, tmp_path, "flat", ["--rebalance_lambda=1"])
    bins = Bins.load(str(tmp_path / "flat" / "bins.json"))
    np.testing.assert_allclose(bins.weights, np.ones(bins.num_bins))
    records_bins = Bins.load(tiny_records)
    assert bins.centres == records_bins.centres and bins.rebalance_lambda == 1.0


@pytest.mark.parametrize("args,message", [
    (["--decoding=regression", "--regression_weight=1"], "already outputs the chroma"),
    (["--decoding=per_channel", "--soft_targets"], "soft_targets needs decoding=bins"),
    (["--architecture=zhang_small", "--scene_weight=1"], "has no heads"),
    (["--architecture=zhang_small", "--global_context"], "no global context"),
    (["--architecture=effnet_lite0", "--global_context", "--crop_size=48"],
     "crop_size 48 is not divisible by 32"),
    (["--architecture=effnet_lite0", "--crop_size=40"], "crop_size 40 is not divisible by 16"),
    (["--architecture=effnet_lite0", "--hints"],
     "effnet_lite0 has no heads, no hints, decoding=bins only"),
    (["--architecture=effnet_lite0", "--decoding=regression"], "decoding=bins only"),
    (["--architecture=zhang_small", "--crop_size=36", "--depth=2"],
     "crop_size 36 is not divisible by 8 (Zhang's network pools 3 times)"),
    (["--architecture=effnet_lite2", "--crop_size=40"],
     "crop_size 40 is not divisible by 16 (the effnet_lite2 encoder's stride)"),
    (["--architecture=effnet_lite2", "--scene_weight=1"], "effnet_lite2 has no heads"),
    (["--encoder_training=frozen"],
     "encoder_training=frozen needs architecture=effnet_lite0 or effnet_lite2"),
    (["--cast_weight=-1"], "cast_weight must be >= 0"),
    (["--decoding=per_channel", "--cast_weight=0.1"], "only with decoding=bins"),
    (["--rebalance_lambda=2"], "rebalance_lambda must be in [0, 1]"),
])
def test_impossible_methods_are_refused(tmp_path, args, message):
    values, _ = cli.parse(train.define_flags, [
        "train", f"--records_dir={tmp_path}", f"--model_dir={tmp_path}/m", *args])
    with pytest.raises(ConfigError,
                       match=re.escape(message)):
        TrainConfig.from_flags(values).check()
