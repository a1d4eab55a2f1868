"""The seed study: flagfiles read without absl, and a run that trains, exports,
evaluates, reports, and skips what is done when run again."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from colorize_tf import study
from tests.conftest import make_photo, write_png

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_read_flagfile_follows_nested_files_and_booleans(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "common.flags").write_text("# shared\n--epochs=3\n--augment\n--crop_size=32\n")
    (tmp_path / "v.flags").write_text("--flagfile=common.flags\n--crop_size=64\n--nomirror\n")
    assert study.read_flagfile("v.flags") == {"epochs": "3", "augment": "true",
                                              "crop_size": "64", "mirror": "false"}


def test_every_study_flagfile_names_a_known_record_set(monkeypatch):
    monkeypatch.chdir(REPO)
    names = set()
    for path in sorted(os.listdir(study.STUDY_CONFIGS)):
        if path != study.COMMON:
            variant = study.Variant(os.path.join(study.STUDY_CONFIGS, path), "docs/study")
            assert variant.record_set in study.RECORD_SETS and variant.epochs == 10
            names.add(variant.name)
    assert {"cls_yuv32", "cls_yuv32_noaug", "cls_yuv32_norebal", "reg_yuv", "cls_uv20",
            "cls_lab313_soft", "multitask", "zhang_small"} == names


@pytest.mark.slow  # two variants trained, exported and evaluated: about a minute
def test_study_runs_and_skips_a_finished_variant(tiny_records, tmp_path):
    records = tmp_path / "runs" / "records" / "yuv32"
    shutil.copytree(tiny_records, records)  # complete (report.json): kept, not rebuilt
    flagfile = tmp_path / "tiny.flags"
    flagfile.write_text("\n".join([
        f"--flagfile={REPO}/colorize_tf/configs/smoke.flags", f"--records_dir={records}",
        f"--model_dir={tmp_path}/runs/runs/tiny", "--epochs=1", "--steps_per_epoch=2",
        "--num_log_images=0", "--verbose=0"]) + "\n")
    photos = tmp_path / "test"
    for i in range(3):  # in class folders, for the scene classifier
        write_png(str(photos / ("red" if i % 2 else "blue") / f"{i}.png"),
                  make_photo(30, 40, seed=20 + i))
    command = [sys.executable, "-m", "colorize_tf.study", f"--configs={flagfile}",
               f"--train_dir={photos}", f"--test_dir={photos}", "--temperatures=0.38,1",
               f"--report_dir={tmp_path}/report", "--num_grid_photos=2",
               "--scene_epochs=1"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    first = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env,
                           timeout=600)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert "tiny: training epochs 1..1" in first.stdout and "evaluating" in first.stdout
    report = (tmp_path / "report" / "README.md").read_text()
    assert "| tiny |" in report and "![grid](grid.jpg)" in report
    assert "colorunet_landscapes" in report  # the shipped model as the reference row
    scenes = json.load(open(tmp_path / "report" / "scene_classification.json"))
    assert scenes["photos"] == 3 and set(scenes) >= {"colour", "gray", "tiny"}
    assert sum(map(sum, scenes["gray"]["confusion"])) == 3 and "top-1 accuracy" in report
    metrics = json.load(open(tmp_path / "report" / "variants" / "tiny" / "metrics.json"))
    assert metrics["images"] == 3 and set(metrics["methods"]) >= {"gray", "T=0.38", "T=1"}
    assert (tmp_path / "runs" / "saved_models" / "tiny" / "1" / "saved_model.pb").exists()
    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env,
                           timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "training" not in again.stdout and "evaluating" not in again.stdout
    assert "records" in again.stdout and "complete, kept" in again.stdout
    assert not (tmp_path / "runs" / "saved_models" / "tiny" / "2").exists()


@pytest.mark.parametrize("flag,message", [("--temperatures=0", "--temperatures must be > 0"),
                                          ("--configs=nope.flags", "no flagfile")])
def test_bad_flags_are_refused_before_any_work(tmp_path, flag, message):
    result = subprocess.run([sys.executable, "-m", "colorize_tf.study", flag,
                             f"--train_dir={tmp_path}", f"--test_dir={tmp_path}",
                             f"--report_dir={tmp_path}/r"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and message in result.stderr, result.stderr
