r"""The local server under a hostile load: good answers must stay correct, no 5xx, the
server must keep answering and its memory must stay bounded (issue 41's closing check).

    python bench/hostile_load.py [--seconds=60] [--clients=16]

Two servers, each its own process as users run them: the shipped landscapes model
with a realism study (its photo folder: example photos plus an animated WebP, a 0-byte
file, a truncated JPEG and a TIFF), and the shipped landscapes hints model. --clients
threads for --seconds, half of their requests hostile:
  good:    a photo to either model (the hints model with hints), checked: a PNG of the
           photo's size whose luma follows the photo's (mean |dY| <= 4 of 255); the
           study's next pair (two decodable PNGs) and its answer, each client in a
           session of its own, then the results page once its session is done;
  hostile: every file of tests/test_hostile.py's real-format corpus (animated WebPs
           and decoders' cuts) and its malformed bodies, to both models, hints of the
           wrong shape, and broken study calls (bad JSON, wrong sessions, bad trials).
Printed: requests per kind and status, the server's resident memory (VmRSS) before
the load, its peak (sampled every 0.2 s) and 10 s after; exit 1 when a good request
got a wrong answer, any request a 5xx or no answer, a server died or logged a traceback.
"""
import argparse
import base64
import collections
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench import common  # noqa: E402
from tests.test_hostile import hostile_bodies, real_format_corpus  # noqa: E402


def start_server(base_path, name, log_path, *flags):
    """The serve CLI in its own process, its log in log_path -> (process, base URL)."""
    with open(log_path, "w") as log:  # a file, not a pipe: a full pipe would stall it
        process = subprocess.Popen(
            [sys.executable, "-m", "colorize_tf.serve", f"--model_base_path={base_path}",
             f"--model_name={name}", "--rest_api_port=0", *flags], cwd=common.REPO,
            stdout=subprocess.PIPE, stderr=log, text=True)
    line = process.stdout.readline()
    if not line.startswith("serving "):
        process.kill()
        sys.exit(f"the server for {name} did not start: {line!r}")
    return process, line.split()[-1].rsplit("/v1/", 1)[0]


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def request(url, body=None, timeout=120):
    """-> (status, body bytes); status 0 when no answer came (connection or timeout)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body),
                                    timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def b64(data):
    return {"b64": base64.b64encode(data).decode("ascii")}


def luma(rgb):
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def colorized_ok(answer, photo):
    """Whether a predict answer holds a PNG of photo's size whose luma is photo's."""
    try:
        data = base64.b64decode(json.loads(answer)["outputs"]["colorized_png_bytes"][0]["b64"])
    except (ValueError, KeyError, IndexError, TypeError):
        return False
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.shape[:2] != photo.shape[:2]:
        return False
    return float(np.abs(luma(image[..., ::-1]) - luma(photo)).mean()) <= 4.0


def study_folder(folder, photos):
    """The study's photos: good ones and the bad ones the issue names."""
    os.makedirs(folder)
    for i, photo in enumerate(photos):
        cv2.imwrite(os.path.join(folder, f"good{i}.png"), photo[..., ::-1])
    corpus = real_format_corpus()
    bad = {"animated.webp": corpus["animated.webp"], "empty.jpg": b"",
           "truncated.jpg": corpus["progressive.jpg"][:len(corpus["progressive.jpg"]) // 2],
           "pages.tif": corpus["pages.tif"]}
    for name, data in bad.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--size", type=int, default=160, help="longer side of good photos")
    args = parser.parse_args()
    photos = []
    for name in sorted(os.listdir(os.path.join(common.REPO, "examples", "old_photos")))[:4] + \
            sorted(os.listdir(os.path.join(common.REPO, "examples", "kodak"))):
        folder = "old_photos" if "kodim" not in name else "kodak"
        image = cv2.imread(os.path.join(common.REPO, "examples", folder, name))[..., ::-1]
        scale = args.size / max(image.shape[:2])
        size = (max(16, round(image.shape[1] * scale)), max(16, round(image.shape[0] * scale)))
        photos.append(np.ascontiguousarray(cv2.resize(image, size,
                                                      interpolation=cv2.INTER_AREA)))
    good_bodies = [(p, json.dumps({"inputs": {"image_bytes": [b64(cv2.imencode(
        ".png", p[..., ::-1])[1].tobytes())], "temperature": [0.38]}}).encode()) for p in photos]
    hint_bodies = [(p, json.dumps({"signature_name": "colorize_with_hints", "inputs": {
        "image_bytes": [b64(cv2.imencode(".png", p[..., ::-1])[1].tobytes())],
        "temperature": [0.38], "hint_points": [[[0.5, 0.5], [0.2, 0.7]]],
        "hint_colors": [[[200, 40, 40], [30, 60, 220]]]}}).encode()) for p in photos]
    corpus = real_format_corpus()
    hostile = hostile_bodies(corpus)
    good_png = cv2.imencode(".png", photos[0][..., ::-1])[1].tobytes()
    hostile += [
        ("hints for two photos with one photo", json.dumps({
            "signature_name": "colorize_with_hints", "inputs": {
                "image_bytes": [b64(good_png)], "temperature": [0.38],
                "hint_points": [[[0.5, 0.5]], [[0.5, 0.5]]],
                "hint_colors": [[[1, 2, 3]], [[1, 2, 3]]]}}).encode()),
        ("hint outside the photo", json.dumps({
            "signature_name": "colorize_with_hints", "inputs": {
                "image_bytes": [b64(good_png)], "temperature": [0.38],
                "hint_points": [[[1.5, 0.5]]], "hint_colors": [[[1, 2, 3]]]}}).encode()),
        ("animated WebP with hints", json.dumps({
            "signature_name": "colorize_with_hints", "inputs": {
                "image_bytes": [b64(corpus["animated.webp"])], "temperature": [0.38],
                "hint_points": [[[0.5, 0.5]]], "hint_colors": [[[1, 2, 3]]]}}).encode())]
    hostile_study = [
        ("next", b"{nope"), ("next", b'{"session": 5}'), ("next", b'{"session": "a b"}'),
        ("next", b"[" * 30000), ("answer", b'{"session": "abcdefgh12", "trial": -1, '
                                           b'"chosen": "left"}'),
        ("answer", b'{"session": "abcdefgh12", "trial": 1, "chosen": "up"}'),
        ("answer", b'{"session": "abcdefgh12", "trial": 1e400, "chosen": "left"}'),
        ("answer", b'{"session": "zzzzzzzz99", "trial": 1, "chosen": "left", '
                   b'"milliseconds": -5}')]

    work = tempfile.mkdtemp(prefix="hostile-load-")
    servers = {}
    try:
        study_folder(os.path.join(work, "study"), photos)
        servers["landscapes"] = start_server(
            os.path.join(common.REPO, "saved_models", "colorunet_landscapes"), "landscapes",
            os.path.join(work, "landscapes.log"), f"--study_images={os.path.join(work, 'study')}",
            f"--study_db={os.path.join(work, 'study.sqlite')}", "--study_pairs=50")
        servers["hints"] = start_server(
            os.path.join(common.REPO, "saved_models", "colorunet_landscapes_hints"), "hints",
            os.path.join(work, "hints.log"))
        for name, (_, url) in servers.items():  # warm-up: one good request each
            status, _ = request(f"{url}/v1/models/{name}:predict",
                                (hint_bodies if name == "hints" else good_bodies)[0][1])
            if status != 200:
                sys.exit(f"warm-up request to {name} got {status}")
        time.sleep(2)
        before = {name: rss_mib(p.pid) for name, (p, _) in servers.items()}
        peak = dict(before)
        done = threading.Event()

        def sample():
            while not done.wait(0.2):
                for name, (process, _) in servers.items():
                    if process.poll() is None:
                        peak[name] = max(peak[name], rss_mib(process.pid))
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        counts = collections.Counter()
        failures = []
        lock = threading.Lock()
        end = time.monotonic() + args.seconds

        def record(kind, status, ok, what):
            with lock:
                counts[(kind, status)] += 1
                if not ok:
                    failures.append((kind, what, status))

        def client(seed):
            chooser = random.Random(seed)
            session = f"session{seed:04d}x"
            study_done = False
            land_url, hints_url = servers["landscapes"][1], servers["hints"][1]
            while time.monotonic() < end:
                roll = chooser.random()
                if roll < 0.2:
                    photo, body = chooser.choice(good_bodies)
                    status, answer = request(f"{land_url}/v1/models/landscapes:predict", body)
                    record("good predict", status, status == 200 and colorized_ok(answer, photo),
                           answer[:200])
                elif roll < 0.35:
                    photo, body = chooser.choice(hint_bodies)
                    status, answer = request(f"{hints_url}/v1/models/hints:predict", body)
                    record("good hints", status, status == 200 and colorized_ok(answer, photo),
                           answer[:200])
                elif roll < 0.5:
                    if study_done:
                        status, answer = request(f"{land_url}/study/results")
                        record("good study results", status, status == 200, answer[:200])
                        continue
                    status, answer = request(f"{land_url}/study/next",
                                             json.dumps({"session": session}).encode())
                    try:
                        trial = json.loads(answer)
                        ok = status == 200 and (trial.get("done") or all(
                            cv2.imdecode(np.frombuffer(base64.b64decode(trial[side]), np.uint8),
                                         cv2.IMREAD_COLOR) is not None
                            for side in ("left", "right")))
                    except (ValueError, KeyError, TypeError):
                        ok, trial = False, {}
                    record("good study next", status, ok, answer[:200])
                    if ok and trial.get("done"):
                        study_done = True
                    elif ok:
                        status, answer = request(f"{land_url}/study/answer", json.dumps({
                            "session": session, "trial": trial["trial"],
                            "chosen": chooser.choice(["left", "right"]),
                            "milliseconds": 900}).encode())
                        record("good study answer", status, status == 200, answer[:200])
                elif roll < 0.9:
                    name, body = chooser.choice(hostile)
                    model = chooser.choice(["landscapes", "hints"])
                    status, answer = request(
                        f"{servers[model][1]}/v1/models/{model}:predict", body)
                    # Some of the corpus are whole photos (a progressive JPEG, a 16-bit
                    # PNG): 200 is right for them; the bad ones must be a 4xx.
                    record("hostile predict", status, status in (200, 400, 413), name)
                else:
                    route, body = chooser.choice(hostile_study)
                    status, answer = request(f"{land_url}/study/{route}", body)
                    record("hostile study", status, 400 <= status < 500, body[:60])

        threads = [threading.Thread(target=client, args=(seed,)) for seed in range(args.clients)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        time.sleep(10)
        done.set()
        after = {name: rss_mib(p.pid) for name, (p, _) in servers.items()}
        alive = {name: p.poll() is None for name, (p, _) in servers.items()}
        still = {name: request(f"{url}/v1/models/{name}:predict",
                               (hint_bodies if name == "hints" else good_bodies)[0][1])[0]
                 for name, (_, url) in servers.items()}

        print(f"{args.clients} clients for {elapsed:.0f} s (asked {args.seconds:.0f} s), "
              f"{sum(counts.values())} requests:")
        for kind in sorted({k for k, _ in counts}):
            statuses = ", ".join(f"{s or 'no answer'}: {n}"
                                 for (k, s), n in sorted(counts.items()) if k == kind)
            print(f"  {kind:20s} {statuses}")
        good = sum(n for (k, _), n in counts.items() if k.startswith("good"))
        wrong = sum(1 for f in failures if f[0].startswith("good"))
        print(f"  good requests answered right: {good - wrong} of {good}")
        print(f"  5xx or no answer: "
              f"{sum(n for (_, s), n in counts.items() if s >= 500 or s == 0)}")
        for name in servers:
            print(f"  {name}: alive {alive[name]}, answers after the load: {still[name]}; "
                  f"RSS before {before[name]:.0f} MiB, peak {peak[name]:.0f} MiB, "
                  f"10 s after {after[name]:.0f} MiB")
        for failure in failures[:10]:
            print(f"  FAILED {failure}")
        tracebacks = []
        for name in servers:
            with open(os.path.join(work, f"{name}.log"), errors="replace") as f:
                log = f.read()
            if "Traceback" in log:
                tracebacks.append(name)
                print(f"  the {name} server's log holds a traceback:\n{log[-2000:]}")
        ok = not failures and not tracebacks and all(alive.values()) and \
            all(s == 200 for s in still.values())
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        for process, _ in servers.values():
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
