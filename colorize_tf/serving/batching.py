"""Merging concurrent requests into one signature call, as TF Serving's batching does
(tensorflow/serving batching/batching_session.cc with a BasicBatchScheduler).

Each request is a task of `size` rows (its inputs' dim 0). A task joins the newest
open batch of the same key (servable, signature and every input's shape past dim 0)
while the batch stays within max_batch_size; a batch is run when it is full or
batch_timeout_s after its first task came, by one of num_threads worker threads: the
inputs are concatenated along dim 0, the signature runs once, and each task gets its
rows of every output. Beyond max_enqueued_batches waiting batches, a new task is
refused with UNAVAILABLE (HTTP 503), as TF Serving's queue does.

One difference, on purpose: when a batch of several tasks fails (TF Serving fails
every task of the batch), each task is run again alone, so that one bad photo gets
its error and the requests batched with it still get their answers.
"""
import collections
import concurrent.futures
import threading
import time

import numpy as np

from colorize_tf.serving import rest_api


_Task = collections.namedtuple("_Task", "inputs size future finish")


def _settle(task, run_outputs):
    """Sets task.future from run_outputs() (and task.finish), or from what it raised."""
    try:
        outputs = run_outputs()
        task.future.set_result(task.finish(outputs) if task.finish else outputs)
    except Exception as e:
        task.future.set_exception(e)


class _Batch:
    def __init__(self, key, deadline):
        self.key, self.deadline = key, deadline
        self.tasks = []  # _Task
        self.size = 0


class BatchScheduler:
    """run(key, inputs {name: array}) -> outputs {name: array} is called once per
    batch, key being what submit() was given."""

    def __init__(self, run, max_batch_size=32, batch_timeout_s=0.002,
                 max_enqueued_batches=16, num_threads=1):
        self.run = run
        self.max_batch_size = max_batch_size
        self.batch_timeout_s = batch_timeout_s
        self.max_enqueued_batches = max_enqueued_batches
        self._batches = collections.deque()
        self._cond = threading.Condition()
        self._stopped = False
        self._threads = [threading.Thread(target=self._work, daemon=True)
                         for _ in range(num_threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, key, inputs, finish=None):
        """-> concurrent.futures.Future of this task's outputs, or of finish(outputs)
        when finish is given: it runs in the batch thread (a server renders its answer
        there, saving two thread hand-offs a request) and what it raises is the task's
        error. inputs share dim 0 (the task's size); ApiError INVALID_ARGUMENT for a
        task larger than a batch or without a batch dimension, UNAVAILABLE when the
        queue is full."""
        sizes = {np.shape(v)[0] if np.ndim(v) else None for v in inputs.values()}
        if len(sizes) != 1 or None in sizes:
            raise rest_api.invalid("Batching session Run() input tensors must have equal "
                                   "0th-dimension size")
        size = sizes.pop()
        if size > self.max_batch_size:
            raise rest_api.invalid(f"Task size {size} is larger than maximum input batch "
                                   f"size {self.max_batch_size}")
        key = (key, tuple(sorted((n, np.shape(v)[1:]) for n, v in inputs.items())))
        future = concurrent.futures.Future()
        with self._cond:
            if self._stopped:
                raise rest_api.ApiError("UNAVAILABLE", "The server is shutting down")
            batch = self._open_batch(key, size)
            batch.tasks.append(_Task(inputs, size, future, finish))
            batch.size += size
            self._cond.notify()
        return future

    def _open_batch(self, key, size):
        for batch in reversed(self._batches):
            if batch.key == key:
                if batch.size + size <= self.max_batch_size:
                    return batch
                break  # only the newest batch of a key takes tasks
        if len(self._batches) >= self.max_enqueued_batches:
            raise rest_api.ApiError(
                "UNAVAILABLE", "The batch scheduling queue to which this task was "
                "submitted is full")
        batch = _Batch(key, time.monotonic() + self.batch_timeout_s)
        self._batches.append(batch)
        return batch

    def stop(self):
        """Runs what is queued, then ends the worker threads."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()

    def _next_batch(self):
        with self._cond:
            while True:
                now = time.monotonic()
                for batch in self._batches:
                    if batch.size >= self.max_batch_size or now >= batch.deadline or \
                            self._stopped:
                        self._batches.remove(batch)
                        return batch
                if self._stopped:
                    return None
                wait = self._batches[0].deadline - now if self._batches else None
                self._cond.wait(wait)

    def _work(self):
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run_batch(batch)

    def _run_batch(self, batch):
        key = batch.key[0]
        tasks = [t for t in batch.tasks if t.future.set_running_or_notify_cancel()]
        if not tasks:
            return
        try:
            inputs = {name: np.concatenate([t.inputs[name] for t in tasks])
                      for name in tasks[0].inputs}
            outputs = self.run(key, inputs)
        except Exception as e:
            if len(tasks) == 1:
                tasks[0].future.set_exception(e)
                return
            for task in tasks:  # each alone: the error goes to its task
                _settle(task, lambda: self.run(key, task.inputs))
            return
        total = sum(t.size for t in tasks)
        wrong = [n for n, v in outputs.items() if np.ndim(v) == 0 or np.shape(v)[0] != total]
        if wrong:
            error = rest_api.ApiError("INTERNAL", f"Batched output tensor {wrong[0]} does "
                                      f"not have {total} rows, one per input row")
            for task in tasks:
                task.future.set_exception(error)
            return
        bounds = np.cumsum([t.size for t in tasks])[:-1]
        parts = {name: np.split(value, bounds) for name, value in outputs.items()}
        for i, task in enumerate(tasks):
            _settle(task, lambda: {name: part[i] for name, part in parts.items()})
