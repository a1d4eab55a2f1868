"""Every entry point against the bad-input corpus (tests/bad_inputs.py), and bounded
property-based fuzzing of the header reader and the decode paths: each input either
works or gets a one-line reason, the run goes on, and there is never a traceback."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from colorize_tf.data import image_files
from colorize_tf.serving import photo_decoding
from data_prep import prepare
from tests import bad_inputs
from tests.conftest import make_photo
from tests.test_client import server  # noqa: F401 (the local REST server, a fixture)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Files every tool must handle as photos (colorized, or used as training data).
USABLE = {"good.png", "good.jpg", "trailer.jpg", "rotated.jpg", "bad_exif.jpg", "rgba.png",
          "gray_alpha.png", "sixteen.png", "png_named.jpg", "gif_named.jpg", "photo.webp",
          "photo.tif", "cmyk.jpg", "caf\udce9.jpg"}
BOMBS = {"bomb.png", "bomb.gif", "bomb.bmp", "bomb.jpg"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("corpus") / "photos")
    return folder, bad_inputs.make_corpus(folder)


def _cli(module, *args):
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600, errors="replace")


def _assert_no_traceback(result):
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]


def test_serving_signature_on_the_corpus(tiny_saved_model):
    serve = tf.saved_model.load(tiny_saved_model[0]).signatures["serving_default"]
    outcomes = {}
    for name, (data, _) in bad_inputs.corpus_bytes().items():
        try:
            out = serve(image_bytes=tf.constant([data]), temperature=tf.constant([0.38]))
            outcomes[name] = tf.io.decode_png(out["colorized_png_bytes"][0]).shape
        except tf.errors.InvalidArgumentError as e:
            outcomes[name] = e.message
    for name in USABLE - {"caf\udce9.jpg", "photo.tif"}:  # TF decodes no TIFF
        assert isinstance(outcomes[name], tf.TensorShape), (name, outcomes[name])
    assert outcomes["rotated.jpg"] == (64, 48, 3)  # upright
    for name in BOMBS:
        assert "larger than the limit" in outcomes[name], (name, outcomes[name])
    assert "image_bytes is empty" in outcomes["empty.jpg"]
    # Refused before TF's WebP decoder, which aborts the process on an animation.
    assert "animated WebP is not supported" in outcomes["animated.webp"]


def test_build_records_on_the_corpus(corpus, tmp_path):
    folder, described = corpus
    result = _cli("data_prep.build_records", f"--input_dir={folder}",
                  f"--output_dir={tmp_path}/records", "--frame_size=32", "--min_size=1",
                  "--workers=1", "--val_fraction=0")
    _assert_no_traceback(result)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.load(open(tmp_path / "records" / "report.json"))
    skipped = {s["source"]: s["reason"] for s in report["skipped"]}
    ignored = {s["source"] for s in report["ignored"]}
    # Every file of the corpus is accounted for: written, skipped with a reason, or ignored.
    from colorize_tf.data import records
    written = {e[records.SOURCE_ID].decode("utf-8", "surrogateescape")
               for path in (tmp_path / "records").glob("train-*.tfrecord")
               for e in records.read_examples(str(path))}
    shown = {name.replace("\udce9", "\ufffd") for name in written}
    assert shown | set(skipped) | ignored == {
        name.replace("\udce9", "\ufffd") for name in described}
    assert USABLE - {"gray_alpha.png"} <= written  # gray + alpha is a gray photo
    assert skipped["gray_alpha.png"] == "grayscale"
    for name in BOMBS:
        assert skipped[name] == "too_large", name
    for name in ("empty.jpg", "text.jpg", "random.png", "truncated.jpg", "truncated.png",
                 "header_only.jpg", "zero_size.png", "gray.png", "folder.jpg"):
        assert name in skipped, name
    # Never read (a FIFO would block the build, a link to /dev/zero fill the memory).
    details = {s["source"]: s.get("detail", "") for s in report["skipped"]}
    assert "a FIFO, not a regular file" in details["pipe.jpg"], details["pipe.jpg"]
    for name in ("zero.jpg", "urandom.png"):
        assert "a character device, not a regular file" in details[name], details[name]
    assert not (set(skipped) & (USABLE - {"gray_alpha.png"}))


def test_colorize_on_the_corpus(corpus, tiny_saved_model, tmp_path):
    folder, described = corpus
    result = _cli("colorize_tf.colorize", folder, f"--output_dir={tmp_path}/out",
                  f"--saved_model={tiny_saved_model[0]}", "--batch_size=4")
    _assert_no_traceback(result)
    assert result.returncode == 1  # some inputs failed, each with a reason
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed: ")]
    done = [line for line in result.stdout.splitlines()
            if " -> " in line and not line.startswith("colorized ")]
    assert "\x1b[" not in result.stdout  # no terminal escape codes in a pipe
    images = [n for n in os.listdir(folder) if not n.startswith(".")
              and not os.path.isdir(os.path.join(folder, n))]
    assert len(failed) + len(done) == len(images)
    assert any("pipe.jpg: a FIFO, not a regular file: not read" in line for line in failed)
    for name in ("zero.jpg", "urandom.png"):
        assert any(f"{name}: a character device, not a regular file" in line
                   for line in failed), name
    for name in BOMBS:
        assert any(f"{name}: " in line and "larger than the limit" in line for line in failed)
    assert any("animated.webp: animated WebP is not supported" in line for line in failed)
    for name in USABLE - {"photo.tif"}:
        shown = name.replace("\udce9", "\ufffd")
        assert any(f"/{shown} -> " in line for line in done), name
    rotated = cv2.imread(str(tmp_path / "out" / "photos" / "rotated.png"))
    assert rotated.shape[:2] == (64, 48)


def test_evaluate_on_the_corpus(corpus, tiny_saved_model, tmp_path):
    folder, _ = corpus
    result = _cli("colorize_tf.evaluate", f"--saved_model={tiny_saved_model[0]}",
                  f"--images_dir={folder}", f"--output_dir={tmp_path}/eval", "--num_figures=1")
    _assert_no_traceback(result)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.load(open(tmp_path / "eval" / "metrics.json"))
    left_out = {os.path.basename(e["file"]): e["reason"] for e in metrics["left_out"]}
    assert "truncated" in left_out["truncated.jpg"]
    for name in BOMBS:
        assert "larger than the limit" in left_out[name], name
    assert "a FIFO, not a regular file" in left_out["pipe.jpg"]
    for name in ("zero.jpg", "urandom.png"):
        assert "a character device, not a regular file" in left_out[name], name


def test_client_on_the_corpus(corpus, server, tmp_path):  # noqa: F811
    url = server
    folder, described = corpus
    paths = [os.path.join(folder, n) for n in sorted(described) if n != "folder.jpg"]
    result = _cli("colorize_tf.client", f"--server={url}", "--model=tiny",
                  f"--output_dir={tmp_path}/out", "--timeout=60", *paths)
    _assert_no_traceback(result)
    assert result.returncode == 1
    assert any("good.png -> " in line for line in result.stdout.splitlines())
    assert any("bomb.png: HTTP 400" in line and "larger than the limit" in line
               for line in result.stderr.splitlines())
    # Refused by the server before the signature (TF's WebP decoder would abort the
    # server's process), and the server goes on.
    assert any("animated.webp: HTTP 400" in line and "image_bytes[0]: animated WebP" in line
               for line in result.stderr.splitlines()), result.stderr[-2000:]
    assert any("pipe.jpg: a FIFO, not a regular file" in line
               for line in result.stderr.splitlines()), result.stderr[-2000:]
    assert "good.png -> " in _cli("colorize_tf.client", f"--server={url}", "--model=tiny",
                                  f"--output_dir={tmp_path}/again",
                                  os.path.join(folder, "good.png")).stdout


# --- Property-based fuzzing: mutated real files of every format. ---------------------

def _seeds():
    photo = make_photo(24, 32, seed=3)
    files = bad_inputs.corpus_bytes()
    return [files[n][0] for n in ("good.jpg", "good.png", "gif_named.jpg", "photo.webp",
                                  "rotated.jpg")] + [
        cv2.imencode(".bmp", photo)[1].tobytes()]


SEEDS = _seeds()


@st.composite
def mutated_files(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "header"]))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[position] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[position:]
        elif kind == "insert":
            data[position:position] = draw(st.binary(max_size=16))
        elif kind == "header" and len(data) > 32:  # sizes live in the first bytes
            data[draw(st.integers(0, 31))] = draw(st.integers(0, 255))
    return bytes(data)


FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
FUZZ_LONG = settings(max_examples=3000, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])


def _check_header_reader(data):
    size = image_files.header_size(data)
    assert size is None or (len(size) == 2 and min(size) >= 0)
    image_files.jpeg_is_complete(data)


def _check_prepare(data):
    try:
        image, _ = prepare.decode_image(data, max_pixels=1_000_000)
    except prepare.SkipImage:
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


_serving_module = {}


def _check_serving_decode(data):
    if "module" not in _serving_module:  # the graph's own steps, without a model
        _serving_module["fn"] = tf.function(lambda d: (photo_decoding.header_size(d),
                                                       photo_decoding.decode_rgb(d)))
        _serving_module["module"] = True
    try:
        size, rgb = _serving_module["fn"](tf.constant(data))
    except tf.errors.InvalidArgumentError:
        return
    assert rgb.shape[-1] == 3 and rgb.dtype == tf.uint8


@FUZZ
@given(mutated_files())
def test_fuzz_header_reader(data):
    _check_header_reader(data)


@FUZZ
@given(mutated_files())
def test_fuzz_data_prep_decoding(data):
    _check_prepare(data)


@FUZZ
@given(mutated_files())
def test_fuzz_serving_decode_path(data):
    _check_serving_decode(data)


@pytest.mark.slow
@FUZZ_LONG
@given(mutated_files())
def test_fuzz_long(data):
    _check_header_reader(data)
    _check_prepare(data)
    _check_serving_decode(data)
