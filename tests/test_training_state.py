"""Crash-safe checkpoints: the best value survives a resume, damaged state falls back."""
import json
import os

import keras
import numpy as np
import pytest

from colorize_tf.training.state import StateError, TrainingState, read_state


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")])
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def _epoch(callback, model, epoch, val_loss):
    model.get_layer("dense").kernel.assign(np.full((3, 2), float(epoch + 1), np.float32))
    callback.on_epoch_end(epoch, {"loss": 1.0, "val_loss": val_loss})


def _kernel(path):
    return keras.models.load_model(path, compile=False).get_layer("dense").kernel.numpy()[0, 0]


def _start(model_dir, model):
    callback = TrainingState(str(model_dir), "val_loss", log=lambda *_: None)
    callback.set_model(model)
    callback.on_train_begin()
    return callback


def test_resume_keeps_the_best_so_far(tmp_path):
    model = _model()
    first = _start(tmp_path, model)
    _epoch(first, model, 0, val_loss=1.0)  # best: epoch 1 (kernel 1)
    _epoch(first, model, 1, val_loss=3.0)
    # Killed here; a new process resumes from the state on disk.
    resumed_model = _model(seed=1)
    second = _start(tmp_path, resumed_model)
    assert second.restored_epoch == 2 and second.best == 1.0
    np.testing.assert_array_equal(resumed_model.get_layer("dense").kernel.numpy(), 2.0)
    _epoch(second, resumed_model, 2, val_loss=2.0)  # worse than epoch 1: best stays
    assert _kernel(tmp_path / "checkpoints" / "best.keras") == 1.0
    assert _kernel(tmp_path / "checkpoints" / "last.keras") == 3.0
    _epoch(second, resumed_model, 3, val_loss=0.5)
    assert _kernel(tmp_path / "checkpoints" / "best.keras") == 4.0
    # Only the current and the previous epoch's weights are kept; no temp files.
    assert sorted(os.listdir(tmp_path / "backup")) == [
        "epoch-00003.weights.h5", "epoch-00004.weights.h5", "state.json", "state.prev.json"]


def _tear_state(backup):
    (backup / "state.json").write_text("")  # torn by a crash


def _truncate_newest_weights(backup):
    weights = backup / "epoch-00003.weights.h5"
    weights.write_bytes(weights.read_bytes()[:100])  # cut short by a full disk or a crash


@pytest.mark.parametrize("damage,message", [
    (_tear_state, "state.json is damaged"),
    (_truncate_newest_weights, "epoch-00003.weights.h5 is damaged")])
def test_a_damaged_newest_state_falls_back_one_epoch(tmp_path, damage, message):
    model = _model()
    callback = _start(tmp_path, model)
    for epoch in range(3):
        _epoch(callback, model, epoch, val_loss=1.0 - 0.1 * epoch)
    damage(tmp_path / "backup")
    messages = []
    resumed = TrainingState(str(tmp_path), "val_loss", log=messages.append)
    resumed_model = _model(seed=1)
    resumed.set_model(resumed_model)
    resumed.on_train_begin()
    assert resumed.restored_epoch == 2
    assert any(message in m for m in messages), messages
    assert any("previous state" in m for m in messages), messages
    np.testing.assert_array_equal(resumed_model.get_layer("dense").kernel.numpy(), 2.0)


def test_a_resumed_run_keeps_its_previous_state_for_the_next_fallback(tmp_path):
    # Three epochs, killed; resumed, one more epoch, killed; then state.json is torn.
    # The fallback must be the state before epoch 4 (epoch 3, whose weights the resumed
    # run kept): a resume that forgot its restored state would leave state.prev.json
    # naming epoch 2, whose weights it had deleted, and no usable state at all.
    model = _model()
    first = _start(tmp_path, model)
    for epoch in range(3):
        _epoch(first, model, epoch, val_loss=1.0 - 0.1 * epoch)
    resumed_model = _model(seed=1)
    second = _start(tmp_path, resumed_model)
    assert second.restored_epoch == 3
    _epoch(second, resumed_model, 3, val_loss=0.5)
    previous = json.loads((tmp_path / "backup" / "state.prev.json").read_text())
    assert previous["epoch"] == 3 and (tmp_path / "backup" / previous["weights"]).exists()
    _tear_state(tmp_path / "backup")
    again_model = _model(seed=2)
    third = _start(tmp_path, again_model)
    assert third.restored_epoch == 3
    np.testing.assert_array_equal(again_model.get_layer("dense").kernel.numpy(), 3.0)


def test_unusable_state_is_one_clear_error(tmp_path):
    model = _model()
    callback = _start(tmp_path, model)
    _epoch(callback, model, 0, val_loss=1.0)
    weights = tmp_path / "backup" / "epoch-00001.weights.h5"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated, and no earlier state
    with pytest.raises(StateError, match="epoch-00001.weights.h5 is damaged"):
        _start(tmp_path, _model())
    (tmp_path / "backup" / "state.json").write_text("{")
    with pytest.raises(StateError, match="no usable resume state"):
        read_state(str(tmp_path))


def test_stale_temp_files_are_removed_and_nan_epochs_not_saved(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    stale = tmp_path / "checkpoints" / ".last.keras.tmp-999999999.keras"
    stale.write_bytes(b"half")
    model = _model()
    callback = _start(tmp_path, model)
    assert not stale.exists()
    callback.on_epoch_end(0, {"loss": float("nan"), "val_loss": 1.0})
    assert not (tmp_path / "backup" / "state.json").exists()
    assert json.loads(json.dumps(read_state(str(tmp_path))[0])) is None
