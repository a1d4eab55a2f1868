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
import json
import math
import os
import shutil
import signal
import socket
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from colorize_tf import errors


class ClusterError(errors.Error):
    """A worker of the cluster stopped during training: one line for the user."""


class TFConfigError(errors.Error):
    """TF_CONFIG does not describe a cluster this strategy can train on."""


DEFAULT_CLUSTER_TIMEOUT = 600.0  # seconds a worker waits for the others to start
TASK_TYPES = ("chief", "worker")  # MultiWorkerMirroredStrategy's; "evaluator" trains not


def read_tf_config(text):
    """TF_CONFIG's text -> (cluster {type: ["host:port", ...]}, task type, task index);
    TFConfigError saying what is wrong: not JSON, not an object, no cluster, a
    parameter server, an address without a port, a task not in the cluster."""
    if text is None:
        raise TFConfigError("TF_CONFIG is not set: it names the cluster's machines and "
                            "this one's task")
    try:
        config = json.loads(text)
    except (ValueError, RecursionError):
        raise TFConfigError(f"TF_CONFIG is not JSON: {text[:80]!r}") from None
    if not isinstance(config, dict):
        raise TFConfigError(f"TF_CONFIG must be a JSON object with \"cluster\" and "
                            f"\"task\", got a {type(config).__name__}")
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise TFConfigError("TF_CONFIG has no \"cluster\" object of task types and their "
                            "addresses, e.g. {\"worker\": [\"host1:2222\", \"host2:2222\"]}")
    if "ps" in cluster:
        raise TFConfigError("TF_CONFIG names parameter servers (\"ps\"): this training is "
                            "synchronous (MultiWorkerMirroredStrategy): chief and workers only")
    for kind, addresses in cluster.items():
        if kind not in TASK_TYPES:
            raise TFConfigError(f"TF_CONFIG's cluster has a {kind!r} task: only "
                                f"{' and '.join(TASK_TYPES)} tasks train")
        if not isinstance(addresses, list) or not addresses:
            raise TFConfigError(f"TF_CONFIG's cluster {kind!r} must be a list of "
                                "\"host:port\" addresses")
        for address in addresses:
            host, _, port = str(address).rpartition(":")
            if not isinstance(address, str) or not host or not port.isdigit():
                raise TFConfigError(f"TF_CONFIG's {kind} address {address!r} has no port "
                                    "(host:port)")
    if not isinstance(task, dict):
        raise TFConfigError("TF_CONFIG has no \"task\" object: {\"type\": \"worker\", "
                            "\"index\": N} says which machine this is")
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in cluster:
        raise TFConfigError(f"TF_CONFIG's task type {kind!r} is not in its cluster "
                            f"({', '.join(cluster)})")
    if isinstance(index, bool) or not isinstance(index, int) or \
            not 0 <= index < len(cluster[kind]):
        raise TFConfigError(f"TF_CONFIG's task index {index!r} is past its cluster's "
                            f"{len(cluster[kind])} {kind} address(es)")
    return cluster, kind, index


def make_strategy(timeout=DEFAULT_CLUSTER_TIMEOUT, log=print):
    """MultiWorkerMirroredStrategy for TF_CONFIG's cluster, once every task of it is up:
    says whom it waits for, ClusterError after timeout seconds naming the tasks that
    never came, and a SIGTERM ends it while it waits and while it trains. Make it
    before TensorFlow runs anything (collectives are set at start-up)."""
    cluster, kind, index = read_tf_config(os.environ.get("TF_CONFIG"))
    wait_for_cluster(cluster, kind, index, timeout, log)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    # Its start-up installs TensorFlow's preemption notifier, which catches SIGTERM and
    # trains on (measured: still running 683 s after one). A run is crash-safe (each
    # epoch is committed), so SIGTERM ends it, as it ends a one-process run.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return strategy


def wait_for_cluster(cluster, kind, index, timeout, log=print, poll=0.5):
    """Waits until every other task of the cluster accepts a connection on its address,
    listening on this task's own port meanwhile (the strategy's start-up waits in
    native code, holding the GIL, where no timeout or signal reaches it; this wait is
    Python's). ClusterError after timeout seconds, naming the tasks still missing."""
    own = cluster[kind][index]
    missing = {f"{k} {i} at {a}": a for k in cluster for i, a in enumerate(cluster[k])
               if (k, i) != (kind, index)}
    log(f"train: {kind} {index} ({own}): waiting up to {timeout:g} s for the cluster of "
        f"TF_CONFIG: {', '.join(missing) or 'no other task'}", flush=True)
    listener = socket.socket(socket.AF_INET6 if own.startswith("[") else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("", int(own.rpartition(":")[2])))
        listener.listen(64)
    except OSError as e:
        listener.close()
        raise ClusterError(f"cannot listen on this task's address {own} (TF_CONFIG): "
                           f"{e.strerror or e}") from None
    deadline = time.monotonic() + timeout
    try:
        while missing:
            for name, address in list(missing.items()):
                host, _, port = address.rpartition(":")
                try:
                    socket.create_connection((host.strip("[]"), int(port)), timeout=2).close()
                    del missing[name]
                except OSError:
                    pass
            if missing and time.monotonic() > deadline:
                raise ClusterError(f"TF_CONFIG's cluster did not come together in "
                                   f"{timeout:g} s: no answer from {', '.join(missing)} "
                                   "(start every task, or raise cluster_timeout: train "
                                   "--cluster_timeout)")
            if missing:
                time.sleep(poll)
    finally:
        listener.close()


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
