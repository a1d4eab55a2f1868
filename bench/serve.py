r"""The local server under load, next to calling the signature in-process, same run.

    python bench/serve.py [--requests=400] [--size=512] [--clients=1,4,16] [--rounds=3]
        [--saved_model=saved_models/colorunet_landscapes]
        [--server_flags="--num_batch_threads=2"]

1. In-process: the SavedModel's serving_default on one 512 px photo at a time
   (latency p50 over 100 calls): the limit the server is compared with.
2. `python -m colorize_tf.serve` started as its own process on 127.0.0.1 (batching on,
   its defaults): 100 predict requests of that photo (row format, b64) from one
   client, in turns with 1. for --rounds rounds (the medians are compared); then
   --requests requests from 1, 4 and 16 concurrent client threads, each --rounds times
   in turns: photos/s, p50 and p99 latency (medians), errors (all).
Goals: 0 errors; at 1 client the HTTP overhead (p50 over the in-process p50) <= 10%;
at 16 clients batching gives >= 1.5x the throughput of 1 client.
"""
import argparse
import base64
import concurrent.futures
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench import common  # noqa: E402
from colorize_tf.testing.fake_data import make_photo  # noqa: E402


def load_signature(saved_model):
    import tensorflow as tf
    return tf.saved_model.load(saved_model).signatures["serving_default"]


def in_process(signature, photo, repeats):
    """-> (p50 seconds, photos/s) of serving_default on one photo at a time."""
    import tensorflow as tf
    inputs = {"image_bytes": tf.constant([photo]), "temperature": tf.constant([0.38])}
    signature(**inputs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        signature(**inputs)["colorized_png_bytes"].numpy()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), repeats / sum(times)


def start_server(base_path, server_flags=()):
    """The serve CLI in its own process -> (process, base URL, model name)."""
    process = subprocess.Popen(
        # float32 like the in-process limit (bench/precision.py compares bfloat16)
        [sys.executable, "-m", "colorize_tf.serve", f"--model_base_path={base_path}",
         "--rest_api_port=0", "--precision=float32", *server_flags], cwd=common.REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    if not line.startswith("serving "):
        process.kill()
        sys.exit(f"the server did not start: {line!r}")
    return process, line.split()[-1].rsplit("/v1/", 1)[0], line.split()[1]


def load(url, name, body, requests, clients):
    """-> (photos/s, p50 s, p99 s, errors) of `requests` predictions from `clients`
    threads."""
    def one(_):
        start = time.perf_counter()
        request = urllib.request.Request(f"{url}/v1/models/{name}:predict", data=body)
        try:
            with urllib.request.urlopen(request, timeout=300) as answer:
                ok = answer.status == 200 and "predictions" in json.loads(answer.read())
        except (urllib.error.URLError, OSError, ValueError):
            ok = False
        return time.perf_counter() - start, ok
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, range(requests)))
    elapsed = time.perf_counter() - start
    latencies = np.array([t for t, _ in results])
    return (requests / elapsed, float(np.percentile(latencies, 50)),
            float(np.percentile(latencies, 99)), sum(not ok for _, ok in results))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--saved_model", default=os.path.join(
        common.REPO, "saved_models", "colorunet_landscapes"))
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server_flags", default="", help="More flags of the server, "
                        "space-separated (e.g. --num_batch_threads=2).")
    args = parser.parse_args()
    versions = sorted((d for d in os.listdir(args.saved_model) if d.isdigit()), key=int)
    photo = cv2.imencode(".jpg", make_photo(args.size, args.size, seed=3))[1].tobytes()
    signature = load_signature(os.path.join(args.saved_model, versions[-1]))
    body = json.dumps({"instances": [{"image_bytes": {"b64": base64.b64encode(
        photo).decode()}, "temperature": 0.38}]}).encode()
    process, url, name = start_server(args.saved_model, args.server_flags.split())
    try:
        # The 1-client overhead: in-process and server latencies taken in turns, three
        # rounds, medians compared (one in-process p50 moved by 2 ms from run to run).
        in_process_p50s, server_p50s, rates = [], [], {}
        for round_ in range(args.rounds):
            p50, rate = in_process(signature, photo, 100)
            in_process_p50s.append(p50)
            rates[1], p50_http, _, errors = load(url, name, body, 100, 1)
            server_p50s.append(p50_http)
            print(f"round {round_ + 1}: in-process p50 {1000 * p50:.1f} ms ({rate:.1f} "
                  f"photos/s); server, 1 client, p50 {1000 * p50_http:.1f} ms, errors "
                  f"{errors}", flush=True)
        p50, p50_http = np.median(in_process_p50s), np.median(server_p50s)
        print(f"1 client: HTTP overhead over in-process (median p50s {1000 * p50_http:.1f} "
              f"vs {1000 * p50:.1f} ms) {100 * (p50_http / p50 - 1):.1f}% (goal <= 10%)")
        # The load: each client count once per round, in turns, the median rate kept
        # (one 400-request rate moves by ~3% from run to run).
        counts = [int(c) for c in args.clients.split(",")]
        runs = {clients: [] for clients in counts}
        for round_ in range(args.rounds):
            for clients in counts:
                runs[clients].append(load(url, name, body, args.requests, clients))
        total_errors = 0
        for clients in counts:
            rate, p50_http, p99 = (np.median([r[i] for r in runs[clients]])
                                   for i in range(3))
            rates[clients] = rate
            total_errors += sum(r[3] for r in runs[clients])
            common.line(f"server, {clients} client(s), {args.requests} requests", rate,
                        "photos/s", "1 client" if clients > 1 else None,
                        rates[min(rates)] if clients > 1 else None)
            print(f"{'':<44} p50 {1000 * p50_http:.1f} ms, p99 {1000 * p99:.1f} ms "
                  f"(medians of {args.rounds}); rates "
                  f"{', '.join(f'{r[0]:.1f}' for r in runs[clients])}", flush=True)
        print(f"errors: {total_errors} (goal 0)")
        if len(rates) > 1:
            print(f"batching gain at {max(rates)} clients: "
                  f"{rates[max(rates)] / rates[min(rates)]:.2f}x (goal >= 1.5x)")
    finally:
        process.terminate()
        process.wait(60)

if __name__ == "__main__":
    main()
