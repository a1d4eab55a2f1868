"""Flicker measured on pan-and-zoom clips whose true colours are known."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from colorize_tf.evaluation import video as ve
from colorize_tf.serving import inference
from tests.conftest import make_photo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# CIE Lab of sRGB pure red (D65), as published (e.g. Lindbloom's calculator):
# L* 53.24, a* 80.09, b* 67.20.
RED_AB = (80.09, 67.20)


def test_clip_windows_pan_and_zoom_inside_the_photo():
    clip = ve.make_clip(150, 200, seed=3, frames=10, side=32)
    assert clip.corners.shape == (10, 2) and clip.sides.shape == (10,)
    assert np.all(clip.corners >= 0)
    assert np.all(clip.corners[:, 0] + clip.sides <= 200 + 1e-9)
    assert np.all(clip.corners[:, 1] + clip.sides <= 150 + 1e-9)
    assert clip.sides[0] != clip.sides[-1] and np.all(np.diff(clip.sides) != 0)
    # frame coordinates -> photo -> frame coordinates is the identity
    xs, ys = clip.to_frame(4, *clip.maps(4))
    grid_x, grid_y = np.meshgrid(np.arange(32), np.arange(32))
    np.testing.assert_allclose(xs, grid_x, atol=1e-3)
    np.testing.assert_allclose(ys, grid_y, atol=1e-3)
    again = ve.make_clip(150, 200, seed=3, frames=10, side=32)
    assert np.array_equal(again.corners, clip.corners)


def test_flicker_of_alternating_colours_is_their_ab_distance():
    clip = ve.make_clip(64, 64, seed=0, frames=6, side=16)
    gray = np.full((16, 16, 3), 128, np.uint8)
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 255
    frames = np.stack([gray, red] * 3)
    assert ve.flicker(frames, clip) == pytest.approx(np.hypot(*RED_AB), rel=2e-3)
    assert ve.flicker(np.stack([red] * 6), clip) == pytest.approx(0.0, abs=1e-3)


def test_the_known_motion_is_undone():
    photo = make_photo(150, 150, seed=5)
    clip = ve.make_clip(150, 150, seed=1, frames=12, side=48)
    truth = ve.render_clip(photo, clip)
    undone = ve.flicker(truth, clip)
    # the same frames compared pixel for pixel, without undoing the motion
    still = ve.Clip(np.zeros_like(clip.corners), np.full_like(clip.sides, 48.0), 48)
    assert undone < 0.3 * ve.flicker(truth, still)


def test_psnr_by_hand():
    truth = np.zeros((2, 4, 4, 3), np.uint8)
    frames = truth.copy()
    frames[0] += 10  # MSE 100 -> 10 log10(255^2 / 100) = 28.13 dB
    frames[1] += 1  # MSE 1 -> 48.13 dB
    assert ve.psnr(frames, truth) == pytest.approx((28.1308 + 48.1308) / 2, abs=1e-3)


def test_evaluate_video_compares_smoothing_with_frame_by_frame(luma_saved_model):
    colorizer = inference.Colorizer(luma_saved_model)
    photos = [(str(i), make_photo(60, 80, seed=i)) for i in range(2)]
    result = ve.evaluate_video(colorizer, photos, 0.38, frames=8, side=32, settings=[
        (20, 0.2, False), (3, 1.0, False), (0, 0.1, True)])
    methods = result["methods"]
    assert list(methods) == ["frame by frame", "smoothed 20:0.2", "smoothed 3:1",
                             "along the flow, alpha 0.1"]
    assert result["clips"] == 2 and result["truth_flicker"] > 0
    for m in methods.values():
        assert m["flicker"] > 0 and m["psnr"] > 5 and m["frames_per_second"] > 0
        assert m["flicker_ratio"] == pytest.approx(m["flicker"] / result["truth_flicker"])
    # This model's colour follows each scene point's luma, so frame by frame it barely
    # flickers, and smoothing at fixed pixels while the scene moves mixes in the colour
    # of other scene points: the metric must see that (the longer window, the more).
    by_frame = methods["frame by frame"]["flicker"]
    assert by_frame < methods["smoothed 3:1"]["flicker"] < methods["smoothed 20:0.2"]["flicker"]
    # Along the flow each scene point averages its own past: less of that (the flow of
    # 32 px frames of smooth generated photos is rough: 0.73 against 1.11 measured).
    assert methods["along the flow, alpha 0.1"]["flicker"] < 0.8 * methods[
        "smoothed 20:0.2"]["flicker"]
    assert "| smoothed 3:1 |" in ve.video_markdown(result)


def test_evaluate_cli_video(luma_saved_model, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        cv2.imwrite(str(photos / f"{i}.png"), make_photo(50, 60, seed=i)[..., ::-1])

    def evaluate(*args):
        return subprocess.run(
            [sys.executable, "-m", "colorize_tf.evaluate", f"--saved_model={luma_saved_model}",
             f"--images_dir={photos}", *args], cwd=REPO, capture_output=True, text=True,
            timeout=300)
    result = evaluate("--video", "--smoothing=20:0.2,flow:0.5", f"--output_dir={tmp_path / 'o'}")
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "o" / "video.json") as f:
        assert set(json.load(f)["methods"]) == {"frame by frame", "smoothed 20:0.2",
                                                "along the flow, alpha 0.5"}
    result = evaluate("--video", "--smoothing=20", f"--output_dir={tmp_path / 'p'}")
    assert result.returncode == 2 and "FRAMES:ALPHA" in result.stderr
    result = evaluate("--hints=0,5", f"--output_dir={tmp_path / 'q'}")
    assert result.returncode == 2 and "takes no colour hints" in result.stderr
    result = evaluate("--smoothing=flow:0.5", f"--output_dir={tmp_path / 'r'}")
    assert result.returncode == 2 and "--smoothing compares video smoothings: it needs " \
        "--video" in result.stderr
