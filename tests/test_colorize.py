"""colorize: the Python API, folders with bad files, videos, --work_size."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from colorize_tf import colorize
from colorize_tf.chroma import video_smoothing
from colorize_tf.serving import inference
from colorize_tf.serving import video_files
from tests.conftest import make_photo, write_png

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_python_api(tiny_saved_model):
    colorizer = inference.Colorizer(tiny_saved_model[1])  # base dir: highest version
    gray = make_photo(30, 45, seed=1)[..., 0]
    rgb, confidence = colorizer.colorize(gray, temperature=0.38, confidence=True)
    assert rgb.shape == (30, 45, 3) and rgb.dtype == np.uint8
    assert confidence.shape == (30, 45) and 0 <= confidence.min() <= confidence.max() <= 1
    # --work_size path (colorize_luma + the same steps here) agrees with the graph.
    same = colorizer.colorize(gray, temperature=0.38, work_size=32)
    assert np.abs(same.astype(int) - rgb.astype(int)).mean() < 1.0
    with pytest.raises(ValueError, match="expected a uint8 image"):
        colorizer.colorize(np.zeros((4, 4, 2), np.uint8))


def test_cli_folder_with_bad_file(tiny_saved_model, tmp_path):
    photos = tmp_path / "in"
    write_png(str(photos / "a.png"), make_photo(20, 30, seed=1))
    write_png(str(photos / "sub" / "b.png"), np.repeat(make_photo(25, 25, seed=2)[..., :1], 3, 2))
    (photos / "broken.jpg").write_bytes(b"not a jpeg at all")
    result = subprocess.run(
        [sys.executable, "-m", "colorize_tf.colorize", str(photos), f"--output_dir={tmp_path}/out",
         f"--saved_model={tiny_saved_model[0]}", "--confidence", "--batch_size=2"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 1, result.stderr[-2000:]
    assert "colorized 2, failed 1" in result.stdout
    assert "broken.jpg: not an image" in result.stderr
    assert "a.png: colour input: colorized from its luma" in result.stdout
    assert "b.png: colour input" not in result.stdout
    out = cv2.imread(str(tmp_path / "out" / "in" / "sub" / "b.png"))
    assert out.shape == (25, 25, 3)
    assert (tmp_path / "out" / "in" / "a.confidence.png").exists()


def _write_video(path, frames=6, size=(40, 32)):
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.roll(make_photo(size[1], size[0], seed=0), i, axis=1)[..., ::-1].copy())
    writer.release()


def test_video_keeps_fps_size_and_frames(tiny_saved_model, tmp_path):
    src = str(tmp_path / "clip.avi")
    _write_video(src)
    colorizer = inference.Colorizer(tiny_saved_model[0])
    out = str(tmp_path / "out.avi")
    seen = []
    count = video_files.colorize_video(colorizer, src, out, 0.38,
                                    progress=lambda n, total: seen.append(n))
    assert count == 6 and seen == [1, 2, 3, 4, 5, 6]
    capture = cv2.VideoCapture(out)
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)
    size = (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    assert size == (40, 32)
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    capture.release()
    with pytest.raises(ValueError, match="cannot open"):
        video_files.colorize_video(colorizer, str(tmp_path / "missing.avi"), out, 0.38)


def test_a_truncated_video_is_a_failure_not_a_short_result(tiny_saved_model, tmp_path):
    # The AVI's header declares 60 frames; cut in half, OpenCV reads about 30 of them
    # and then stops as if the video had ended.
    src = str(tmp_path / "in" / "clip.avi")
    os.makedirs(os.path.dirname(src))
    _write_video(src, frames=60)
    data = open(src, "rb").read()
    with open(src, "wb") as f:
        f.write(data[:len(data) // 2])
    result = subprocess.run(
        [sys.executable, "-m", "colorize_tf.colorize", src, f"--output_dir={tmp_path}/out",
         f"--saved_model={tiny_saved_model[0]}"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 1 and "clip.avi: the video ends after " in failed[0], failed
    assert "of the 60 frames its header declares (truncated or damaged)" in failed[0]
    written = [name for _, _, names in os.walk(tmp_path / "out") for name in names]
    assert written == [], written  # nothing short, and no temp file left


def test_smoothing_carries_colour_over_a_flickering_clip(luma_saved_model):
    # Bright and dark frames in turn: smoothed, the dark frame borrows the bright
    # frame's bins (weights 1 and e^-alpha), so its colours move toward the bright one's.
    colorizer = inference.Colorizer(luma_saved_model)
    bright = np.full((16, 16, 3), 180, np.uint8)
    dark = np.full((16, 16, 3), 90, np.uint8)
    smoother = video_smoothing.TemporalSmoother(alpha=0.2)
    first = colorizer.colorize(bright, 0.5, work_size=32, smoother=smoother)
    second = colorizer.colorize(dark, 0.5, work_size=32, smoother=smoother)
    plain_first = colorizer.colorize(bright, 0.5, work_size=32)
    plain_second = colorizer.colorize(dark, 0.5, work_size=32)
    assert np.abs(first.astype(int) - plain_first.astype(int)).max() <= 1
    moved = np.abs(second.astype(int) - plain_second.astype(int)).mean()
    assert moved > 2.0, moved  # measured 5 levels; 0 without smoothing


def test_missing_model_is_a_clear_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "colorize_tf.colorize", str(tmp_path),
         f"--output_dir={tmp_path}_out", f"--saved_model={tmp_path}/none"], cwd=REPO,
        capture_output=True, text=True, timeout=120, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 2 and "no SavedModel at" in result.stderr


def _bytes_of(folder):
    return {p: open(os.path.join(folder, p), "rb").read() for p in sorted(os.listdir(folder))}


def _run(saved_model, inputs, output_dir, batch_size=4, overwrite=False, **options):
    """-> (done, failed, notes) of colorize.run."""
    options = colorize.Options(**{"temperature": 0.38, **options})
    outcome = colorize.run([str(i) for i in inputs], str(output_dir), saved_model, options,
                           batch_size, overwrite)
    return outcome.done, outcome.failed, outcome.notes


def test_never_writes_over_an_input(tiny_saved_model, tmp_path):
    folder = tmp_path / "r1"
    write_png(str(folder / "beach.png"), make_photo(20, 30, seed=1))
    write_png(str(folder / "lake.png"), make_photo(20, 30, seed=2))
    before = _bytes_of(folder)
    done, failed, _ = _run(tiny_saved_model[0], [folder / "beach.png"], folder)
    assert done == [] and "would replace the input" in failed[0][1]
    with pytest.raises(colorize.cli.UsageError, match="inside the input folder"):
        _run(tiny_saved_model[0], [folder], tmp_path)  # -> tmp_path/r1/beach.png
    with pytest.raises(colorize.cli.UsageError, match="inside the input folder"):
        _run(tiny_saved_model[0], [folder], folder / "out")
    assert _bytes_of(folder) == before


def test_one_result_per_input_and_overwrite_only_own_results(tiny_saved_model, tmp_path):
    photos = tmp_path / "in"
    write_png(str(photos / "photo.png"), make_photo(20, 30, seed=1))
    ok, jpeg = cv2.imencode(".jpg", make_photo(20, 30, seed=2))
    (photos / "photo.jpg").write_bytes(jpeg.tobytes())
    out = tmp_path / "out"
    done, failed, _ = _run(tiny_saved_model[0], [photos], out)
    assert failed == [] and len(done) == 2
    assert sorted(os.listdir(out / "in")) == ["photo.jpg.png", "photo.png"]
    assert dict(done)[str(photos / "photo.jpg")] == str(out / "in" / "photo.jpg.png")
    first = _bytes_of(out / "in")
    # Again: the results exist and are kept ...
    done, failed, _ = _run(tiny_saved_model[0], [photos], out)
    assert done == [] and all("exists and was not replaced" in r for _, r in failed)
    # ... unless --overwrite, which replaces this tool's results only.
    (out / "in" / "photo.png").write_bytes(open(photos / "photo.png", "rb").read())
    done, failed, _ = _run(tiny_saved_model[0], [photos], out, overwrite=True)
    assert [os.path.basename(p) for p, _ in done] == ["photo.jpg"]
    assert "exists and was not replaced" in failed[0][1]
    assert _bytes_of(out / "in")["photo.jpg.png"] == first["photo.jpg.png"]


def test_bombs_empty_files_and_odd_names_do_not_stop_the_run(tiny_saved_model, tmp_path):
    import struct
    photos = tmp_path / "in"
    write_png(str(photos / "good.png"), make_photo(20, 30, seed=1))
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(
        ">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    (photos / "bomb.png").write_bytes(header + b"\x00" * 40)
    (photos / "empty.jpg").write_bytes(b"")
    with open(os.path.join(os.fsencode(str(photos)), b"caf\xe9.png"), "wb") as f:
        f.write(open(photos / "good.png", "rb").read())
    (photos / ".hidden.png").write_bytes(b"")
    done, failed, notes = _run(tiny_saved_model[0], [photos], tmp_path / "out",
                               batch_size=3)
    reasons = {os.path.basename(p): r for p, r in failed}
    assert "larger than the limit" in reasons["bomb.png"]
    assert "empty file" in reasons["empty.jpg"]
    assert len(done) == 2 and len(failed) == 2
    assert any(".hidden.png" in p for p, _ in notes)


def test_cli_refuses_bad_flags_in_one_line(tiny_saved_model, tmp_path):
    write_png(str(tmp_path / "in" / "a.png"), make_photo(20, 30, seed=1))
    for flag, message in [("--batch_size=0", "--batch_size must be >= 1"),
                          ("--batch_size=-1", "--batch_size must be >= 1"),
                          ("--work_size=-5", "--work_size must be >= 0"),
                          ("--temperature=nan", "--temperature must be a finite number "
                                                "of at least 0.001"),
                          ("--temperature=1e39", "got 1e+39"),
                          ("--temperature=1e-38", "of at least 0.001 (e.g. 0.38), got 1e-38")]:
        result = subprocess.run(
            [sys.executable, "-m", "colorize_tf.colorize", str(tmp_path / "in"),
             f"--output_dir={tmp_path}/out", f"--saved_model={tiny_saved_model[0]}", flag],
            cwd=REPO, capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and message in result.stderr, (flag, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_an_input_named_twice_is_colorized_once(tiny_saved_model, tmp_path):
    write_png(str(tmp_path / "in" / "a.png"), make_photo(20, 30, seed=1))
    done, failed, _ = _run(tiny_saved_model[0], [tmp_path / "in" / "a.png"] * 2,
                           tmp_path / "out")
    assert failed == [] and [os.path.basename(o) for _, o in done] == ["a.png"]


def test_work_size_path_decodes_as_the_serving_graph(luma_saved_model, tmp_path):
    # RGBA with a transparent half and a phone photo stored sideways, through
    # --work_size: alpha over white and the EXIF turn, as serving_default does.
    import cv2 as cv
    from tests.conftest import with_exif_orientation
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[:, 10:] = [40, 60, 80, 255]
    os.makedirs(tmp_path / "in")
    assert cv.imwrite(str(tmp_path / "in" / "a.png"), rgba)
    jpeg = cv.imencode(".jpg", make_photo(24, 40, seed=3)[..., ::-1].copy())[1].tobytes()
    (tmp_path / "in" / "b.jpg").write_bytes(with_exif_orientation(jpeg, 6))
    done, failed, _ = _run(luma_saved_model, [tmp_path / "in"], tmp_path / "out",
                           work_size=32)
    assert failed == []
    a = cv.imread(str(tmp_path / "out" / "in" / "a.png"))
    assert a[:, :10].min() > 200  # the transparent half is white, not black
    assert cv.imread(str(tmp_path / "out" / "in" / "b.png")).shape[:2] == (40, 24)
