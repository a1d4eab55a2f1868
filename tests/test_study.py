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


def test_every_study_flagfile_names_a_known_record_set(monkeypatch, tmp_path):
    # Read from outside the checkout, as an installed package is: each variant finds the
    # common.flags it names (beside it), and the settings it holds are the variant's.
    monkeypatch.chdir(tmp_path)
    names = set()
    for path in sorted(os.listdir(study.STUDY_CONFIGS)):
        if path != study.COMMON:
            variant = study.Variant(os.path.join(study.STUDY_CONFIGS, path), "docs/study")
            assert variant.record_set in study.RECORD_SETS and variant.epochs == 10
            # common.flags' settings reached the variant
            assert variant.config.data.crop_size == 96 and variant.config.runtime.seed == 1
            names.add(variant.name)
    assert {"cls_yuv32", "cls_yuv32_noaug", "cls_yuv32_norebal", "reg_yuv", "cls_uv20",
            "cls_lab313_soft", "multitask", "zhang_small"} == names


def test_a_variant_without_a_run_folder_is_refused_in_one_line(tmp_path):
    (tmp_path / "v.flags").write_text("--records_dir=runs/study/records/yuv32\n")
    with pytest.raises(study.cli.UsageError, match="sets no model_dir"):
        study.Variant(str(tmp_path / "v.flags"), "docs/study")


def test_everything_the_commands_read_is_installed_with_the_package():
    # setup.cfg's package_data covers every flagfile and web page under colorize_tf/
    # (the study's flagfiles were once left out of the wheel).
    import configparser
    import glob
    parser = configparser.ConfigParser()
    parser.read(os.path.join(REPO, "setup.cfg"))
    covered = set()
    for package, patterns in parser["options.package_data"].items():
        root = os.path.join(REPO, *package.split("."))
        for pattern in patterns.replace("\n", ",").split(","):
            if pattern.strip():
                covered |= set(glob.glob(os.path.join(root, pattern.strip())))
    data = {p for p in glob.glob(os.path.join(REPO, "colorize_tf", "**", "*"), recursive=True)
            if os.path.isfile(p) and not p.endswith((".py", ".pyc"))}
    assert data and data <= covered, sorted(data - covered)


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


@pytest.mark.parametrize("flag,message", [("--temperatures=0", "--temperatures must be a finite number of at least 0.001"),
                                          ("--temperatures=0.38,1e39", "got 1e+39"),
                                          ("--workers=0", "--workers must be >= 1, got 0"),
                                          ("--frame_size=-8", "--frame_size must be >= 8 px"),
                                          ("--configs=nope.flags", "no flagfile")])
def test_bad_flags_are_refused_before_any_work(tmp_path, flag, message):
    result = subprocess.run([sys.executable, "-m", "colorize_tf.study", flag,
                             f"--train_dir={tmp_path}", f"--test_dir={tmp_path}",
                             f"--report_dir={tmp_path}/r"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and message in result.stderr, result.stderr


@pytest.mark.slow  # builds a wheel of the checkout and installs it: about a minute
def test_the_study_runs_from_an_installed_wheel_outside_the_checkout(tmp_path):
    # A wheel installed into a fresh prefix, used from another folder: the study finds
    # its flagfiles (and their common.flags), the server its pages.
    wheels, prefix, elsewhere = tmp_path / "wheels", tmp_path / "prefix", tmp_path / "cwd"
    elsewhere.mkdir()

    def installed_here():
        return subprocess.run([sys.executable, "-c", "import colorize_tf as c; print(c.__file__)"],
                              cwd=elsewhere, capture_output=True, text=True, timeout=120).stdout
    before = installed_here()
    source = tmp_path / "source"  # a copy: the build writes build/ beside the sources
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "out", "build", "docs", "examples", "__pycache__", "*.egg-info"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels),
                          str(source)], check=True, capture_output=True, timeout=600)
    wheel = next(wheels.glob("colorize_tf-*.whl"))
    # --ignore-installed: without it pip uninstalls the checkout's own (editable) install.
    subprocess.run(pip + ["install", "--no-deps", "--no-build-isolation", "--ignore-installed",
                          "--prefix", str(prefix), str(wheel)], check=True,
                   capture_output=True, timeout=600)
    site = next(prefix.glob("lib/python*/site-packages"))
    env = dict(os.environ, PYTHONPATH=str(site), TF_CPP_MIN_LOG_LEVEL="3")
    script = (
        "import glob, os\n"
        "from colorize_tf import study\n"
        "import importlib.resources\n"
        f"assert study.STUDY_CONFIGS.startswith({str(site)!r}), study.STUDY_CONFIGS\n"
        "paths = [p for p in glob.glob(os.path.join(study.STUDY_CONFIGS, '*.flags'))\n"
        "         if os.path.basename(p) != study.COMMON]\n"
        "variants = [study.Variant(p, 'report') for p in paths]\n"
        "assert len(variants) == 8 and all(v.config.runtime.seed == 1 for v in variants)\n"
        "page = importlib.resources.files('colorize_tf.serving').joinpath('web', 'index.html')\n"
        "assert '<html' in page.read_text().lower()\n"
        "print('ok', len(variants))\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=elsewhere, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "ok 8" in result.stdout, result.stderr[-2000:]
    refused = subprocess.run([sys.executable, "-m", "colorize_tf.study",
                              "--configs=nope.flags", f"--train_dir={elsewhere}",
                              f"--test_dir={elsewhere}"], cwd=elsewhere, env=env,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "no flagfile" in refused.stderr, refused.stderr
    assert installed_here() == before  # this environment's own install is untouched
