import json
import os
import subprocess
import sys

import numpy as np

from tests.conftest import make_photo, write_png

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
    names = set(os.listdir(out / "figures"))
    assert {"bin_histogram.png", "auc_curve.png", "training_curve.png"} <= names
    assert len([n for n in names if n.startswith("strip_")]) == 2
