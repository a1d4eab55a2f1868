"""The REST client against the local TF Serving REST server (colorize_tf.serve, whose
conformance to TF Serving tests/test_serve.py checks), and against canned answers for
what a broken server or proxy can send."""
import base64
import http.server
import json
import os
import subprocess
import sys
import re
import threading
import time

import cv2
import pytest
import tensorflow as tf

from colorize_tf import client
from tests.conftest import make_photo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def server(tiny_saved_model):
    """The local TF Serving REST server (colorize_tf.serve) on the tiny model."""
    from colorize_tf.serving import server
    with server.running_server(tiny_saved_model[1], "tiny", max_batch_size=8) as (url, _):
        yield url


def test_request_json_is_columnar_b64():
    body = client.build_request([b"\x89PNG..."], 0.38)
    assert body == {"signature_name": "serving_default",
                    "inputs": {"image_bytes": [{"b64": base64.b64encode(b"\x89PNG...").decode()}],
                               "temperature": [0.38]}}


def test_round_trip_through_rest(server, tiny_saved_model):
    url = server
    photo = cv2.imencode(".png", make_photo(21, 34, seed=2))[1].tobytes()
    (colorized, confidence), = client.predict(url, "tiny", [photo], 0.38)
    assert tf.io.decode_png(colorized).shape == (21, 34, 3)
    # The same answer as calling the SavedModel directly.
    loaded = tf.saved_model.load(tiny_saved_model[0])
    direct = loaded.signatures["serving_default"](image_bytes=tf.constant([photo]),
                                                  temperature=tf.constant([0.38]))
    assert colorized == direct["colorized_png_bytes"].numpy()[0]
    with pytest.raises(client.ServerError, match="(?s)HTTP 400: .*image_bytes is empty"):
        client.predict(url, "tiny", [b""], 0.38)


def test_cli(server, tmp_path):
    url = server
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), make_photo(16, 16, seed=1))
    result = subprocess.run(
        [sys.executable, "-m", "colorize_tf.client", f"--server={url}", "--model=tiny",
         str(photo), str(tmp_path / "missing.jpg"), f"--output_dir={tmp_path}/out",
         "--confidence"], cwd=REPO, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 1
    assert (tmp_path / "out" / "p.png").exists()
    assert (tmp_path / "out" / "p.confidence.png").exists()
    assert "missing.jpg" in result.stderr


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
GOOD = {"outputs": {"colorized_png_bytes": [{"b64": base64.b64encode(PNG).decode()}],
                    "confidence_png_bytes": [{"b64": base64.b64encode(PNG).decode()}]}}


@pytest.fixture
def canned_server():
    """Answers each request with the next canned (status, body bytes, seconds between bytes)."""
    answers = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            status, body, trickle = answers.pop(0)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                if trickle:
                    for i in range(len(body)):
                        self.wfile.write(body[i:i + 1])
                        self.wfile.flush()
                        threading.Event().wait(trickle)
                else:
                    self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", answers
    httpd.shutdown()


@pytest.mark.parametrize("status,body,message", [
    (200, b'{"outputs": {"colorized_png_bytes": [{"b64": "iVBO', "not JSON"),
    (502, b"<html><body>Bad gateway</body></html>", "HTTP 502: the answer is HTML"),
    (200, b'{"predictions": []}', 'no "outputs" object'),
    (200, json.dumps({"outputs": {"colorized_png_bytes": [{"b64": "@@@"}],
                                  "confidence_png_bytes": [{"b64": "@@@"}]}}).encode(),
     "not valid base64"),
    (200, json.dumps({"outputs": {"colorized_png_bytes": [],
                                  "confidence_png_bytes": []}}).encode(), "not a list of 1"),
    (500, b"[1, 2, 3]", "HTTP 500: [1, 2, 3]"),
    (200, b"[]", "JSON list, not an object"),
    (200, b"", "not JSON"),
])
def test_malformed_answers_are_one_line(canned_server, status, body, message):
    url, answers = canned_server
    answers.append((status, body, 0))
    with pytest.raises(client.ServerError, match=re.escape(message)):
        client.predict(url, "m", [b"x"], 0.38)


def test_a_trickling_server_is_cut_at_the_timeout(canned_server):
    url, answers = canned_server
    answers.append((200, json.dumps(GOOD).encode(), 0.3))  # one byte every 0.3 s
    start = time.monotonic()
    with pytest.raises(client.ServerError, match="took too long"):
        client.predict(url, "m", [b"x"], 0.38, timeout=1.0)
    assert time.monotonic() - start < 5.0
    # Cut by the run's --deadline (shorter than --timeout): named as such.
    answers.append((200, json.dumps(GOOD).encode(), 0.3))
    with pytest.raises(client.ServerError, match=r"took too long to answer \(--deadline\)"):
        client.predict(url, "m", [b"x"], 0.38, timeout=1.0, limit="--deadline")


def test_cli_reports_each_photo_and_goes_on(canned_server, tmp_path):
    url, answers = canned_server
    answers += [(200, b"<html>proxy</html>", 0), (200, json.dumps(GOOD).encode(), 0)]
    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(PNG)
    result = subprocess.run(
        [sys.executable, "-m", "colorize_tf.client", f"--server={url}", "--model=m",
         str(tmp_path / "a.png"), str(tmp_path / "b.png"), f"--output_dir={tmp_path}/out"],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "a.png: HTTP 200: the answer is HTML" in result.stderr
    assert "colorized 1, failed 1" in result.stdout
    assert os.listdir(tmp_path / "out") == ["b.png"]


def test_client_does_not_load_tensorflow():
    result = subprocess.run(
        [sys.executable, "-c", "import sys, colorize_tf.client; "
         "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))"],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_an_answer_of_another_size_than_the_photo_is_not_written(canned_server, tmp_path):
    url, answers = canned_server
    small = cv2.imencode(".png", make_photo(4, 4, seed=2))[1].tobytes()
    wrong = {"outputs": {"colorized_png_bytes": [{"b64": base64.b64encode(small).decode()}],
                         "confidence_png_bytes": [{"b64": base64.b64encode(small).decode()}]}}
    answers.append((200, json.dumps(wrong).encode(), 0))
    cv2.imwrite(str(tmp_path / "photo.png"), make_photo(9, 12, seed=1))
    result = subprocess.run(
        [sys.executable, "-m", "colorize_tf.client", f"--server={url}", "--model=m",
         str(tmp_path / "photo.png"), f"--output_dir={tmp_path}/out"],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "colorized photo is 4x4 px, the photo 12x9: not written" in result.stderr
    assert not os.path.exists(tmp_path / "out" / "photo.png")


def test_the_client_sends_the_shipped_models_own_temperature():
    from colorize_tf import presets
    assert client.default_temperature("effnet_general") == 0.5
    assert client.default_temperature("colorunet_landscapes") == 0.38
    assert client.default_temperature("my_model") == 0.38  # Zhang et al.'s, not known
    assert client.default_temperature(presets.default().folder) == \
        presets.default().default_temperature
