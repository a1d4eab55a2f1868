"""Training entry point: flagfiles, smoke run, refusals, overfitting, exact resume."""
import dataclasses
import glob
import json
import os
import subprocess
import sys
import types

import keras
import numpy as np
import pytest

from colorize_tf import cli
from colorize_tf import train
from colorize_tf.training import trainer
from colorize_tf.training.config import TrainConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(REPO, "colorize_tf", "configs", "*.flags")) +
                 glob.glob(os.path.join(REPO, "colorize_tf", "configs", "study", "*.flags")))


def _flags(*args):
    values, _ = cli.parse(train.define_flags, ["train", *args])
    return values


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_every_flagfile_parses(path, monkeypatch):
    monkeypatch.chdir(REPO)  # nested flagfiles are named from the repository root
    values = _flags(f"--flagfile={path}")
    assert values["epochs"] > 0 and values["crop_size"] % 2 ** values["depth"] == 0
    # No trailing comments slipped into values (absl keeps them as part of the value).
    assert not any(isinstance(v, str) and "#" in v for v in values.values())


def test_command_line_overrides_flagfile():
    values = _flags(f"--flagfile={REPO}/colorize_tf/configs/smoke.flags", "--epochs=7")
    assert values["epochs"] == 7


def _smoke(records_dir, model_dir, *extra):
    """The smoke flagfile's TrainConfig, as main builds it."""
    return TrainConfig.from_flags(_flags(
        f"--flagfile={REPO}/colorize_tf/configs/smoke.flags", f"--records_dir={records_dir}",
        f"--model_dir={model_dir}", "--verbose=0", *extra))


def test_smoke_config_trains_end_to_end(tiny_records, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    result = subprocess.run(
        [sys.executable, "-m", "colorize_tf.train",
         "--flagfile=colorize_tf/configs/smoke.flags", f"--records_dir={tiny_records}",
         f"--model_dir={tmp_path}/run"], cwd=REPO, capture_output=True, text=True, env=env,
        timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "epoch 2/2:" in result.stdout
    run = tmp_path / "run"
    for name in ["flags.json", "model_config.json", "bins.json", "history.csv",
                 "checkpoints/last.keras", "checkpoints/best.keras",
                 "backup/state.json"]:
        assert (run / name).exists(), name
    # Quiet by default: no TF start-up notices, no Keras "ran out of data" warning.
    for noise in ("oneDNN", "cuda", "absl::InitializeLog", "ran out of data"):
        assert noise not in result.stderr + result.stdout, noise
    assert json.load(open(run / "flags.json"))["records_dir"] == tiny_records
    # The effective augmentation (paper section 3.2), on by default.
    pipeline = json.load(open(run / "pipeline_config.json"))
    assert pipeline["mirror"] and pipeline["random_crop"] and pipeline["noise_stddev"] > 0
    assert len(open(run / "history.csv").read().strip().splitlines()) == 3
    assert glob.glob(str(run / "logs" / "images" / "events.*"))
    # The same command again finds the run finished and does nothing.
    again = subprocess.run(
        [sys.executable, "-m", "colorize_tf.train",
         "--flagfile=colorize_tf/configs/smoke.flags", f"--records_dir={tiny_records}",
         f"--model_dir={tmp_path}/run"], cwd=REPO, capture_output=True, text=True, env=env,
        timeout=300)
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_refusals(tiny_records, tmp_path):
    with pytest.raises(trainer.TrainingError, match="does not exist"):
        trainer.run(_smoke(tmp_path / "missing", tmp_path / "a"))
    other_bins = tmp_path / "other_bins.json"
    data = json.load(open(os.path.join(tiny_records, "bins.json")))
    data["rebalance_lambda"] = 0.9
    from colorize_tf.chroma.bins import Bins
    data["fingerprint"] = Bins.from_dict({**data, "fingerprint": None} | {
        "fingerprint": Bins(
            grid=Bins.load(tiny_records).grid,
            kept_cells=tuple(data["kept_cells"]), centres=tuple(map(tuple, data["centres"])),
            counts=tuple(data["counts"]), cell_to_bin=tuple(data["cell_to_bin"]),
            rebalance_lambda=0.9).fingerprint}).fingerprint
    json.dump(data, open(other_bins, "w"))
    with pytest.raises(trainer.TrainingError, match="were not learned from the records"):
        trainer.run(_smoke(tiny_records, tmp_path / "b", f"--bins={other_bins}"))
    trainer.run(_smoke(tiny_records, tmp_path / "c", "--epochs=1"))
    with pytest.raises(trainer.TrainingError, match="another configuration"):
        trainer.run(_smoke(tiny_records, tmp_path / "c", "--base_filters=8"))


def test_overfits_six_images(tiny_records, tmp_path):
    # The whole train split (6 photos) is one batch, so batch-norm sees the same
    # statistics at every step; the cosine schedule lets the weights settle.
    history = trainer.run(_smoke(
        tiny_records, tmp_path / "overfit", "--epochs=1", "--steps_per_epoch=300",
        "--batch_size=6", "--base_filters=8", "--augment=false", "--learning_rate=0.01",
        "--lr_schedule=cosine", "--shuffle_buffer=6", "--num_log_images=0",
        "--validation_steps=1"))
    assert history.history["loss"][-1] < 0.6  # the mean over all 300 steps; start ~2.1
    pipeline = json.load(open(tmp_path / "overfit" / "pipeline_config.json"))
    assert not (pipeline["mirror"] or pipeline["random_crop"] or pipeline["noise_stddev"])
    from colorize_tf.chroma.bins import Bins
    from colorize_tf.data import input_pipeline
    model = keras.models.load_model(tmp_path / "overfit" / "checkpoints" / "last.keras",
                                    compile=False)
    luma, packed = next(iter(input_pipeline.make_dataset(
        f"{tiny_records}/train-*", Bins.load(tiny_records), 6, False,
        input_pipeline.PipelineConfig(crop_size=32))))
    truth, valid = packed[..., 0].numpy(), packed[..., -1].numpy() > 0

    def accuracy(training):
        predicted = np.argmax(model(luma, training=training).numpy(), axis=-1)
        return float((predicted == truth)[valid].mean())
    # Chance is 1/8 for 8 bins. With batch statistics the six photos are memorised
    # pixel for pixel (measured 0.9998 here). With the moving averages the score
    # depends on the CPU's kernels (measured 0.71 here, 0.89 on an AMD EPYC), so
    # that bound only asks for far better than chance.
    assert accuracy(training=True) > 0.95
    assert accuracy(training=False) > 0.4


def _weights(model_dir):
    model = keras.models.load_model(os.path.join(model_dir, "checkpoints", "last.keras"),
                                    compile=False)
    return model.get_weights()


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, after=0):
        super().__init__()
        self.after = after

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.after:
            raise KeyboardInterrupt(f"simulated kill after epoch {epoch + 1}")


def test_interrupted_run_resumes_to_the_same_weights(tiny_records, tmp_path):
    args = ("--epochs=2", "--steps_per_epoch=3", "--num_log_images=0", "--seed=5")
    trainer.run(_smoke(tiny_records, tmp_path / "straight", *args))
    with pytest.raises(KeyboardInterrupt):
        trainer.run(_smoke(tiny_records, tmp_path / "killed", *args),
                    extra_callbacks=[_Interrupt()])
    meta = json.load(open(tmp_path / "killed" / "backup" / "state.json"))
    assert meta["epoch"] == 1
    history = trainer.run(_smoke(tiny_records, tmp_path / "killed", *args))
    assert history.epoch == [1]
    for a, b in zip(_weights(tmp_path / "straight"), _weights(tmp_path / "killed")):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # The history has one row per epoch, and the best value is the best of both parts.
    rows = open(tmp_path / "killed" / "history.csv").read().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1"]
    val_losses = [float(dict(zip(rows[0].split(","), r.split(",")))["val_loss"])
                  for r in rows[1:]]
    state = json.load(open(tmp_path / "killed" / "backup" / "state.json"))
    assert state["epoch"] == 2 and state["best"] == pytest.approx(min(val_losses))


def test_a_resume_from_a_truncated_newest_backup_replays_its_epoch_exactly(tiny_records,
                                                                         tmp_path):
    # Killed after epoch 2 of 3 with epoch 2's weights cut short: the run resumes from
    # epoch 1's state and trains epochs 2 and 3 (it trained only epoch 3), history.csv
    # keeps epoch 1's row only before them, and the weights equal an uninterrupted run's.
    args = ("--epochs=3", "--steps_per_epoch=3", "--num_log_images=0", "--seed=5")
    trainer.run(_smoke(tiny_records, tmp_path / "straight", *args))
    with pytest.raises(KeyboardInterrupt):
        trainer.run(_smoke(tiny_records, tmp_path / "killed", *args),
                    extra_callbacks=[_Interrupt(after=1)])
    weights = tmp_path / "killed" / "backup" / "epoch-00002.weights.h5"
    weights.write_bytes(weights.read_bytes()[:len(weights.read_bytes()) // 2])
    history = trainer.run(_smoke(tiny_records, tmp_path / "killed", *args))
    assert history.epoch == [1, 2]
    for a, b in zip(_weights(tmp_path / "straight"), _weights(tmp_path / "killed")):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    rows = open(tmp_path / "killed" / "history.csv").read().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2"]


def test_mirrored_strategy_on_two_logical_cpus(tiny_records, tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-m", "colorize_tf.train",
         "--flagfile=colorize_tf/configs/smoke.flags", f"--records_dir={tiny_records}",
         f"--model_dir={tmp_path}/run", "--strategy=mirrored", "--logical_cpus=2",
         "--epochs=1", "--num_log_images=0"],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MirroredStrategy (2 replicas)" in result.stdout


# bfloat16 with XLA is the slowest CPU case (about a minute): it runs with -m slow.
@pytest.mark.parametrize("policy,jit", [
    ("mixed_float16", "false"), pytest.param("mixed_bfloat16", "true", marks=pytest.mark.slow)])
def test_mixed_precision_and_jit_on_cpu(tiny_records, tmp_path, policy, jit):
    try:
        history = trainer.run(_smoke(tiny_records, tmp_path / policy, "--epochs=1",
                                     f"--mixed_precision={policy}", f"--jit_compile={jit}",
                                     "--num_log_images=0"))
        # The run leaves the process's dtype policy as it found it.
        assert keras.mixed_precision.global_policy().name == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.isfinite(history.history["loss"][0])


def test_heads_and_soft_targets_train(tiny_records, tmp_path):
    history = trainer.run(_smoke(tiny_records, tmp_path / "heads", "--epochs=1",
                                 "--regression_weight=0.5", "--scene_weight=0.1",
                                 "--soft_targets", "--num_log_images=1"))
    assert {"logits_loss", "chroma_loss", "scene_loss"} <= set(history.history)
    pipeline = json.load(open(tmp_path / "heads" / "pipeline_config.json"))
    assert pipeline["soft_targets"] and pipeline["regression_target"] and pipeline["scene_target"]


def test_frame_scale_crops_refuse_crops_larger_than_the_frame(tiny_records, tmp_path):
    # The tiny records' frame is 32 px: a 48 px crop at its scale cannot exist.
    with pytest.raises(trainer.TrainingError, match="crop_size 48 is larger than the "
                       "records' 32 px frame"):
        trainer.run(_smoke(tiny_records, tmp_path / "a", "--frame_scale_crops",
                           "--crop_size=48"))
    assert not os.path.exists(tmp_path / "a")  # refused before the model_dir is made


def test_records_must_match_their_report(tiny_records, tmp_path):
    import shutil
    records_dir = tmp_path / "records"
    shutil.copytree(tiny_records, records_dir)
    with pytest.raises(trainer.TrainingError, match="batch_size 64 is larger than the 6"):
        trainer.run(_smoke(records_dir, tmp_path / "a", "--batch_size=64"))
    shard = sorted(records_dir.glob("train-*.tfrecord"))[0]
    shard.write_bytes(shard.read_bytes() + b"x")
    with pytest.raises(trainer.TrainingError, match="do not match their report.*bytes"):
        trainer.run(_smoke(records_dir, tmp_path / "b"))
    shard.write_bytes(shard.read_bytes()[:-1])
    (records_dir / "train-00009-of-00009.tfrecord").write_bytes(b"")  # from another build
    with pytest.raises(trainer.TrainingError, match="not listed in the report"):
        trainer.run(_smoke(records_dir, tmp_path / "c"))
    (records_dir / "train-00009-of-00009.tfrecord").unlink()
    (records_dir / "report.json").unlink()  # a build killed before its end
    with pytest.raises(trainer.TrainingError, match="report.json is missing"):
        trainer.run(_smoke(records_dir, tmp_path / "d"))


def test_bad_flags_are_one_line_before_any_work(tiny_records, tmp_path):
    for flag, message in [("--batch_size=0", "train: error: batch_size must be >= 1"),
                          ("--epochs=0", "epochs must be >= 1"),
                          ("--learning_rate=nan", "learning_rate must be a finite"),
                          ("--crop_size=30", "not divisible by 8 (2^depth"),
                          ("--strategy=multi_worker", "TF_CONFIG")]:
        result = subprocess.run(
            [sys.executable, "-m", "colorize_tf.train",
             "--flagfile=colorize_tf/configs/smoke.flags", f"--records_dir={tiny_records}",
             f"--model_dir={tmp_path}/run", flag], cwd=REPO, capture_output=True, text=True,
            timeout=120)
        assert result.returncode == 2 and message in result.stderr, (flag, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert not os.path.exists(tmp_path / "run")


def test_unexpected_errors_and_ctrl_c_are_one_line(capsys, monkeypatch):
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    def boom():
        raise RuntimeError("disk on fire\nsecond line")

    def interrupted():
        raise KeyboardInterrupt

    for main, code, text in [(boom, 1, "train: internal error: RuntimeError: disk on fire"),
                             (interrupted, 130, "train: interrupted")]:
        with pytest.raises(SystemExit) as exit_info:
            cli.run_main("train", main)
        assert exit_info.value.code == code
        err = capsys.readouterr().err
        assert text in err and len(err.strip().splitlines()) == 1, err


def test_a_run_written_before_color_space_was_recorded_still_resumes(tmp_path):
    # model_config.json of runs before the field: the luma was the bins' colour space,
    # so a Lab run must not be taken for another configuration.
    from colorize_tf.modeling.model import ModelConfig
    config = ModelConfig(num_bins=9, color_space="lab")
    bins = types.SimpleNamespace(fingerprint="f00d")
    old = dataclasses.asdict(config)
    del old["color_space"]
    (tmp_path / "model_config.json").write_text(json.dumps(
        {"model": old, "bins_fingerprint": "f00d"}))
    assert trainer._check_model_dir(str(tmp_path), config, bins,
                                    trained=True)["model"]["color_space"] == "lab"
    with pytest.raises(trainer.TrainingError, match="another configuration"):
        trainer._check_model_dir(str(tmp_path), dataclasses.replace(config, num_bins=8), bins,
                                 trained=True)


def test_a_run_that_failed_before_its_first_epoch_takes_the_corrected_command(
        tiny_records, tiny_saved_model, tmp_path):
    # A warm start that does not fit (width 6 from a width-4 model) stops the run after
    # its configs were written; the user's corrected command (the source's width 4, no
    # warm start) must then train there, not be refused as "another configuration".
    with pytest.raises(trainer.TrainingError, match="does not fit this model"):
        trainer.run(_smoke(tiny_records, tmp_path / "run", "--base_filters=6",
                           f"--warm_start={tiny_saved_model[0]}"))
    assert json.load(open(tmp_path / "run" / "model_config.json"))["model"]["base_filters"] == 6
    trainer.run(_smoke(tiny_records, tmp_path / "run", "--epochs=1"))
    assert json.load(open(tmp_path / "run" / "model_config.json"))["model"]["base_filters"] == 4
    assert json.load(open(tmp_path / "run" / "flags.json"))["warm_start"] is None
    assert len(open(tmp_path / "run" / "history.csv").read().splitlines()) == 2  # 1 epoch
