"""Issue 30's closing checks (slow): real-format files whose decoders can crash natively,
through every way in, and a live server under hostile and concurrent requests.

Each way in runs in its own process, so a native crash (SIGABRT, SIGSEGV) fails the
test with the file it was handling instead of taking pytest down."""
import base64
import io
import json
import os
import random
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib

import numpy as np
import pytest

from tests.conftest import make_photo

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402 (after the skip)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow


def _frames(count=3, height=24, width=32):
    return [Image.fromarray(make_photo(height, width, seed=i)) for i in range(count)]


def _save(image, **options):
    buffer = io.BytesIO()
    image.save(buffer, **options)
    return buffer.getvalue()


def _png_chunk_ends(data):
    """Byte offsets just after the signature and after each PNG chunk."""
    ends, position = [8], 8
    while position + 8 <= len(data):
        length = struct.unpack(">I", data[position:position + 4])[0]
        position += 12 + length
        ends.append(min(position, len(data)))
    return ends


def _jpeg_marker_starts(data):
    return [i for i in range(2, len(data) - 1) if data[i] == 0xFF and 0xC0 <= data[i + 1] <= 0xFE]


def real_format_corpus():
    """{name: bytes}: the container features that reach native decoders, whole and cut
    short at every chunk (PNG, APNG) or marker (JPEG), and at fixed fractions (others)."""
    frames = _frames()
    rgb16 = (make_photo(24, 32, seed=5).astype(np.uint16) * 257)
    whole = {
        "animated.webp": _save(frames[0], format="WEBP", save_all=True,
                               append_images=frames[1:], duration=100, loop=0),
        "still.webp": _save(frames[0], format="WEBP"),
        "lossless.webp": _save(frames[0], format="WEBP", lossless=True),
        "animated.png": _save(frames[0], format="PNG", save_all=True,
                              append_images=frames[1:], duration=100),
        "animated.gif": _save(frames[0], format="GIF", save_all=True,
                              append_images=frames[1:], duration=100),
        "pages.tif": _save(frames[0], format="TIFF", save_all=True, append_images=frames[1:]),
        "cmyk.jpg": _save(frames[0].convert("CMYK"), format="JPEG"),
        "gray.jpg": _save(frames[0].convert("L"), format="JPEG"),
        "progressive.jpg": _save(frames[0], format="JPEG", progressive=True),
        "icc.jpg": _save(frames[0], format="JPEG", icc_profile=b"\0" * 128),
        "gray16.png": _save(Image.fromarray(rgb16[..., 0]), format="PNG"),
        "rgba.png": _save(frames[0].convert("RGBA"), format="PNG"),
        "palette.png": _save(frames[0].convert("P"), format="PNG"),
        "bmp.bmp": _save(frames[0], format="BMP"),
    }
    corpus = dict(whole)
    for name, data in whole.items():
        stem, ext = os.path.splitext(name)
        if ext == ".png":
            cuts = _png_chunk_ends(data)[:-1]
        elif ext == ".jpg":
            cuts = _jpeg_marker_starts(data)
        else:
            cuts = sorted({len(data) * k // 8 for k in range(1, 8)})
        for cut in cuts:
            corpus[f"{stem}.cut{cut}{ext}"] = data[:cut]
    # A PNG whose IHDR claims a huge size (a decompression bomb by its header).
    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    corpus["bomb.png"] = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr +
                          struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)))
    return corpus


def _write_corpus(folder):
    os.makedirs(folder, exist_ok=True)
    corpus = real_format_corpus()
    for name, data in corpus.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
    return corpus


def _alive(result, what):
    """A finished process did not die of a signal (a native crash)."""
    assert result.returncode >= 0, f"{what} died of signal {-result.returncode}: " + \
        result.stderr[-1500:]


def test_the_corpus_has_the_formats_and_cuts():
    corpus = real_format_corpus()
    assert len(corpus) > 80 and {"animated.webp", "animated.png", "pages.tif", "cmyk.jpg",
                                 "progressive.jpg", "gray16.png"} <= set(corpus)


def test_real_formats_through_the_signatures(tiny_saved_model, tmp_path):
    folder = str(tmp_path / "corpus")
    _write_corpus(folder)
    script = (
        "import os, sys\n"
        "from colorize_tf.serving import inference\n"
        f"colorizer = inference.Colorizer({tiny_saved_model[0]!r})\n"
        f"for name in sorted(os.listdir({folder!r})):\n"
        "    print('file', name, flush=True)\n"
        f"    data = open(os.path.join({folder!r}, name), 'rb').read()\n"
        "    try:\n"
        "        colorizer.colorize_bytes([data], 0.38)\n"
        "        print('ok', flush=True)\n"
        "    except Exception as e:\n"
        "        print('refused', type(e).__name__, flush=True)\n"
        "print('done', flush=True)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                            text=True, timeout=1200, env=dict(os.environ,
                                                              TF_CPP_MIN_LOG_LEVEL="3"))
    last = [line for line in result.stdout.splitlines() if line.startswith("file ")][-1:]
    assert result.returncode == 0 and "done" in result.stdout, \
        f"died (signal {-result.returncode}) on {last}: {result.stderr[-800:]}"
    assert result.stdout.count("\nok") >= 10  # the whole files of common formats colorize


def test_real_formats_through_colorize_evaluate_and_build_records(tiny_saved_model, tmp_path):
    folder = str(tmp_path / "corpus")
    corpus = _write_corpus(folder)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")

    def run(*args):
        return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True,
                              text=True, timeout=1200, env=env)
    colorized = run("colorize_tf.colorize", folder, f"--saved_model={tiny_saved_model[0]}",
                    f"--output_dir={tmp_path / 'out'}")
    _alive(colorized, "colorize")
    assert "Traceback" not in colorized.stderr
    lines = colorized.stdout.splitlines() + colorized.stderr.splitlines()
    for name in corpus:  # each file is accounted for: colorized, or one line why not
        assert any(name in line for line in lines), name
    evaluated = run("colorize_tf.evaluate", f"--saved_model={tiny_saved_model[0]}",
                    f"--images_dir={folder}", f"--output_dir={tmp_path / 'eval'}",
                    "--num_figures=0", "--temperatures=0.38")
    _alive(evaluated, "evaluate")
    assert evaluated.returncode == 0 and "Traceback" not in evaluated.stderr
    built = run("data_prep.build_records", f"--input_dir={folder}",
                f"--output_dir={tmp_path / 'records'}", "--frame_size=32", "--workers=2",
                "--min_size=8")
    _alive(built, "build_records")
    assert built.returncode == 0 and "Traceback" not in built.stderr
    assert "imdecode" not in built.stderr + colorized.stderr  # OpenCV's own logs are quiet
    report = json.load(open(tmp_path / "records" / "report.json"))
    assert report["inputs_seen"] == len(corpus)


def _post(url, body, timeout=60):
    request = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _b64(data):
    return {"b64": base64.b64encode(data).decode()}


def hostile_bodies(corpus):
    """(name, body bytes) of requests a hostile client may send."""
    good_png = _save(_frames(1)[0], format="PNG")
    bodies = [(f"image {name}", json.dumps({"inputs": {"image_bytes": [_b64(data)],
                                                       "temperature": [0.38]}}).encode())
              for name, data in corpus.items()]
    bodies += [
        ("empty", b""), ("not json", b"{nope"), ("a list", b"[1, 2]"),
        ("deep nesting", b'{"inputs": ' + b"[" * 50000 + b"]" * 50000 + b"}"),
        ("lone surrogate", b'{"signature_name": "\\ud800", "inputs": {}}'),
        ("400 digits", b'{"inputs": {"image_bytes": [{"b64": ""}], "temperature": [' +
         b"9" * 400 + b"]}}"),
        ("infinite T", json.dumps({"inputs": {"image_bytes": [_b64(good_png)],
                                              "temperature": [1e308 * 10]}}).encode()),
        ("unknown input", json.dumps({"inputs": {"image_bytes": [_b64(good_png)],
                                                 "temperature": [0.38], "x": [1]}}).encode()),
        ("bad base64", b'{"inputs": {"image_bytes": [{"b64": "@@"}], "temperature": [1]}}'),
        ("wrong types", b'{"inputs": {"image_bytes": [1], "temperature": ["hot"]}}'),
        ("ragged", b'{"instances": [{"image_bytes": {"b64": ""}, "temperature": [1, 2]}, '
         b'{"image_bytes": {"b64": ""}, "temperature": 1}]}'),
        ("too many dimensions", b'{"inputs": {"image_bytes": ' + b"[" * 40 + b"1" +
         b"]" * 40 + b"}}"),
    ]
    return bodies


@pytest.fixture
def server_process(tiny_saved_model):
    process = subprocess.Popen(
        [sys.executable, "-m", "colorize_tf.serve", f"--model_base_path={tiny_saved_model[1]}",
         "--rest_api_port=0", "--model_name=tiny", "--max_body_bytes=1000000"], cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    line = process.stdout.readline()
    assert line.startswith("serving tiny at http://127.0.0.1:"), line
    yield line.split()[-1].rsplit("/v1/", 1)[0], process
    process.kill()
    process.wait(timeout=30)


def test_hostile_requests_against_the_live_server(server_process):
    url, process = server_process
    predict = f"{url}/v1/models/tiny:predict"
    for name, body in hostile_bodies(real_format_corpus()):
        status, answer = _post(predict, body)
        assert process.poll() is None, f"the server died on {name}"
        assert status in (200, 400, 413), (name, status, answer[:300])
        if status != 200:
            assert "error" in json.loads(answer), name
    good = _save(_frames(1)[0], format="PNG")
    status, answer = _post(predict, json.dumps({"inputs": {"image_bytes": [_b64(good)],
                                                           "temperature": [0.38]}}).encode())
    assert status == 200 and "outputs" in json.loads(answer)  # still answering
    process.terminate()
    process.wait(timeout=60)
    assert "Traceback" not in process.stderr.read()


def test_sixteen_clients_for_a_minute_good_answers_stay_correct(server_process):
    # 16 clients send a mix of good photos (each answer is checked: a PNG of the photo's
    # size) and hostile bodies for 60 s; every good request must be answered correctly.
    url, process = server_process
    predict = f"{url}/v1/models/tiny:predict"
    hostile = hostile_bodies({k: v for k, v in real_format_corpus().items()
                               if "cut" not in k})
    photos = [make_photo(20 + 4 * i, 30 + 2 * i, seed=i) for i in range(4)]
    goods = [(p.shape[:2], json.dumps({"inputs": {
        "image_bytes": [_b64(_save(Image.fromarray(p), format="PNG"))],
        "temperature": [0.38]}}).encode()) for p in photos]
    end = time.monotonic() + 60
    failures, counts = [], {"good": 0, "hostile": 0}
    lock = threading.Lock()

    def client(seed):
        rng = random.Random(seed)
        while time.monotonic() < end:
            if rng.random() < 0.5:
                shape, body = rng.choice(goods)
                status, answer = _post(predict, body)
                try:
                    png = base64.b64decode(json.loads(answer)["outputs"][
                        "colorized_png_bytes"][0]["b64"])
                    width, height = struct.unpack(">II", png[16:24])  # PNG's IHDR
                    ok = status == 200 and (height, width) == shape
                except (KeyError, ValueError, TypeError, struct.error):
                    ok = False
                with lock:
                    counts["good"] += 1
                    if not ok:
                        failures.append((status, answer[:200]))
            else:
                name, body = rng.choice(hostile)
                status, _ = _post(predict, body)
                with lock:
                    counts["hostile"] += 1
                    if status >= 500:
                        failures.append((name, status))
    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    print(f"16 clients for 60 s: {counts['good']} good requests, all answered right; "
          f"{counts['hostile']} hostile ones, none a 5xx")
    assert process.poll() is None and not failures, failures[:5]
    assert counts["good"] >= 16 and counts["hostile"] >= 16, counts
