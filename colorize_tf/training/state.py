"""Crash-safe checkpoints of a training run, and exact resume after a kill.

At the end of every epoch, in this order (each file through a temp name and a rename,
so a kill never leaves a torn file under a final name):
    checkpoints/last.keras          the model with its optimizer state
    checkpoints/best.keras          when the monitored value beat the best so far
    backup/epoch-NNNNN.weights.h5   weights + optimizer variables to resume from
    backup/state.json               {"epoch", "weights", "best", "monitor"}: the commit
The previous state is kept as backup/state.prev.json with its weights file, so a
state that cannot be read or loaded (a damaged disk, a file edited by hand) falls back
one epoch with a message instead of ending the run. Keras' BackupAndRestore and
ModelCheckpoint write in place, and the best value is not part of their backup: after
a resume, `best.keras` would be overwritten by a worse epoch.
"""
import json
import math
import os
import re

import keras

from colorize_tf import errors
from colorize_tf import safe_write

# The layout of a run's --model_dir (python -m colorize_tf.train writes it, export reads it;
# its model_config.json is modeling.model.MODEL_CONFIG_NAME).
FLAGS_NAME = "flags.json"
PIPELINE_CONFIG_NAME = "pipeline_config.json"  # the effective augmentation and targets
HISTORY_NAME = "history.csv"
BACKUP_DIR = "backup"
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.keras"
BEST_CHECKPOINT = "best.keras"
STATE_NAME = "state.json"
PREVIOUS_STATE_NAME = "state.prev.json"
_WEIGHTS = re.compile(r"^epoch-(\d+)\.weights\.h5$")


class StateError(errors.Error):
    """The run's saved state cannot be used: one line for the user."""


def _read_state(path):
    with open(path) as f:
        state = json.load(f)
    if not isinstance(state, dict) or not isinstance(state.get("epoch"), int) \
            or not isinstance(state.get("weights"), str):
        raise errors.Error("not a training state")
    return state


def read_state(model_dir):
    """-> the newest readable state dict (None for a new run), and a list of messages
    about what was damaged and skipped."""
    backup = os.path.join(model_dir, BACKUP_DIR)
    messages = []
    for name in (STATE_NAME, PREVIOUS_STATE_NAME):
        path = os.path.join(backup, name)
        if not os.path.exists(path):
            continue
        try:
            state = _read_state(path)
        except (OSError, ValueError) as e:
            messages.append(f"{path} is damaged ({e}); trying the previous state")
            continue
        if not os.path.exists(os.path.join(backup, state["weights"])):
            messages.append(f"{path} names a missing file {state['weights']}")
            continue
        # Checked here, before the trainer sets its first epoch from this state: a
        # truncated weights file found only when the callback loads it would resume
        # from the previous epoch's weights but skip an epoch.
        problem = _weights_problem(os.path.join(backup, state["weights"]))
        if problem:
            messages.append(f"{state['weights']} is damaged ({problem}); trying the "
                            "previous state")
            continue
        state["file"] = path
        return state, messages
    if messages:
        raise StateError(f"no usable resume state in {backup}: " + "; ".join(messages) +
                         f". Move {backup} away to start the run again from scratch.")
    return None, messages


def _weights_problem(path):
    """None where the weights file (Keras' HDF5) opens and every array in it reads in
    full; else the reason, one line (a file cut short by a crash or a full disk)."""
    import h5py  # Keras' own dependency for .weights.h5

    def read(name, item):
        if isinstance(item, h5py.Dataset):
            item[()]
        return None  # (a value would stop the visit)
    try:
        with h5py.File(path, "r") as f:
            f.visititems(read)
    except Exception as e:  # h5py raises OSError, KeyError, RuntimeError, ...
        return f"{type(e).__name__}: {str(e)[:120]}"
    return None


class TrainingState(keras.callbacks.Callback):
    """Restores the state at the start of fit, saves it at the end of every epoch.

    monitor: the logs key of the best checkpoint (lower is better). save_dir: where
    the state is written (default model_dir): a multi-worker run's other workers
    restore the chief's state from model_dir and write theirs to a temporary folder.
    """

    def __init__(self, model_dir, monitor, log=print, save_dir=None):
        super().__init__()
        self.model_dir, self.monitor, self.log = model_dir, monitor, log
        self.backup = os.path.join(save_dir or model_dir, BACKUP_DIR)
        self.checkpoints = os.path.join(save_dir or model_dir, CHECKPOINT_DIR)
        self.restore_backup = os.path.join(model_dir, BACKUP_DIR)
        self.best = None
        self.previous = None  # the state before the current one (kept on disk)
        self.restored_epoch = 0

    def on_train_begin(self, logs=None):
        os.makedirs(self.backup, exist_ok=True)
        os.makedirs(self.checkpoints, exist_ok=True)
        for folder in (self.backup, self.checkpoints):
            safe_write.remove_stale_temps(folder)
        state, messages = read_state(self.model_dir)
        for message in messages:
            self.log(f"train: {message}")
        if state is None:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        damaged = []
        while True:
            try:
                self.model.load_weights(os.path.join(self.restore_backup, state["weights"]))
                break
            except Exception as e:  # h5py raises several types for a damaged file
                damaged.append(f"{state['weights']} is damaged ({str(e)[:120]})")
                state = self._previous(state)
                if state is None:
                    raise StateError(f"cannot load the weights in {self.restore_backup}: "
                                     f"{'; '.join(damaged)}; move {self.restore_backup} away "
                                     "to start again from scratch") from None
                self.log(f"train: {damaged[-1]}; trying the previous state")
        self.best = state.get("best")
        self.previous = state
        self.restored_epoch = state["epoch"]
        if state["file"].endswith(PREVIOUS_STATE_NAME):
            self.log(f"train: resuming from the previous state (epoch {state['epoch']})")

    def _previous(self, state):
        """The state before state (the newest's fallback), or None when state is the
        previous one already or it is unusable."""
        path = os.path.join(self.restore_backup, PREVIOUS_STATE_NAME)
        if state["file"] == path or not os.path.exists(path):
            return None
        try:
            previous = _read_state(path)
        except (OSError, ValueError):
            return None
        previous["file"] = path
        return previous

    def on_epoch_end(self, epoch, logs=None):
        if not all(math.isfinite(v) for v in (logs or {}).values()
                   if isinstance(v, (int, float))):
            self.log(f"train: epoch {epoch + 1} ended with NaN or infinite values; "
                     "nothing saved from it")
            return
        value = (logs or {}).get(self.monitor)
        with safe_write.replacing(os.path.join(self.checkpoints, LAST_CHECKPOINT)) as tmp:
            self.model.save(tmp)
        if value is not None and math.isfinite(value) and (self.best is None or
                                                           value < self.best):
            with safe_write.replacing(os.path.join(self.checkpoints, BEST_CHECKPOINT)) as tmp:
                self.model.save(tmp)
            self.best = float(value)
        weights = f"epoch-{epoch + 1:05d}.weights.h5"
        with safe_write.replacing(os.path.join(self.backup, weights)) as tmp:
            self.model.save_weights(tmp)
        state = {"epoch": epoch + 1, "weights": weights, "best": self.best,
                 "monitor": self.monitor}
        if self.previous is not None:
            safe_write.write_json(os.path.join(self.backup, PREVIOUS_STATE_NAME),
                                  {k: v for k, v in self.previous.items() if k != "file"})
        safe_write.write_json(os.path.join(self.backup, STATE_NAME), state)
        keep = {weights, (self.previous or {}).get("weights")}
        for name in os.listdir(self.backup):
            if _WEIGHTS.match(name) and name not in keep:
                os.remove(os.path.join(self.backup, name))
        self.previous = state
