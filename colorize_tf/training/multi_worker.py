"""Training on several machines: a custom loop under MultiWorkerMirroredStrategy.

Keras 3's `Model.fit` does not run under MultiWorkerMirroredStrategy: before the first
step it reduces a batch of distributed inputs eagerly, which the collective ops
refuse (keras-team/keras#20585). This loop keeps everything else of fit: each
replica runs the model's own `train_step` (the compiled losses, loss weights,
metrics, loss scaling, and the optimizer, which all-reduces the gradients across
replicas), inside one tf.function per step; the callbacks are the same objects,
driven by hand once per epoch; the metrics are read across all workers at the end
of each epoch (Keras' metric variables are summed on read).

Roles (TF_CONFIG): the chief (task "chief", or worker 0 when there is none) writes
the run's folder; the other workers run the same steps and write their checkpoints
and logs to a temporary folder that is removed at the end (every worker must save:
saving reads variables that may need all workers).
"""
import hashlib
import math
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf


class ClusterError(Exception):
    """A worker of the cluster stopped during training: one line for the user."""


def is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def worker_role(strategy):
    """-> (is_chief, task description like "worker 1 of 2") from the strategy's
    cluster (TF_CONFIG)."""
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id
    cluster = resolver.cluster_spec().as_dict()
    if "chief" in cluster:
        chief = task_type == "chief"
    else:
        chief = task_type in (None, "worker") and (task_id or 0) == 0
    workers = sum(len(cluster.get(name, [])) for name in ("chief", "worker")) or 1
    return chief, f"{task_type or 'worker'} {task_id or 0} of {workers}"


def can_compile_collectives():
    """XLA compiles collective ops for GPUs only: a step with the gradients' all-reduce
    fails to compile on CPU devices (TensorFlow b/194942685)."""
    return bool(tf.config.list_logical_devices("GPU"))


def temporary_write_dir(task):
    """A folder for a non-chief worker's writes (removed by remove_write_dir)."""
    return tempfile.mkdtemp(prefix=f"colorize_tf-{task.split(' of ')[0].replace(' ', '')}-")


def remove_write_dir(path):
    shutil.rmtree(path, ignore_errors=True)


def weights_fingerprint(model):
    """12 hex digits of the SHA-256 of every weight's bytes (in the model's order): equal
    on every worker of a synchronous run."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()[:12]


def _step_function(model, strategy, step, jit_compile):
    """-> a tf.function running step (model.train_step or test_step) on every replica
    with the next batch of a distributed iterator."""
    one_step = tf.function(step, jit_compile=jit_compile, reduce_retracing=True)

    @tf.function
    def run(iterator):
        strategy.run(one_step, args=(next(iterator),))
    return run


def _metrics(model, prefix=""):
    """The model's metrics, aggregated over all workers (a collective: every worker
    must call it at the same point), as floats."""
    return {prefix + name: float(value) for name, value in
            model.get_metrics_result().items()}


def fit(model, strategy, train_dataset, epochs, initial_epoch, steps_per_epoch,
        callbacks, val_dataset=None, validation_steps=None, jit_compile=False):
    """Model.fit's epochs for a model compiled in strategy's scope.

    train_dataset, val_dataset: distributed datasets (the train one covers the epochs
    [initial_epoch, epochs) of steps_per_epoch batches each; the val one holds at
    least validation_steps batches per replica). callbacks: Keras callbacks, given
    the epoch logs ("loss", ..., "val_loss", ...) as fit gives them. -> the History.
    """
    history = keras.callbacks.History()
    callback_list = keras.callbacks.CallbackList(
        list(callbacks) + [history], model=model, epochs=epochs, steps=steps_per_epoch,
        verbose=0)
    try:
        return _run_epochs(model, strategy, train_dataset, epochs, initial_epoch,
                           steps_per_epoch, callback_list, history, val_dataset,
                           validation_steps, jit_compile)
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
            tf.errors.CancelledError) as e:
        # MultiWorkerMirroredStrategy's health checks abort the collectives of the
        # workers left when one of them dies.
        raise ClusterError(
            f"another worker of the cluster stopped ({type(e).__name__}); start every "
            "worker again with the same command: they resume from the last finished "
            "epoch") from None


def _run_epochs(model, strategy, train_dataset, epochs, initial_epoch, steps_per_epoch,
                callback_list, history, val_dataset, validation_steps, jit_compile):
    train_step = _step_function(model, strategy, model.train_step, jit_compile)
    test_step = _step_function(model, strategy, model.test_step, jit_compile)
    with strategy.scope():
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        callback_list.on_train_begin()
        iterator = iter(train_dataset)
        logs = {}
        for epoch in range(initial_epoch, epochs):
            model.reset_metrics()
            callback_list.on_epoch_begin(epoch)
            for step in range(steps_per_epoch):
                callback_list.on_train_batch_begin(step)
                train_step(iterator)
                callback_list.on_train_batch_end(step)
            logs = _metrics(model)
            if val_dataset is not None and validation_steps:
                model.reset_metrics()
                val_iterator = iter(val_dataset)
                for step in range(validation_steps):
                    test_step(val_iterator)
                logs.update(_metrics(model, "val_"))
            callback_list.on_epoch_end(epoch, logs)
            if not math.isfinite(logs.get("loss", 0.0)):
                break  # TerminateOnNaN's rule, at the epoch's end
        callback_list.on_train_end(logs)
    return history
