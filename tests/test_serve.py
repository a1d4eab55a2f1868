"""The local server against TF Serving's REST API, over real HTTP on 127.0.0.1.

What each test checks, and where TF Serving says so (tensorflow/serving):
- status and metadata documents: g3doc/api_rest.md ("Model status API", "Model
  Metadata API"); model_servers/http_rest_api_util.cc (ToJsonString: every field
  printed, proto field names kept in metadata; the signature_def map nested under
  metadata.signature_def);
- predict: util/json_tensor.cc (row and columnar formats, {"b64"} inputs, "_bytes"
  outputs base64-encoded, "predictions" vs "outputs");
- errors: {"error": message} (api_rest.md) with model_servers/http_server.cc's
  ToHTTPStatusCode (InvalidArgument 400, NotFound 404);
- versions: the file-system storage path source polls for integer-named folders and
  the "latest" version policy serves the highest one (api_rest.md, serving_config.md).
"""
import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest
import tensorflow as tf

from colorize_tf.serving.server import batch_threads, running_server
from colorize_tf.testing.fake_data import make_photo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def call(url, body=None, method=None):
    """-> (HTTP status, parsed JSON body)."""
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def png(seed=0, height=21, width=34):
    return cv2.imencode(".png", make_photo(height, width, seed=seed))[1].tobytes()


def b64(data):
    return {"b64": base64.b64encode(data).decode()}


@pytest.fixture(scope="module")
def model_base(tiny_saved_model, tmp_path_factory):
    """A base path holding the tiny model as version 1."""
    base = tmp_path_factory.mktemp("served") / "tiny"
    shutil.copytree(tiny_saved_model[0], base / "1")
    return str(base)


@pytest.fixture(scope="module")
def server(model_base):
    """The server as the CLI starts it: batching on."""
    with running_server(model_base, "tiny", max_body_bytes=200_000,
                                     max_batch_size=8, batch_timeout_micros=50_000) as (url, _):
        yield url


def test_model_status(server):
    expected = {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                          "status": {"error_code": "OK", "error_message": ""}}]}
    assert call(f"{server}/v1/models/tiny") == (200, expected)
    assert call(f"{server}/v1/models/tiny/versions/1") == (200, expected)
    status, body = call(f"{server}/v1/models/tiny/versions/9")
    assert status == 404 and "version 9" in body["error"]
    status, body = call(f"{server}/v1/models/other")
    assert status == 404 and body == {"error": "Could not find any versions of model other"}


def test_metadata_is_the_signature_def_map(server, tiny_saved_model):
    status, body = call(f"{server}/v1/models/tiny/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": "tiny", "version": "1", "signature_name": ""}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    inputs = signatures["serving_default"]["inputs"]
    assert inputs["image_bytes"]["dtype"] == "DT_STRING"
    assert inputs["temperature"]["tensor_shape"]["dim"] == [{"size": "-1", "name": ""}]
    assert signatures["serving_default"]["method_name"] == "tensorflow/serving/predict"
    assert set(signatures) == set(tf.saved_model.load(tiny_saved_model[0]).signatures) | \
        {"__saved_model_init_op"}


def test_predict_row_and_columnar_equal_the_signature(server, tiny_saved_model):
    photos = [png(1), png(2)]
    signature = tf.saved_model.load(tiny_saved_model[0]).signatures["serving_default"]
    direct = signature(image_bytes=tf.constant(photos), temperature=tf.constant([0.38, 0.2]))
    expected = [v.numpy().tolist() for v in (direct["colorized_png_bytes"],
                                             direct["confidence_png_bytes"])]
    status, body = call(f"{server}/v1/models/tiny:predict", {"instances": [
        {"image_bytes": b64(photos[0]), "temperature": 0.38},
        {"image_bytes": b64(photos[1]), "temperature": 0.2}]})
    assert status == 200 and len(body["predictions"]) == 2
    for i, item in enumerate(body["predictions"]):
        assert base64.b64decode(item["colorized_png_bytes"]["b64"]) == expected[0][i]
        assert base64.b64decode(item["confidence_png_bytes"]["b64"]) == expected[1][i]
    status, body = call(f"{server}/v1/models/tiny/versions/1:predict", {
        "signature_name": "serving_default",
        "inputs": {"image_bytes": [b64(p) for p in photos], "temperature": [0.38, 0.2]}})
    assert status == 200
    assert [base64.b64decode(v["b64"]) for v in body["outputs"]["colorized_png_bytes"]] == \
        expected[0]


def test_one_temperature_for_several_photos(server, tiny_saved_model):
    # The signatures take one temperature for all photos; the batching layer merges
    # requests along dim 0, so the server gives each photo its copy.
    photos = [png(1), png(2), png(3)]
    signature = tf.saved_model.load(tiny_saved_model[0]).signatures["serving_default"]
    direct = signature(image_bytes=tf.constant(photos), temperature=tf.constant([0.3]))
    status, body = call(f"{server}/v1/models/tiny:predict", {
        "inputs": {"image_bytes": [b64(p) for p in photos], "temperature": [0.3]}})
    assert status == 200, body
    assert [base64.b64decode(v["b64"]) for v in body["outputs"]["colorized_png_bytes"]] == \
        direct["colorized_png_bytes"].numpy().tolist()


@pytest.mark.parametrize("path,body,code,message", [
    ("/v1/models/tiny:predict", b"{nope", 400, "JSON Parse error"),
    ("/v1/models/tiny:predict", b"", 400, "The document is empty"),
    ("/v1/models/tiny:predict", {"signature_name": "nope", "instances": [1]}, 400,
     'Serving signature name: "nope" not found'),
    ("/v1/models/tiny:predict", {"instances": [{"image_bytes": {"b64": "%%"},
                                                "temperature": 0.38}]}, 400,
     "Unable to base64 decode"),
    ("/v1/models/tiny:predict", {"instances": [{"image_bytes": b64(png()),
                                                "temperature": 0.0}]}, 400, "temperature"),
    ("/v1/models/tiny:predict", {"instances": [{"image_bytes": b64(png()),
                                                "temperature": float("nan")}]}, 400,
     "temperature"),
    ("/v1/models/tiny:predict", {"instances": [{"image_bytes": b64(b"not a photo"),
                                                "temperature": 0.38}]}, 400, ""),
    # Non-finite temperatures (JSON's Infinity, or 1e999, which parses as infinity) gave
    # flat photos: refused, as everywhere a temperature enters.
    ("/v1/models/tiny:predict", {"instances": [{"image_bytes": b64(png()),
                                                "temperature": float("inf")}]}, 400,
     "temperature must be a finite number of at least 0.001 (e.g. 0.38), got inf"),
    ("/v1/models/tiny:predict", b'{"inputs": {"image_bytes": [{"b64": "%s"}], '
     b'"temperature": [1e999]}}' % base64.b64encode(png()), 400,
     "temperature must be a finite number of at least 0.001 (e.g. 0.38), got inf"),
    # An input the signature does not have is refused, as TF Serving does.
    ("/v1/models/tiny:predict", {"inputs": {"image_bytes": [b64(png())], "temperature": [0.4],
                                            "tempreature": [0.2]}}, 400,
     "Input tensor alias not found in signature: tempreature. Inputs expected to be in "
     "the set {image_bytes,temperature}."),
    ("/v1/models/tiny/versions/4:predict", {"instances": [1]}, 404,
     "Servable not found for request: Specific(tiny, 4)"),
    ("/v1/models/nope:predict", {"instances": [1]}, 404,
     "Servable not found for request: Latest(nope)"),
    ("/v1/models/tiny:predict", b"x" * 200_001, 413, "over 200000 bytes"),
    ("/v2/anything", None, 404, "Malformed request"),
])
def test_bad_requests_get_tf_serving_errors_and_the_server_goes_on(server, path, body, code,
                                                                   message):
    status, answer = call(server + path, body, method="POST" if body is not None else "GET")
    assert status == code and set(answer) == {"error"} and message in answer["error"]
    assert call(f"{server}/v1/models/tiny")[0] == 200


def test_concurrent_requests_are_batched_and_each_gets_its_answer(server, tiny_saved_model):
    # 6 clients at once, one bad photo among them: merged into batches (50 ms window),
    # each answer equals the signature's for that photo alone, the bad one gets 400.
    signature = tf.saved_model.load(tiny_saved_model[0]).signatures["serving_default"]
    photos = [png(seed, 16 + seed, 20) for seed in range(5)] + [b"not a photo"]
    answers = [None] * len(photos)

    def ask(i):
        answers[i] = call(f"{server}/v1/models/tiny:predict", {"instances": [
            {"image_bytes": b64(photos[i]), "temperature": 0.38}]})
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(photos))]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    for photo, (status, body) in zip(photos[:-1], answers[:-1]):
        direct = signature(image_bytes=tf.constant([photo]), temperature=tf.constant([0.38]))
        assert status == 200
        assert base64.b64decode(body["predictions"][0]["colorized_png_bytes"]["b64"]) == \
            direct["colorized_png_bytes"].numpy()[0]
    assert answers[-1][0] == 400


def test_client_cli_against_the_local_server(server, tmp_path):
    photo = tmp_path / "p.png"
    photo.write_bytes(png(3, 16, 16))
    result = subprocess.run(
        [sys.executable, "-m", "colorize_tf.client", f"--server={server}", "--model=tiny",
         str(photo), f"--output_dir={tmp_path}/out"], cwd=REPO, capture_output=True,
        text=True, timeout=120, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr
    assert tf.io.decode_png((tmp_path / "out" / "p.png").read_bytes()).shape == (16, 16, 3)


def test_versions_load_newest_unload_older_and_survive_a_bad_one(tiny_saved_model, tmp_path):
    base = tmp_path / "m"
    shutil.copytree(tiny_saved_model[0], base / "1")
    with running_server(str(base), "m") as (url, versions):
        # A copy in progress (saved_model.pb only so far) is never loaded.
        (base / "2").mkdir()
        shutil.copy(os.path.join(tiny_saved_model[0], "saved_model.pb"), base / "2")
        versions.poll()
        versions.poll()
        assert [v["version"] for v in call(f"{url}/v1/models/m")[1]["model_version_status"]] \
            == ["1"]
        # Complete and unchanged over two polls: loaded, then version 1 unloaded.
        shutil.rmtree(base / "2")
        shutil.copytree(tiny_saved_model[0], base / "2")
        versions.poll()
        assert versions.poll() == [2]
        states = {s["version"]: s["state"] for s in
                  call(f"{url}/v1/models/m")[1]["model_version_status"]}
        assert states == {"2": "AVAILABLE", "1": "END"}
        assert call(f"{url}/v1/models/m/metadata")[1]["model_spec"]["version"] == "2"
        # A broken version 3: reported, and version 2 keeps serving.
        shutil.copytree(tiny_saved_model[0], base / "3")
        (base / "3" / "saved_model.pb").write_bytes(b"broken")
        versions.poll()
        assert versions.poll() == []
        status = {s["version"]: s for s in
                  call(f"{url}/v1/models/m")[1]["model_version_status"]}
        assert status["3"]["state"] == "END" and status["3"]["status"]["error_code"] != "OK"
        assert status["2"]["state"] == "AVAILABLE"
        code, body = call(f"{url}/v1/models/m:predict", {"instances": [
            {"image_bytes": b64(png()), "temperature": 0.38}]})
        assert code == 200 and len(body["predictions"]) == 1


def test_a_malformed_version_is_skipped_and_removing_the_served_one_falls_back_once(
        tiny_saved_model, tmp_path, caplog):
    import logging
    base = tmp_path / "m"
    shutil.copytree(tiny_saved_model[0], base / "1")
    # Version 2's shard has a malformed name: skipped with one log line; it must not
    # stop version 3 from loading (it stopped every later version).
    shutil.copytree(tiny_saved_model[0], base / "2")
    shard = next((base / "2" / "variables").glob("variables.data-*"))
    shard.rename(shard.parent / "variables.data-00000-of-0000x")
    with caplog.at_level(logging.WARNING, logger="colorize_tf.serve"):
        with running_server(str(base), "m") as (url, versions):
            versions.poll()
            versions.poll()
            assert call(f"{url}/v1/models/m/metadata")[1]["model_spec"]["version"] == "1"
            shutil.copytree(tiny_saved_model[0], base / "3")
            versions.poll()
            assert versions.poll() == [3]
            # The served version's folder is removed: version 1, the newest present,
            # is loaded once and serves; later polls load nothing.
            shutil.rmtree(base / "3")
            loads = [versions.poll() for _ in range(4)]
            assert loads[:2] in ([[1], []], [[], [1]]) and loads[2:] == [[], []], loads
            assert call(f"{url}/v1/models/m/metadata")[1]["model_spec"]["version"] == "1"
            code, body = call(f"{url}/v1/models/m:predict", {"instances": [
                {"image_bytes": b64(png()), "temperature": 0.38}]})
            assert code == 200
    skipped = [r.getMessage() for r in caplog.records if "is skipped" in r.getMessage()]
    assert skipped == ["version 2 of m is skipped: a malformed shard name, "
                       "variables/variables.data-00000-of-0000x"], skipped


def test_cli_prints_the_port_and_stops_cleanly_on_sigterm_after_requests_in_flight(
        model_base):
    process = subprocess.Popen(
        [sys.executable, "-m", "colorize_tf.serve", f"--model_base_path={model_base}",
         "--rest_api_port=0"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    try:
        line = process.stdout.readline()
        assert line.startswith("serving tiny at http://127.0.0.1:"), line
        url = line.split()[-1].rsplit("/v1/", 1)[0]
        assert call(f"{url}/v1/models/tiny")[0] == 200
        # A request in flight when SIGTERM comes (32 photos of 2 Mpx: seconds of work,
        # against the second it is given to arrive) still gets its answer.
        photos = [{"image_bytes": b64(png(seed % 4, 1200, 1600)), "temperature": 0.38}
                  for seed in range(32)]
        answers = []
        request = threading.Thread(target=lambda: answers.append(call(
            f"{url}/v1/models/tiny:predict", {"instances": photos})))
        request.start()
        request.join(timeout=1.0)
        assert request.is_alive(), "the request ended before the signal; make it longer"
        process.send_signal(signal.SIGTERM)
        request.join(timeout=120)
        assert process.wait(timeout=60) == 0
        assert answers and answers[0][0] == 200 and len(answers[0][1]["predictions"]) == 32
        log = process.stderr.read()
        assert "GET /v1/models/tiny 200" in log and "POST /v1/models/tiny:predict 200" in log
        assert "serve: precision: " in log  # the choice of arithmetic is logged
        assert "batch thread(s)" in log
    finally:
        process.kill()


@pytest.mark.parametrize("args,message", [
    (["--model_base_path=/nonexistent/x"], "is not a folder"),
    (["--rest_api_port=70000", "--model_base_path=."], "--rest_api_port must be"),
    (["--model_base_path=.", "--model_name=a/b"], "--model_name must be"),
    (["--model_base_path=.", "--precision=float16"], "flag --precision=float16"),
    (["--model_base_path=.", "--nope"], "Unknown command line flag 'nope'"),
    (["--model_base_path=.", "--num_batch_threads=-1"], "--num_batch_threads must be >= 0"),
    (["--model_base_path=.", "--study_images=.", "--study_db=."],
     "--study_db . is a folder; name the SQLite file"),
    (["--model_base_path=.", "--study_images=.", "--study_temperature=1e39"],
     "--study_temperature must be a finite number of at least 0.001"),
])
def test_bad_flags_are_one_line(args, message):
    result = subprocess.run([sys.executable, "-m", "colorize_tf.serve", *args], cwd=REPO,
                            capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


# --- The same checks against the local server and, with TF_SERVING_URL set, a real TF
# Serving serving saved_models/colorunet_landscapes (README: the docker run command). -----

SHIPPED = "colorunet_landscapes"


@pytest.fixture(scope="module", params=["local", "tf_serving"])
def either_server(request):
    if request.param == "tf_serving":
        url = os.environ.get("TF_SERVING_URL")
        if not url:
            pytest.skip("TF_SERVING_URL is not set (a TF Serving serving "
                        "saved_models/colorunet_landscapes as colorunet_landscapes)")
        yield url.rstrip("/")
        return
    with running_server(os.path.join(REPO, "saved_models", SHIPPED), SHIPPED,
                                     max_batch_size=8) as (url, _):
        yield url


def test_conformance_status_and_metadata(either_server):
    status, body = call(f"{either_server}/v1/models/{SHIPPED}")
    assert status == 200
    newest = body["model_version_status"][0]
    assert newest["state"] == "AVAILABLE" and newest["status"]["error_code"] == "OK"
    status, body = call(f"{either_server}/v1/models/{SHIPPED}/metadata")
    assert status == 200 and body["model_spec"]["name"] == SHIPPED
    default = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert set(default["inputs"]) == {"image_bytes", "temperature"}
    assert set(default["outputs"]) == {"colorized_png_bytes", "confidence_png_bytes"}


def test_conformance_predict_both_formats(either_server):
    photo = png(4, 24, 30)
    status, row = call(f"{either_server}/v1/models/{SHIPPED}:predict", {"instances": [
        {"image_bytes": b64(photo), "temperature": 0.38}]})
    assert status == 200 and set(row) == {"predictions"}
    status, columnar = call(f"{either_server}/v1/models/{SHIPPED}:predict", {
        "inputs": {"image_bytes": [b64(photo)], "temperature": [0.38]}})
    assert status == 200 and set(columnar) == {"outputs"}
    assert row["predictions"][0]["colorized_png_bytes"] == \
        columnar["outputs"]["colorized_png_bytes"][0]
    decoded = tf.io.decode_png(base64.b64decode(
        row["predictions"][0]["colorized_png_bytes"]["b64"]))
    assert decoded.shape == (24, 30, 3)


@pytest.mark.parametrize("path,body,code", [
    (f"/v1/models/{SHIPPED}:predict", b"{nope", 400),
    (f"/v1/models/{SHIPPED}:predict", {"signature_name": "nope", "instances": [1]}, 400),
    (f"/v1/models/{SHIPPED}:predict", {"inputs": {"image_bytes": [{"b64": "%%"}],
                                                  "temperature": [0.38]}}, 400),
    (f"/v1/models/{SHIPPED}:predict", {"inputs": {"image_bytes": [b64(b"no photo")],
                                                  "temperature": [0.38]}}, 400),
    (f"/v1/models/{SHIPPED}/versions/99:predict", {"instances": [1]}, 404),
    ("/v1/models/no_such_model:predict", {"instances": [1]}, 404),
    ("/v1/models/no_such_model", None, 404),
])
def test_conformance_errors(either_server, path, body, code):
    status, answer = call(either_server + path, body,
                          method="POST" if body is not None else "GET")
    assert status == code and set(answer) == {"error"} and answer["error"]


# --- The web page ---------------------------------------------------------------------

def test_page_is_served_with_the_model_and_its_temperatures(server):
    with urllib.request.urlopen(f"{server}/", timeout=30) as answer:
        assert answer.status == 200 and answer.headers["content-type"].startswith("text/html")
        html = answer.read().decode()
    config = json.loads(html.split("const CONFIG = ", 1)[1].split(";\n", 1)[0])
    assert config["model"] == "tiny" and config["default_temperature"] in config["temperatures"]
    assert config["max_body_bytes"] == 200_000
    assert "http://" not in html.replace("http://www.w3.org", "")  # nothing from elsewhere


CHROMIUM = "/usr/bin/chromium"


@contextlib.contextmanager
def browser_page(base_path, name, tmp_path, **server_flags):
    """(server url, a Chromium page, the screenshot folder: $COLORIZE_TF_ARTIFACTS or
    the test's temp folder) for the local server on base_path; skips without
    Playwright or the system's Chromium."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no browser at {CHROMIUM}: apt-get install -y chromium")
    artifacts = os.environ.get("COLORIZE_TF_ARTIFACTS", str(tmp_path))
    os.makedirs(artifacts, exist_ok=True)
    with running_server(base_path, name, **server_flags) as (url, _), \
            sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            yield url, browser.new_page(), artifacts
        finally:
            browser.close()


def upload(page, url, photo):
    """Opens the page, uploads photo and waits for its result; -> the list that the
    page's POST requests go on collecting."""
    posts = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" else None)
    page.goto(url + "/")
    page.set_input_files("#files", str(photo))
    page.wait_for_selector(".card .after[src^='data:image/png']", timeout=60_000)
    return posts


def test_page_in_a_real_browser(model_base, tmp_path):
    """Upload a photo, see the colour result, move the temperature slider (the image
    changes, nothing is sent again), toggle the confidence overlay. Screenshots go to
    $COLORIZE_TF_ARTIFACTS (default: the test's temp folder)."""
    photo = tmp_path / "street.png"
    photo.write_bytes(png(5, 48, 64))
    with browser_page(model_base, "tiny", tmp_path, max_batch_size=8) as (url, page,
                                                                          artifacts):
        posts = upload(page, url, photo)
        first = page.get_attribute(".after", "src")
        assert page.locator(".hint-color").count() == 0  # a model without hints
        assert page.text_content(".temperature-value") == "0.38"
        page.screenshot(path=os.path.join(artifacts, "page_result.png"))
        page.eval_on_selector(".temperature", "e => { e.value = 0; "
                              "e.dispatchEvent(new Event('input')); }")
        assert page.text_content(".temperature-value") == "0.10"
        assert page.get_attribute(".after", "src") != first
        assert [r.url for r in posts] == [f"{url}/v1/models/tiny:predict"]  # slider: none
        assert not page.is_visible(".confidence")
        page.check(".overlay")
        assert page.is_visible(".confidence")
        assert page.get_attribute(".download", "download") == "street.colorized.png"
        page.screenshot(path=os.path.join(artifacts, "page_confidence.png"))


def test_page_places_colour_hints_in_a_real_browser(hints_saved_model, tmp_path):
    """With a hints model: click the photo with a picked colour, the page colorizes it
    again through colorize_with_hints and the result changes; a model without hints
    shows no hint controls (test_page_in_a_real_browser's page has none)."""
    photo = tmp_path / "gray.png"
    photo.write_bytes(cv2.imencode(".png", np.full((64, 64, 3), 128, np.uint8))[1].tobytes())
    with browser_page(os.path.dirname(hints_saved_model), "hints", tmp_path) as (
            url, page, artifacts):
        posts = upload(page, url, photo)
        before = page.get_attribute(".after", "src")
        page.eval_on_selector(".hint-color", "e => { e.value = '#1e1ee6'; }")
        page.click(".compare", position={"x": 40, "y": 40})
        page.wait_for_function("document.querySelector('.hint-status').textContent "
                               "=== '1 hint'", timeout=60_000)
        assert page.get_attribute(".after", "src") != before
        assert page.locator(".hint-dot").count() == 1
        sent = json.loads(posts[-1].post_data)
        assert sent["signature_name"] == "colorize_with_hints"
        assert sent["instances"][0]["hint_colors"] == [[30, 30, 230]]
        page.screenshot(path=os.path.join(artifacts, "page_hints.png"))
        page.click(".clear-hints")
        page.wait_for_function("document.querySelector('.hint-status').textContent "
                               "=== '0 hints'", timeout=60_000)
        assert page.get_attribute(".after", "src") == before


# --- Seed 003's realism study -----------------------------------------------------------

@pytest.fixture
def study_server(model_base, tmp_path):
    photos = tmp_path / "real"
    for i in range(3):
        (photos / f"{i}.png").parent.mkdir(exist_ok=True)
        (photos / f"{i}.png").write_bytes(png(10 + i, 20, 24))
    flags = {"images": str(photos), "db": str(tmp_path / "study.sqlite"),
             "temperature": 0.2, "pairs": 2, "seconds": 0.0}
    with running_server(model_base, "tiny", study=flags) as (url, _):
        yield url, str(tmp_path / "study.sqlite")


def test_study_records_answers_and_reports_the_fooling_rate(study_server):
    url, db = study_server
    fooled = 0
    for _ in range(2):
        status, trial = call(f"{url}/study/next", {"session": "abcdef12"})
        assert status == 200 and trial["pairs"] == 2
        # The colorized copy is the side that differs from the real photo re-encoded.
        assert trial["left"] != trial["right"]
        status, answer = call(f"{url}/study/answer", {"session": "abcdef12", "trial":
                                                      trial["trial"], "chosen": "left",
                                                      "milliseconds": 1234})
        assert status == 200 and answer == {"recorded": True}
    assert call(f"{url}/study/next", {"session": "abcdef12"}) == (200, {"done": True,
                                                                        "pairs": 2})
    import sqlite3
    rows = sqlite3.connect(db).execute(
        "SELECT real_side, chosen_side, fooled, milliseconds, temperature, version "
        "FROM trials").fetchall()
    assert len(rows) == 2 and all(r[1] == "left" and r[3] == 1234 and r[4] == 0.2 and
                                  r[5] == 1 for r in rows)
    fooled = sum(r[0] == "right" for r in rows)
    assert [r[2] for r in rows] == [int(r[0] == "right") for r in rows]
    with urllib.request.urlopen(f"{url}/study/results", timeout=30) as answer:
        html = answer.read().decode()
    assert f"{100 * fooled / 2:.1f}%" in html and "<td>0.20</td>" in html
    with urllib.request.urlopen(f"{url}/study/results.csv", timeout=30) as answer:
        assert len(answer.read().decode().strip().splitlines()) == 3
    for body, message in [({"session": "x"}, "8-64 letters"), (b"nope", "JSON"),
                          ({"session": "abcdef12", "trial": 1, "chosen": "up"}, "choice")]:
        path = "/study/answer" if isinstance(body, dict) and "trial" in body else "/study/next"
        status, answer = call(url + path, body)
        assert status == 400 and message in answer["error"]


def test_study_refuses_client_mistakes_with_400_and_bounds_each_client(study_server):
    url, db = study_server
    status, trial = call(f"{url}/study/next", {"session": "hostile1"})
    assert status == 200
    # Asking again without answering shows the same trial: no new row per call.
    for _ in range(5):
        assert call(f"{url}/study/next", {"session": "hostile1"})[1]["trial"] == trial["trial"]
    answer = {"session": "hostile1", "trial": trial["trial"], "chosen": "left"}
    for body, message in [
            (b'{"session": "hostile1", "trial": %d, "chosen": "left", "milliseconds": 1e400}'
             % trial["trial"], "milliseconds must be a number"),
            ({**answer, "milliseconds": 10 ** 30}, "milliseconds must be a number"),
            ({**answer, "trial": 10 ** 30}, "trial must be"),
            (b'{"session": "hostile1", "trial": 1e400, "chosen": "left"}', "trial must be"),
            (b"[" * 20000 + b"]" * 20000, "JSON with a session")]:
        status, refused = call(f"{url}/study/answer", body)
        assert status == 400 and message in refused["error"], (status, refused)
    status, too_large = call(f"{url}/study/answer", {"session": "x" * (1 << 17)})
    assert status == 413 and "--max_body_bytes" not in too_large["error"]
    import sqlite3
    assert sqlite3.connect(db).execute(
        "SELECT COUNT(*) FROM trials WHERE session = 'hostile1'").fetchone()[0] == 1
    # One address opens a bounded number of sessions.
    from colorize_tf.serving import realism_study
    statuses = [call(f"{url}/study/next", {"session": f"many{i:06d}"})[0]
                for i in range(realism_study.MAX_SESSIONS_PER_CLIENT + 2)]
    assert statuses.count(400) >= 2 and statuses[0] == 200


def test_study_skips_bad_photos_and_answers_503_while_its_database_is_locked(
        model_base, tmp_path):
    # The study's folder holds a 0-byte photo and a truncated JPEG beside two good
    # ones; another process locks the database mid-session.
    import sqlite3
    photos = tmp_path / "real"
    photos.mkdir()
    for i in range(2):
        (photos / f"{i}.png").write_bytes(png(10 + i, 20, 24))
    (photos / "empty.jpg").write_bytes(b"")
    jpeg = cv2.imencode(".jpg", make_photo(40, 40, seed=3))[1].tobytes()
    (photos / "truncated.jpg").write_bytes(jpeg[:len(jpeg) // 3])
    db = str(tmp_path / "study.sqlite")
    flags = {"images": str(photos), "db": db, "temperature": 0.2, "pairs": 2,
             "seconds": 0.0}
    with running_server(model_base, "tiny", study=flags) as (url, _):
        for session in ("sessionaa", "sessionbb", "sessioncc"):
            for _ in range(2):
                status, trial = call(f"{url}/study/next", {"session": session})
                assert status == 200 and "trial" in trial, (status, trial)
                assert call(f"{url}/study/answer", {"session": session, "trial":
                                                    trial["trial"], "chosen": "left"})[0] == 200
            assert call(f"{url}/study/next", {"session": session}) == \
                (200, {"done": True, "pairs": 2})
        status, trial = call(f"{url}/study/next", {"session": "sessiondd"})
        locker = sqlite3.connect(db, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        request = urllib.request.Request(f"{url}/study/answer", data=json.dumps(
            {"session": "sessiondd", "trial": trial["trial"], "chosen": "left"}).encode())
        try:
            urllib.request.urlopen(request, timeout=60)
            raise AssertionError("a locked database was answered 200")
        except urllib.error.HTTPError as e:
            assert e.code == 503 and e.headers["Retry-After"] == "2"
            assert "database is not available now" in json.loads(e.read())["error"]
        assert call(f"{url}/v1/models/tiny:predict", {"instances": [
            {"image_bytes": {"b64": base64.b64encode(png()).decode()}, "temperature": 0.38}]})[0] \
            == 200
        locker.execute("ROLLBACK")
        assert call(f"{url}/study/answer", {"session": "sessiondd", "trial": trial["trial"],
                                            "chosen": "left"})[0] == 200


def test_a_client_hanging_up_mid_body_is_logged_as_such_not_as_a_500(model_base, caplog):
    import logging
    import socket
    import urllib.parse
    with caplog.at_level(logging.INFO, logger="colorize_tf.serve"):
        with running_server(model_base, "tiny") as (url, _):
            host = urllib.parse.urlparse(url)
            for _ in range(3):
                with socket.create_connection((host.hostname, host.port), timeout=10) as c:
                    c.sendall(b"POST /v1/models/tiny:predict HTTP/1.1\r\nHost: x\r\n"
                              b"Content-Type: application/json\r\n"
                              b"Content-Length: 100000\r\n\r\n{\"instances\": [")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and sum(
                    " 499 " in r.getMessage() for r in caplog.records) < 3:
                time.sleep(0.1)
            assert call(f"{url}/v1/models/tiny")[0] == 200  # the server goes on
    lines = [r.getMessage() for r in caplog.records]
    assert sum("POST /v1/models/tiny:predict 499" in m for m in lines) == 3, lines
    assert not any(r.exc_info or "internal error" in r.getMessage() for r in caplog.records)


def test_a_body_of_exactly_the_limit_is_taken_and_one_byte_more_is_not(server):
    # The server fixture's --max_body_bytes is 200,000: JSON padded with spaces to it.
    body = json.dumps({"instances": [{"image_bytes": {"b64": base64.b64encode(
        png()).decode()}, "temperature": 0.38}]}).encode()
    status, answer = call(f"{server}/v1/models/tiny:predict", body.ljust(200_000))
    assert status == 200 and len(answer["predictions"]) == 1, (status, answer)
    assert call(f"{server}/v1/models/tiny:predict", body.ljust(200_001))[0] == 413


def test_hostile_predict_bodies_are_400s_and_the_server_goes_on(server):
    predict = f"{server}/v1/models/tiny:predict"
    for body, message in [
            (b'{"signature_name": "\\ud800", "inputs": {}}', "not found in signature def"),
            (b'{"inputs": {"image_bytes": [{"b64": ""}], "temperature": [' + b"9" * 400 +
             b"]}}", "out of the range of float32"),
            (b'{"inputs": ' + b"[" * 50000 + b"]" * 50000 + b"}", "nests too deep"),
            (b'{"inputs": {"image_bytes": ' + b"[" * 40 + b"1" + b"]" * 40 + b"}}",
             "more than 32 dimensions")]:
        status, refused = call(predict, body)
        assert status == 400 and message in refused["error"], (status, refused)
    status, ok = call(predict, {"inputs": {"image_bytes": [b64(png())],
                                           "temperature": [0.38]}})
    assert status == 200 and "outputs" in ok


def test_no_study_without_its_flag(server):
    status, body = call(f"{server}/study/next", {"session": "abcdef12"})
    assert status == 404 and "--study_images" in body["error"]


def test_study_in_a_real_browser(study_server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no browser at {CHROMIUM}: apt-get install -y chromium")
    url, db = study_server
    artifacts = os.environ.get("COLORIZE_TF_ARTIFACTS", str(tmp_path))
    os.makedirs(artifacts, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page()
        page.goto(url + "/study")
        for index in (1, 2):
            page.wait_for_selector(f"text={index} / 2")
            if index == 1:
                page.screenshot(path=os.path.join(artifacts, "study_pair.png"))
            page.click("#pair button.right")
        page.wait_for_selector("text=Thank you")
        page.goto(url + "/study/results")
        assert page.locator("tr.row").count() == 1
        page.screenshot(path=os.path.join(artifacts, "study_results.png"))
        browser.close()
    import sqlite3
    assert sqlite3.connect(db).execute(
        "SELECT COUNT(*) FROM trials WHERE chosen_side = 'right'").fetchone()[0] == 2


def test_batch_threads_default_to_one_per_core():
    # TF Serving's batching guide for CPUs: num_batch_threads = the number of cores.
    assert batch_threads(3) == 3 and batch_threads(12) == 12
    assert batch_threads(0) == min(len(os.sched_getaffinity(0)), 8)
