"""The local server's process side: the versions it loads and polls, the batching of
concurrent requests, the listening socket, uvicorn until a signal, and the server in a
thread for tests and benchmarks. serve.py turns flags into these calls.
"""
import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
import time

from colorize_tf import errors
from colorize_tf.serving import app
from colorize_tf.serving import batching
from colorize_tf.serving import servables
from colorize_tf.serving import study_routes

# --num_batch_threads=0: one per core, at most this many (each batch in flight holds its
# decoded photos, so a large machine does not hold one batch per core of them).
MAX_DEFAULT_BATCH_THREADS = 8

log = logging.getLogger("colorize_tf.serve")


class ListenError(errors.Error):
    """The address or port cannot be listened on."""


def batch_threads(num_batch_threads):
    """--num_batch_threads -> threads: 0 is one per CPU core this process may run on, at
    most MAX_DEFAULT_BATCH_THREADS.

    TF Serving's batching guide, "CPU-only: One Approach", starts from num_batch_threads
    equal to the number of cores with batch_timeout_micros 0: while one batch waits on a
    single-threaded op (PNG encoding, ~9 ms of a 512 px photo), another keeps the other
    core busy. Measured with bench/serve.py on 2 cores, 16 clients: 55.6-55.8 photos/s
    with 2 threads, 52.8-53.9 with 1."""
    if num_batch_threads:
        return num_batch_threads
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # no sched_getaffinity (macOS)
        cores = os.cpu_count() or 1
    return min(cores, MAX_DEFAULT_BATCH_THREADS)


def make_scheduler(max_batch_size, batch_timeout_micros=0, max_enqueued_batches=16,
                   num_batch_threads=0):
    """A batching.BatchScheduler calling servables; None for max_batch_size 0.
    num_batch_threads: as batch_threads() takes it."""
    if not max_batch_size:
        return None
    return batching.BatchScheduler(
        lambda key, inputs: key[0].predict(key[1], inputs), max_batch_size,
        batch_timeout_micros / 1e6, max_enqueued_batches, batch_threads(num_batch_threads))


def listen(host, port):
    """A bound listening socket (port 0: a free one)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        raise ListenError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(128)
    return sock


def poll_forever(versions, seconds, stop):
    """Looks for new versions every `seconds` until stop is set."""
    while not stop.wait(seconds):
        try:
            versions.poll()
        except Exception as e:  # a bad look at the folder must not stop the polling
            log.error("polling %s failed: %s", versions.base_path, e)


def start_versions(name, base_path):
    """ModelVersions with whatever is complete at start-up loaded (two looks 0.2 s
    apart: a version still being copied waits for a later poll)."""
    versions = servables.ModelVersions(name, base_path)
    versions.poll()
    time.sleep(0.2)
    versions.poll()
    if not versions.status:
        log.warning("no complete version of %s under %s yet; polling", name, base_path)
    return versions


@contextlib.contextmanager
def running_server(base_path, name, max_body_bytes=app.DEFAULT_MAX_BODY_BYTES, study=None,
                   **batching):
    """The server in a thread of this process on a free 127.0.0.1 port, for tests and
    benchmarks: yields (base URL, servables.ModelVersions); polling is left to the
    caller (versions.poll()). batching: make_scheduler's arguments (none: no batching);
    study: study_routes.make_study's arguments but the versions, as a dict."""
    import uvicorn
    versions = start_versions(name, base_path)
    sock = listen("127.0.0.1", 0)
    scheduler = make_scheduler(**batching) if batching else None
    study = study_routes.make_study(versions, **study) if study else None
    server = uvicorn.Server(uvicorn.Config(app.create_app(versions, max_body_bytes, scheduler,
                                                          study),
                                           log_level="warning", access_log=False,
                                           lifespan="off"))
    thread = threading.Thread(target=asyncio.run, args=(server.serve(sockets=[sock]),),
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", versions
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
        if scheduler:
            scheduler.stop()


def serve_until_signal(config, sock):
    """Runs uvicorn on sock. SIGTERM or Ctrl-C: stop taking connections, let the
    requests in flight finish (up to the config's graceful timeout), return; a second
    signal stops at once. (uvicorn's own handling re-raises the signal after the
    shutdown, so the exit status would say "killed".)"""
    import uvicorn

    class GracefulServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):
            def stop(signum, frame):
                if self.should_exit:
                    self.force_exit = True
                self.should_exit = True
            previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for s, handler in previous.items():
                    signal.signal(s, handler)

    asyncio.run(GracefulServer(config).serve(sockets=[sock]))
