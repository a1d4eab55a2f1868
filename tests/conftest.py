"""Shared fixtures: tiny generated photos and records, built in a temp dir."""
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from colorize_tf.testing.fake_data import (  # noqa: E402,F401 (re-exported to the tests)
    luma_following_model, make_photo, with_exif_orientation, write_png)

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


@pytest.fixture(scope="session")
def tiny_records(tmp_path_factory):
    """8 photos in two classes -> records (frame 32, YUV, 8 bins) with a val split."""
    from data_prep import builder
    from data_prep import prepare
    root = tmp_path_factory.mktemp("tiny")
    photos = root / "photos"
    for i in range(8):
        write_png(str(photos / ("red" if i % 2 else "blue") / f"{i}.png"),
                  make_photo(40 + 4 * i, 48, seed=i))
    sources, skipped, ignored = builder.list_dir_sources(str(photos))
    out = str(root / "records")
    builder.build_records(sources, out, prepare.PrepConfig(frame_size=32, min_size=8),
                          num_bins=8, val_fraction=0.3, images_per_shard=3,
                          log=lambda *_: None)
    return out


@pytest.fixture(scope="session")
def shared_data():
    if not os.path.isdir(SHARED_DATA):
        pytest.skip("../shared/data is not beside this checkout")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_run(tiny_records, tmp_path_factory):
    """A one-epoch smoke training run on tiny_records (model_dir path)."""
    from colorize_tf.training import trainer
    from colorize_tf.training.config import TrainConfig
    model_dir = str(tmp_path_factory.mktemp("run") / "smoke")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    trainer.run(TrainConfig.from_flagfile(
        f"{repo}/colorize_tf/configs/smoke.flags", records_dir=tiny_records,
        model_dir=model_dir, epochs=1, num_log_images=0, verbose=0))
    return model_dir


@pytest.fixture(scope="session")
def tiny_saved_model(tiny_run, tmp_path_factory):
    """tiny_run exported with a 32 px working size: (version dir, model base dir)."""
    from colorize_tf.training import exporter
    base = str(tmp_path_factory.mktemp("saved_models") / "tiny")
    return exporter.export(tiny_run, base, work_size=32), base


@pytest.fixture(scope="session")
def luma_run(tiny_run, tmp_path_factory):
    """tiny_run with its checkpoints replaced by luma_following_model (model_dir path)."""
    import shutil
    from colorize_tf.chroma.bins import Bins
    run = str(tmp_path_factory.mktemp("luma_run") / "run")
    shutil.copytree(tiny_run, run)
    model = luma_following_model(Bins.load(run).num_bins)
    for name in ("best.keras", "last.keras"):
        model.save(os.path.join(run, "checkpoints", name))
    return run


@pytest.fixture(scope="session")
def luma_saved_model(luma_run, tmp_path_factory):
    """luma_run exported with a 32 px working size and bilinear chroma upsampling (the
    oracles here upsample bilinearly; the guided one has its own, test_guided.py): the
    version dir."""
    from colorize_tf.training import exporter
    return exporter.export(luma_run, str(tmp_path_factory.mktemp("saved_models") / "luma"),
                           work_size=32, guided_radius=0)


@pytest.fixture(scope="session")
def hints_saved_model(tiny_run, tmp_path_factory):
    """tiny_run with its checkpoints replaced by hint_following_model, exported with a
    32 px working size and bilinear chroma upsampling (as luma_saved_model): the
    version dir."""
    import shutil
    from colorize_tf.chroma.bins import Bins
    from colorize_tf.testing.fake_data import hint_following_model
    from colorize_tf.training import exporter
    run = str(tmp_path_factory.mktemp("hints_run") / "run")
    shutil.copytree(tiny_run, run)
    model = hint_following_model(Bins.load(run).centres)
    for name in ("best.keras", "last.keras"):
        model.save(os.path.join(run, "checkpoints", name))
    return exporter.export(run, str(tmp_path_factory.mktemp("saved_models") / "hints"),
                           work_size=32, guided_radius=0)


def numpy_oracle(rgb_uint8, centres, temperature, sharpness=0.5):
    """What the luma-following model's export must give, from published BT.601 YUV
    constants and the model's formula, in numpy only (no code under test)."""
    rgb = rgb_uint8.astype(np.float64) / 255.0
    y = rgb @ np.array([0.299, 0.587, 0.114])
    n = len(centres)
    b = np.arange(n)
    logits = sharpness * (b * (y[..., None] * (n - 1)) - b ** 2 / 2)
    z = np.exp((logits - logits.max(-1, keepdims=True)) / temperature)
    u, v = np.moveaxis((z / z.sum(-1, keepdims=True)) @ np.asarray(centres), -1, 0)
    out = np.stack([y + 1.13983 * v, y - 0.39465 * u - 0.58060 * v, y + 2.03211 * u], -1)
    return np.clip(np.round(out * 255.0), 0, 255)
