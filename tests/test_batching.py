import threading
import time

import numpy as np
import pytest

from colorize_tf.serving import batching
from colorize_tf.serving import rest_api


class Recorder:
    """A signature stand-in: doubles x, fails on a negative value, records each call."""

    def __init__(self, gate=None):
        self.calls, self.gate = [], gate

    def __call__(self, key, inputs):
        self.calls.append((key, inputs["x"].shape[0]))
        if self.gate is not None:
            self.gate.wait(10)
        if (inputs["x"] < 0).any():
            raise rest_api.invalid("negative input")
        return {"y": inputs["x"] * 2, "n": np.full(inputs["x"].shape[0], inputs["x"].shape[0])}


def test_concurrent_tasks_share_one_call_and_get_their_own_rows():
    run = Recorder()
    scheduler = batching.BatchScheduler(run, max_batch_size=8, batch_timeout_s=0.3)
    futures = [scheduler.submit("m", {"x": np.array([[i, i]] * rows, np.float32)})
               for i, rows in enumerate([1, 2, 1])]
    results = [f.result(10) for f in futures]
    scheduler.stop()
    assert run.calls == [("m", 4)]
    np.testing.assert_array_equal(results[1]["y"], [[2, 2], [2, 2]])
    np.testing.assert_array_equal(results[2]["y"], [[4, 4]])
    assert [r["n"].tolist() for r in results] == [[4], [4, 4], [4]]


def test_a_full_batch_runs_without_waiting_for_the_timeout():
    run = Recorder()
    scheduler = batching.BatchScheduler(run, max_batch_size=2, batch_timeout_s=30)
    start = time.monotonic()
    futures = [scheduler.submit("m", {"x": np.ones((1, 1))}) for _ in range(2)]
    [f.result(10) for f in futures]
    assert time.monotonic() - start < 5
    scheduler.stop()


def test_keys_and_shapes_make_separate_batches_and_large_tasks_are_refused():
    run = Recorder()
    scheduler = batching.BatchScheduler(run, max_batch_size=4, batch_timeout_s=0.2)
    futures = [scheduler.submit("a", {"x": np.ones((1, 2))}),
               scheduler.submit("a", {"x": np.ones((1, 3))}),
               scheduler.submit("b", {"x": np.ones((1, 2))})]
    [f.result(10) for f in futures]
    assert sorted(size for _, size in run.calls) == [1, 1, 1]
    with pytest.raises(rest_api.ApiError, match="larger than maximum input batch size 4"):
        scheduler.submit("a", {"x": np.ones((5, 2))})
    with pytest.raises(rest_api.ApiError, match="equal 0th-dimension"):
        scheduler.submit("a", {"x": np.ones((1, 2)), "z": np.ones(2)})
    scheduler.stop()


def test_one_bad_task_fails_alone():
    run = Recorder()
    scheduler = batching.BatchScheduler(run, max_batch_size=8, batch_timeout_s=0.3)
    good = scheduler.submit("m", {"x": np.array([[1.0]])})
    bad = scheduler.submit("m", {"x": np.array([[-1.0]])})
    np.testing.assert_array_equal(good.result(10)["y"], [[2.0]])
    with pytest.raises(rest_api.ApiError, match="negative input"):
        bad.result(10)
    scheduler.stop()


def test_finish_turns_each_tasks_rows_into_its_result_in_the_batch_thread():
    run = Recorder()
    scheduler = batching.BatchScheduler(run, max_batch_size=8, batch_timeout_s=0.3)
    threads = []

    def total(outputs):
        threads.append(threading.current_thread())
        if outputs["y"].sum() > 100:
            raise ValueError("too large to render")
        return float(outputs["y"].sum())

    futures = [scheduler.submit("m", {"x": np.array(rows, np.float32)}, finish=total)
               for rows in ([[1.0]], [[2.0], [3.0]], [[60.0]])]
    assert futures[0].result(10) == 2.0 and futures[1].result(10) == 10.0
    with pytest.raises(ValueError, match="too large to render"):
        futures[2].result(10)
    scheduler.stop()
    assert run.calls == [("m", 4)]  # one call for the three; each finished on its rows
    assert set(threads) == set(scheduler._threads)


def test_a_full_queue_answers_unavailable():
    gate = threading.Event()
    run = Recorder(gate)
    scheduler = batching.BatchScheduler(run, max_batch_size=1, batch_timeout_s=0,
                                        max_enqueued_batches=1)
    first = scheduler.submit("m", {"x": np.ones((1, 1))})
    while not run.calls:  # the worker holds the first batch
        time.sleep(0.01)
    second = scheduler.submit("m", {"x": np.ones((1, 1))})  # waits in the queue
    with pytest.raises(rest_api.ApiError) as e:
        scheduler.submit("m", {"x": np.ones((1, 1))})
    assert e.value.code == "UNAVAILABLE" and e.value.http_status == 503
    gate.set()
    first.result(10), second.result(10)
    scheduler.stop()


def test_batch_threads_run_batches_at_the_same_time():
    # Two full batches, each waiting for the other inside the call: only two worker
    # threads can finish them.
    both_running = threading.Barrier(2)

    def run(key, inputs):
        both_running.wait(3)  # the 1-thread case waits this long, then fails
        return {"y": inputs["x"]}

    for threads, expected in [(2, True), (1, False)]:
        both_running.reset()
        scheduler = batching.BatchScheduler(run, max_batch_size=1, batch_timeout_s=0,
                                            num_threads=threads)
        futures = [scheduler.submit("m", {"x": np.ones((1, 1))}) for _ in range(2)]
        done = [f.exception(15) is None for f in futures]
        scheduler.stop()
        assert all(done) is expected, (threads, done)
