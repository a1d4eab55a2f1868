"""Crash tests: build_records, training and export killed with SIGKILL at random
moments (bounded trials, fixed seed). Nothing half-written may be visible under a
final name, and the re-run must give what an uninterrupted run gives: identical
shards, the same weights and the same best checkpoint, only complete versions.
Marked slow (about two minutes); CI runs them."""
import glob
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from colorize_tf.data import records
from tests.conftest import make_photo, write_png

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRIALS = 3
pytestmark = pytest.mark.slow


def _start(module, *args):
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _kill_after(process, seconds):
    """SIGKILL after `seconds` unless it ended first; True if it was killed."""
    try:
        process.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        return True


def _run(module, *args):
    """Runs to completion; returns the seconds it took (kill points are drawn in it)."""
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return time.monotonic() - start


def _digests(folder, pattern):
    return {os.path.basename(p): hashlib.sha256(open(p, "rb").read()).hexdigest()
            for p in sorted(glob.glob(os.path.join(folder, pattern)))}


def _visible(folder):
    return [n for n in os.listdir(folder) if not n.startswith(".")] \
        if os.path.isdir(folder) else []


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("crash") / "photos")
    for i in range(120):
        write_png(os.path.join(folder, f"c{i % 2}", f"{i:03d}.png"),
                  make_photo(60, 80, seed=i))
    return folder


def test_build_records_killed_at_random_points(photos, tmp_path):
    args = ["--frame_size=32", "--images_per_shard=10", "--workers=1", "--val_fraction=0.2"]
    seconds = _run("data_prep.build_records", f"--input_dir={photos}",
                   f"--output_dir={tmp_path}/clean", *args)
    clean = _digests(tmp_path / "clean", "*.tfrecord")
    rng = random.Random(0)
    out = str(tmp_path / "killed")
    kills = 0
    for trial in range(TRIALS):
        process = _start("data_prep.build_records", f"--input_dir={photos}",
                         f"--output_dir={out}", *args)
        killed = _kill_after(process, rng.uniform(0.4, 0.95) * seconds)
        kills += killed
        report = os.path.join(out, "report.json")
        if os.path.exists(report):  # written last: then the build is whole
            listed = json.load(open(report))["shards"]
            for split, shards in listed.items():
                records.verify_shards(out, split, shards)
        for name in _visible(out):  # every visible shard is complete and readable
            if name.endswith(".tfrecord"):
                assert sum(1 for _ in tf.data.TFRecordDataset(os.path.join(out, name))) >= 0
    assert kills > 0
    _run("data_prep.build_records", f"--input_dir={photos}", f"--output_dir={out}", *args)
    assert _digests(out, "*.tfrecord") == clean
    assert not [n for n in os.listdir(out) if ".tmp-" in n]


@pytest.fixture(scope="module")
def crash_records(photos, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("crash_records") / "records")
    _run("data_prep.build_records", f"--input_dir={photos}", f"--output_dir={out}",
         "--frame_size=32", "--workers=1", "--val_fraction=0.2", "--num_bins=8")
    return out


def _train_args(records, model_dir):
    return ["--flagfile=colorize_tf/configs/smoke.flags", f"--records_dir={records}",
            f"--model_dir={model_dir}", "--epochs=6", "--steps_per_epoch=4",
            "--num_log_images=0", "--seed=3", "--verbose=0"]


def _weights(path):
    return keras.models.load_model(path, compile=False).get_weights()


def test_training_killed_at_random_points_resumes_to_the_same_run(crash_records, tmp_path):
    seconds = _run("colorize_tf.train", *_train_args(crash_records, tmp_path / "straight"))
    rng = random.Random(1)
    model_dir = str(tmp_path / "killed")
    kills = 0
    for trial in range(TRIALS):
        process = _start("colorize_tf.train", *_train_args(crash_records, model_dir))
        kills += _kill_after(process, rng.uniform(0.5, 0.95) * seconds)
        # Whatever is visible loads: checkpoints, state, weights.
        for path in glob.glob(os.path.join(model_dir, "checkpoints", "*.keras")):
            _weights(path)
        state = os.path.join(model_dir, "backup", "state.json")
        if os.path.exists(state):
            json.load(open(state))
    assert kills > 0
    _run("colorize_tf.train", *_train_args(crash_records, model_dir))
    for name in ("last.keras", "best.keras"):
        for a, b in zip(_weights(tmp_path / "straight" / "checkpoints" / name),
                        _weights(os.path.join(model_dir, "checkpoints", name))):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    rows = open(os.path.join(model_dir, "history.csv")).read().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == [str(e) for e in range(6)]


def test_export_killed_at_random_points_never_shows_a_partial_version(crash_records,
                                                                      tmp_path):
    run = str(tmp_path / "run")
    _run("colorize_tf.train", *_train_args(crash_records, run)[:-3], "--epochs=1",
         "--num_log_images=0")
    base = str(tmp_path / "models")
    seconds = _run("colorize_tf.export", f"--model_dir={run}", f"--export_dir={tmp_path}/x")
    rng = random.Random(2)
    kills = 0
    for trial in range(TRIALS):
        process = _start("colorize_tf.export", f"--model_dir={run}", f"--export_dir={base}")
        kills += _kill_after(process, rng.uniform(0.4, 0.95) * seconds)
        for name in _visible(base):  # every visible version is complete and loads
            assert name.isdigit(), name
            loaded = tf.saved_model.load(os.path.join(base, name))
            assert "serving_default" in loaded.signatures
            assert os.path.exists(os.path.join(base, name, "assets.extra",
                                               "tf_serving_warmup_requests"))
    assert kills > 0
    _run("colorize_tf.export", f"--model_dir={run}", f"--export_dir={base}")
    assert not [n for n in os.listdir(base) if not n.isdigit()]
