import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from colorize_tf.evaluation import scoring
from tests.conftest import make_photo, numpy_oracle, write_png

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_evaluate_cli_writes_metrics_report_figures(tiny_saved_model, tiny_run, tmp_path):
    photos = tmp_path / "photos"
    for i in range(3):
        write_png(str(photos / f"{i}.png"), make_photo(24, 30, seed=i))
    (photos / "bad.png").write_bytes(b"nope")
    out = tmp_path / "eval"
    result = subprocess.run(
        [sys.executable, "-m", "colorize_tf.evaluate", f"--saved_model={tiny_saved_model[0]}",
         f"--images_dir={photos}", f"--output_dir={out}", "--temperatures=0.38,1.0",
         "--num_figures=2", f"--training_history={tiny_run}/history.csv"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.load(open(out / "metrics.json"))
    assert metrics["images"] == 3 and metrics["left_out"][0]["file"].endswith("bad.png")
    methods = metrics["methods"]
    assert set(methods) == {"gray", "mean chroma", "T=0.38", "T=1"}
    assert methods["gray"]["colourfulness"] == 0.0
    for m in methods.values():
        assert 0 < m["auc"] <= 1 and 0 < m["auc_rebalanced"] <= 1 and np.isfinite(m["psnr"])
    assert "| gray |" in (out / "report.md").read_text()
    # Recognition (the `pretrained` extra is among the test extras): each method judged.
    assert metrics["recognition_judge"].startswith("EfficientNet-Lite2")
    for m in methods.values():
        assert m["recognition"] in (0.0, 1 / 3, 2 / 3, 1.0) and m["fd"] >= -1e-6
    assert methods["gray"]["recognition_gap_closed"] == 0.0
    assert "recognised (gap closed)" in (out / "report.md").read_text()
    names = set(os.listdir(out / "figures"))
    assert {"bin_histogram.png", "auc_curve.png", "training_curve.png"} <= names
    assert len([n for n in names if n.startswith("strip_")]) == 2


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / mse)


def test_metrics_equal_hand_computed_values(luma_saved_model, tmp_path):
    # Photos smaller than the 32 px working size (no resize), the luma-following model
    # and numpy oracles built from published constants: gray is Y = 0.299 R + 0.587 G
    # + 0.114 B on all channels, the model's output is numpy_oracle.
    from colorize_tf.chroma.bins import Bins
    from colorize_tf.evaluation import reports
    from colorize_tf.modeling import metrics
    from colorize_tf.serving import inference
    photos = [make_photo(24, 30, seed=i) for i in range(3)]
    paths = [write_png(str(tmp_path / "photos" / f"{i}.png"), p) for i, p in enumerate(photos)]
    result = reports.evaluate_to(str(tmp_path / "eval"), inference.Colorizer(luma_saved_model),
                                 paths, [0.3, 1.0], num_figures=0)
    centres = Bins.load(os.path.join(luma_saved_model, "assets")).centres
    gray = [np.repeat(np.round(p @ np.array([0.299, 0.587, 0.114]))[..., None], 3, -1)
            for p in photos]
    methods = result["methods"]
    assert methods["gray"]["psnr"] == pytest.approx(
        np.mean([_psnr(g, p) for g, p in zip(gray, photos)]), abs=0.05)
    for t in (0.3, 1.0):
        expected = [numpy_oracle(p, centres, t) for p in photos]
        assert methods[f"T={t:g}"]["psnr"] == pytest.approx(
            np.mean([_psnr(e, p) for e, p in zip(expected, photos)]), abs=0.05)
        # Colourfulness from its formula (Hasler and Suesstrunk), on the oracle's output.
        assert methods[f"T={t:g}"]["colourfulness"] == pytest.approx(
            np.mean([metrics.colourfulness(e) for e in expected]), rel=0.02)
    assert methods["T=0.3"]["psnr"] != pytest.approx(methods["T=1"]["psnr"], abs=0.05)


def test_evaluate_cli_reports_domains_and_label_groups(luma_saved_model, tmp_path):
    for rel, seed in [("general/faces/a.png", 0), ("general/faces/b.png", 1),
                      ("general/street/c.png", 2), ("nature/sea/d.png", 3)]:
        write_png(str(tmp_path / rel), make_photo(24, 30, seed=seed))
    (tmp_path / "general" / "labels.csv").write_text(
        "path,race\nfaces/a.png,Black\nfaces/b.png,White\nfaces/gone.png,Indian\n")
    out = tmp_path / "eval"
    other = tmp_path / "models" / "other" / "3"
    shutil.copytree(luma_saved_model, other)
    result = subprocess.run(
        [sys.executable, "-m", "colorize_tf.evaluate",
         f"--saved_model={luma_saved_model},{other.parent}",
         f"--images_dir={tmp_path / 'general'},landscapes={tmp_path / 'nature'}",
         f"--labels_csv={tmp_path / 'general' / 'labels.csv'}", f"--output_dir={out}",
         "--temperatures=0.38", "--num_figures=0"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "1 rows name no file, left out (first: faces/gone.png)" in result.stderr
    name = os.path.basename(os.path.dirname(os.path.normpath(luma_saved_model)))
    metrics_json = json.load(open(out / name / "metrics.json"))
    assert metrics_json["labels_csv"]["labelled"] == 2
    assert metrics_json["labels_csv"]["missing_files"] == {"count": 1,
                                                           "first": ["faces/gone.png"]}
    groups = metrics_json["groups"]
    assert {k: v["images"] for k, v in groups.items()} == {
        "domain: faces": 2, "domain: street": 1, "domain: landscapes": 1,
        "race: Black": 1, "race: White": 1}
    # The race spread at the default temperature, from the two faces' own PSNRs; with one
    # photo a group every random deal gives the same gap: p = 1.
    default = scoring.result_default_method(metrics_json)
    race = metrics_json["group_spreads"]["race"]
    assert race["spread"] == pytest.approx(abs(
        groups["race: Black"]["methods"][default]["psnr"] -
        groups["race: White"]["methods"][default]["psnr"]))
    assert race["p_value"] == 1.0
    report = (out / name / "report.md").read_text()
    assert "| domain: landscapes | 1 |" in report and "- race: PSNR spread" in report
    assert "labels 2 of the 4 photos; left out: 1 rows naming no file." in report
    # Two copies of one model: one table, both models' cells equal on every row.
    comparison = (out / "comparison.md").read_text().splitlines()
    rows = [line.strip("| ").split(" | ") for line in comparison if line.startswith("| ")][1:]
    assert [r[0] for r in rows] == ["all", "domain: faces", "domain: landscapes",
                                    "domain: street", "race: Black", "race: White"]
    assert rows[0][1] == "4" and all(r[3:5] == r[5:7] for r in rows)
    assert sum(line.startswith(f"- {model}, race: ") for line in comparison
               for model in (name, "other")) == 2
    bad = subprocess.run(
        [sys.executable, "-m", "colorize_tf.evaluate", f"--saved_model={luma_saved_model}",
         f"--images_dir={tmp_path / 'general'}", f"--labels_csv={tmp_path / 'no.csv'}",
         f"--output_dir={out}2"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "--labels_csv" in bad.stderr and "Traceback" not in bad.stderr
    (tmp_path / "elsewhere.csv").write_text("path,race\nfaces/a.png,Black\n")
    nothing = subprocess.run(
        [sys.executable, "-m", "colorize_tf.evaluate", f"--saved_model={luma_saved_model}",
         f"--images_dir={tmp_path / 'general'}", f"--labels_csv={tmp_path / 'elsewhere.csv'}",
         f"--output_dir={out}3"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert nothing.returncode == 2 and "labels none of the 3 photos" in nothing.stderr
