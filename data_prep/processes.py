"""Data prep's worker processes: spawned (not forked: forking after TensorFlow started can
deadlock), set up by prepare.init_worker, one BLAS thread each.
"""
import multiprocessing
import os

from data_prep import prepare


# Thread counts of the BLAS libraries numpy may be built with (OpenBLAS in its wheels).
_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def worker_pool(workers):
    """A multiprocessing Pool of `workers` spawned processes set up by prepare.init_worker,
    each with one BLAS thread (the environment variables are read when numpy loads)."""
    saved = {name: os.environ.get(name) for name in _BLAS_THREADS}
    os.environ.update(dict.fromkeys(_BLAS_THREADS, "1"))
    try:
        return multiprocessing.get_context("spawn").Pool(workers, prepare.init_worker)
    finally:  # the workers have their environment; this process keeps its own
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name)
            else:
                os.environ[name] = value


class task_runner:
    """Context manager giving run(fn, tasks) -> ordered results, in-process or in a pool.

    Worker processes are spawned, not forked (forking after TensorFlow started can
    deadlock), once per build, and start at once: their start-up overlaps the caller's
    hashing of the inputs. They run prepare.py's TensorFlow-free code, so they start in
    ~0.1 s, with one thread each for numpy's BLAS and OpenCV (worker_pool).
    """

    def __init__(self, workers):
        self.workers = workers
        self.pool = None

    def __enter__(self):
        if self.workers <= 1:
            return lambda fn, tasks: map(fn, tasks)
        self.pool = worker_pool(self.workers)
        return self._run_in_pool

    def _run_in_pool(self, fn, tasks):
        # Ordered results, the tasks handed out as workers free up. (The workers start
        # in ~0.1 s: this process no longer works on tasks while it waits for them.)
        yield from self.pool.imap(fn, tasks)
        # Every task is done: the workers exit (~20 ms) while the shards are closed.
        self.pool.close()

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.terminate() if exc[0] else self.pool.close()
            self.pool.join()
