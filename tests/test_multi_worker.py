"""Multi-worker training: two worker processes on 127.0.0.1 (TF_CONFIG) against one
process with the same global batch and data order."""
import csv
import json
import os
import re
import socket
import subprocess
import sys

import pytest

from colorize_tf import cli
from colorize_tf import train
from colorize_tf.training.config import ConfigError
from colorize_tf.training import trainer
from colorize_tf.training.config import TrainConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The same sums in another order (all-reduced gradients, synchronized batch norm by
# E[x^2] - E[x]^2): measured differences are below 2e-5 of the loss.
LOSS_TOLERANCE = 1e-4


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _smoke_flags(records_dir, model_dir, *extra):
    return [f"--flagfile={REPO}/colorize_tf/configs/smoke.flags",
            f"--records_dir={records_dir}", f"--model_dir={model_dir}", "--verbose=0",
            *extra]


def _train_two_workers(records_dir, model_dir, temp_dir, *extra):
    """Runs 2 workers to their end; -> their outputs (stdout + stderr)."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = []
    for index in range(2):
        env = dict(os.environ, TMPDIR=str(temp_dir), TF_CPP_MIN_LOG_LEVEL="3",
                   TF_CONFIG=json.dumps({"cluster": cluster,
                                         "task": {"type": "worker", "index": index}}))
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "colorize_tf.train", "--strategy=multi_worker",
             *_smoke_flags(records_dir, model_dir, *extra)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=240)[0])
    finally:
        for worker in workers:
            worker.kill()
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output
    return outputs


def _history(model_dir):
    with open(os.path.join(model_dir, "history.csv")) as f:
        return list(csv.DictReader(f))


def test_two_workers_train_like_one_process_and_resume(tiny_records, tmp_path):
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    multi_dir = tmp_path / "multi"
    # Epoch 1, then a second run of the same command that resumes for epoch 2.
    first = _train_two_workers(tiny_records, multi_dir, temp_dir, "--epochs=1")
    assert "epochs 1..1" in first[0] and "worker 1 of 2" in first[1]
    second = _train_two_workers(tiny_records, multi_dir, temp_dir, "--epochs=2")
    assert all("epochs 2..2" in output for output in second), second
    fingerprints = [re.search(r"weights fingerprint (\w+)", output).group(1)
                    for output in second]
    assert fingerprints[0] == fingerprints[1]
    # The chief wrote the run; the other worker's temporary folder is gone.
    assert os.path.exists(multi_dir / "checkpoints" / "last.keras")
    assert os.path.exists(multi_dir / "backup" / "state.json")
    assert list(temp_dir.iterdir()) == []

    single_dir = tmp_path / "single"
    values, _ = cli.parse(train.define_flags,
                          ["train", *_smoke_flags(tiny_records, single_dir, "--epochs=2")])
    trainer.run(TrainConfig.from_flags(values))
    multi, single = _history(multi_dir), _history(single_dir)
    assert [row["epoch"] for row in multi] == ["0", "1"]
    for m, s in zip(multi, single):
        for key in ("loss", "val_loss", "chroma_mse"):
            assert float(m[key]) == pytest.approx(float(s[key]), rel=LOSS_TOLERANCE), key
    # and a real change between epochs, so that equal curves say something
    assert float(multi[0]["loss"]) != pytest.approx(float(multi[1]["loss"]), rel=1e-3)


def test_multi_worker_refusals(tiny_records, tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    for extra, message in [((), "TF_CONFIG environment variable, which is not set"),
                           (("--nodeterministic",), "needs deterministic")]:
        values, _ = cli.parse(train.define_flags, [
            "train", "--strategy=multi_worker",
            *_smoke_flags(tiny_records, tmp_path / "run", *extra)])
        with pytest.raises(ConfigError, match=message):
            TrainConfig.from_flags(values).check()
    good = {"cluster": {"worker": ["127.0.0.1:2222", "127.0.0.1:2223"]},
            "task": {"type": "worker", "index": 1}}
    config = TrainConfig.create(records_dir=str(tiny_records), model_dir=str(tmp_path / "run"),
                                strategy="multi_worker")
    for tf_config, message in [
            ("{}", 'no "cluster" object'), ("[1, 2]", "got a list"),
            ("not json", "TF_CONFIG is not JSON"),
            (json.dumps({**good, "task": {"type": "worker", "index": 2}}),
             "task index 2 is past its cluster's 2 worker"),
            (json.dumps({**good, "task": {"type": "worker", "index": -1}}),
             "task index -1 is past its cluster's 2 worker"),
            (json.dumps({**good, "cluster": {**good["cluster"], "ps": ["h:1"]}}),
             "parameter servers"),
            (json.dumps({**good, "cluster": {"worker": ["127.0.0.1", "h:1"]}}),
             "'127.0.0.1' has no port"),
            (json.dumps({**good, "task": {"type": "chief", "index": 0}}),
             "task type 'chief' is not in its cluster"),
            (json.dumps({"cluster": good["cluster"]}), 'no "task" object')]:
        monkeypatch.setenv("TF_CONFIG", tf_config)
        with pytest.raises(ConfigError, match=re.escape(message)):
            config.check()
    monkeypatch.setenv("TF_CONFIG", json.dumps(good))
    config.check()


def test_a_worker_alone_says_whom_it_waits_for_gives_up_and_stops_on_sigterm(tiny_records,
                                                                             tmp_path):
    import signal
    import time
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_CONFIG=json.dumps(
        {"cluster": cluster, "task": {"type": "worker", "index": 0}}))

    def start(*extra):
        return subprocess.Popen(
            [sys.executable, "-m", "colorize_tf.train", "--strategy=multi_worker",
             *_smoke_flags(tiny_records, tmp_path / "run", *extra)], cwd=REPO, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    alone = start("--cluster_timeout=5")
    out, err = alone.communicate(timeout=180)
    assert alone.returncode == 1, (out, err)
    assert "waiting up to 5 s for the cluster of TF_CONFIG: worker 1 at " \
        f"127.0.0.1:{ports[1]}" in out
    assert f"did not come together in 5 s: no answer from worker 1 at 127.0.0.1:{ports[1]}" \
        in err and len(err.strip().splitlines()) == 1, err
    waiting = start()
    line = waiting.stdout.readline()  # the "waiting" line: now inside the wait
    assert "waiting up to 600 s" in line, line
    time.sleep(2)
    waiting.send_signal(signal.SIGTERM)
    start_wait = time.monotonic()
    waiting.wait(timeout=30)
    assert waiting.returncode == -signal.SIGTERM and time.monotonic() - start_wait < 30
    assert not os.path.exists(tmp_path / "run" / "checkpoints")
