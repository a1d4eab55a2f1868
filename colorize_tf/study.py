r"""The seed papers' experiments as one reproducible study.

    python -m colorize_tf.study                      # every variant of configs/study/
    python -m colorize_tf.study --configs=colorize_tf/configs/study/cls_yuv32.flags,...

Each variant is a training flagfile (configs/study/*.flags, sharing common.flags:
the same records, crop size, optimizer steps, seed). The study builds the records the
variants name (runs/study/records/yuv32, lab313), trains each variant into its own
run dir, exports it, evaluates it on the test photos with a temperature sweep, and
writes the report (--report_dir, default docs/study/: README.md, figures, and each
variant's metrics.json). It is resumable: records, runs, exports and evaluations that
are complete are kept; a killed training resumes where it stopped. Building records,
training and exporting run as their own commands (python -m ...), one after the other.
"""
from colorize_tf import cli  # first: as an entry point, hide TF start-up lines
if __name__ == "__main__":
    cli.quiet_tensorflow()
import csv
import glob
import json
import os
import subprocess
import sys

import numpy as np
import cv2

from colorize_tf import safe_write
from colorize_tf.chroma import color
from colorize_tf.data import records
from colorize_tf.evaluation import photos
from colorize_tf.evaluation import reports
from colorize_tf.evaluation import scoring
from colorize_tf.evaluation import study_report
from colorize_tf.modeling.model import load_checkpoint
from colorize_tf.modeling import scene_classifier
from colorize_tf.serving import inference
from colorize_tf.training.state import CHECKPOINT_DIR, HISTORY_NAME, StateError, read_state
from colorize_tf.training.config import TrainConfig

STUDY_CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "study")
COMMON = "common.flags"
# The record sets the variants may name (the basename of their --records_dir), with
# the data-prep flags that build them: YUV with the 32 most frequent bins and lambda
# 0.2 (ColorUNet); Lab with every occupied 10x10 ab cell and lambda 0.5 (Zhang).
RECORD_SETS = {
    "yuv32": ["--color_space=yuv", "--num_bins=32", "--rebalance_lambda=0.2"],
    "lab313": ["--color_space=lab", "--num_bins=0", "--rebalance_lambda=0.5"],
}


def define_flags(fv):
    """Defines this entry point's flags on the FlagValues fv."""
    d = cli.definer(fv)
    d.list("configs", None, "Variant flagfiles; default: every configs/study/*.flags but "
           "common.flags.")
    d.string("train_dir", os.path.join("..", "shared", "data", "landscapes", "train"),
             "Colour photos the records are built from.")
    d.string("test_dir", os.path.join("..", "shared", "data", "landscapes", "test"),
             "Colour photos the variants are evaluated on.")
    d.integer("max_test_images", 0, "Evaluate on at most this many test photos (evenly "
              "spread); 0: all.")
    d.list("temperatures", [f"{t:g}" for t in scoring.DEFAULT_TEMPERATURES],
           "The temperature sweep.")
    d.integer("frame_size", 128, "Frame of the records (px).")
    d.integer("workers", 2, "Data-prep worker processes.")
    d.integer("num_grid_photos", 8, "Test photos in the side-by-side grid.")
    d.integer("scene_test_images", 400, "Test photos the scene classifier is given in "
              "colour, gray and colorized by each variant (evenly spread); 0: skip it.")
    d.integer("scene_epochs", 8, "Epochs of the scene classifier.")
    d.string("report_dir", os.path.join("docs", "study"), "Where the report goes.")
    d.string("reference_model", "landscapes",
             "A SavedModel evaluated beside the variants (default: the shipped landscapes "
             "model, as the study's photos are landscapes); empty: none.")


class Variant:
    """One flagfile of the study: where its records, run, export and evaluation live."""

    def __init__(self, flagfile, report_dir):
        self.flagfile = flagfile
        self.name = os.path.splitext(os.path.basename(flagfile))[0]
        try:
            self.config = TrainConfig.from_flagfile(flagfile)
        except (OSError, ValueError) as e:
            raise cli.UsageError(f"--configs: {e}") from None
        self.records_dir = self.config.data.records_dir
        self.record_set = os.path.basename(os.path.normpath(self.records_dir))
        if self.record_set not in RECORD_SETS:
            raise cli.UsageError(f"{flagfile}: --records_dir {self.records_dir!r} is none of "
                                 f"the study's record sets {sorted(RECORD_SETS)}")
        self.model_dir = self.config.runtime.model_dir
        self.epochs = self.config.optimization.epochs
        # runs/study/runs/NAME -> runs/study/saved_models/NAME
        self.export_dir = os.path.join(os.path.dirname(os.path.dirname(
            os.path.normpath(self.model_dir))), "saved_models", self.name)
        self.eval_dir = os.path.join(report_dir, "variants", self.name)

    def epochs_done(self):
        state, _ = read_state(self.model_dir) \
            if os.path.isdir(self.model_dir) else (None, [])
        return state["epoch"] if state else 0

    def saved_model(self):
        """The newest exported version, or None."""
        try:
            return inference.resolve_saved_model(self.export_dir)
        except inference.ModelNotFound:
            return None


def _run(command, log_path, what):
    """Runs `python -m ...` with its output in log_path; UsageError if it fails."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "a") as log:
        result = subprocess.run([sys.executable, "-m", *command], stdout=log,
                                stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise cli.UsageError(f"{what} failed (exit {result.returncode}); see {log_path}")


def build_record_sets(variants, train_dir, frame_size, workers, log_dir):
    """Builds each record set the variants name, unless it is complete (report.json)."""
    for records_dir in sorted({v.records_dir for v in variants}):
        if os.path.exists(os.path.join(records_dir, records.REPORT_NAME)):
            print(f"study: records {records_dir}: complete, kept")
            continue
        print(f"study: building records {records_dir} ...", flush=True)
        name = os.path.basename(os.path.normpath(records_dir))
        _run(["data_prep.build_records", f"--input_dir={train_dir}",
              f"--output_dir={records_dir}", f"--frame_size={frame_size}",
              f"--workers={workers}", *RECORD_SETS[name]],
             os.path.join(log_dir, f"records_{name}.log"), f"building {records_dir}")


def train_and_export(variant, log_dir):
    """Trains the variant to its last epoch (resuming a killed run), then exports it."""
    done = variant.epochs_done()
    if done < variant.epochs:
        print(f"study: {variant.name}: training epochs {done + 1}..{variant.epochs} "
              f"(log: {os.path.join(log_dir, variant.name + '.log')})", flush=True)
        # Its settings as read here, written out whole: the run does not depend on the
        # working directory finding the flagfiles it names (common.flags).
        settings = os.path.join(log_dir, f"{variant.name}.flags")
        os.makedirs(log_dir, exist_ok=True)
        variant.config.to_flagfile(settings)
        _run(["colorize_tf.train", f"--flagfile={settings}"],
             os.path.join(log_dir, f"{variant.name}.log"), f"training {variant.name}")
    if variant.saved_model() is None:
        _run(["colorize_tf.export", f"--model_dir={variant.model_dir}",
              f"--export_dir={variant.export_dir}"],
             os.path.join(log_dir, f"{variant.name}.log"), f"exporting {variant.name}")


def evaluate_saved_model(name, saved_model, eval_dir, paths, temperatures):
    """Evaluates a SavedModel into eval_dir unless that is already done for this export
    and these photos; -> metrics.json dict."""
    metrics_path = os.path.join(eval_dir, "metrics.json")
    if os.path.exists(metrics_path):
        with open(metrics_path) as f:
            result = json.load(f)
        if result.get("saved_model") == saved_model and \
                result.get("paths") == len(paths) and \
                result.get("temperatures") == list(temperatures):
            return result
    print(f"study: {name}: evaluating on {len(paths)} photos", flush=True)
    result = reports.evaluate_to(eval_dir, inference.Colorizer(saved_model), paths,
                                 temperatures, num_figures=0)
    result["paths"] = len(paths)
    safe_write.write_json(metrics_path, result)
    return result


def training_summary(variant):
    """-> (parameters, training images/s, wall seconds) of the variant's run."""
    path = os.path.join(variant.model_dir, CHECKPOINT_DIR, "last.keras")
    parameters = load_checkpoint(path).count_params()
    rows = _history(variant)
    seconds = sum(float(r.get("epoch_seconds") or 0) for r in rows)
    optimization = variant.config.optimization
    images = optimization.steps_per_epoch * optimization.batch_size * len(rows)
    return parameters, images / max(seconds, 1e-9), seconds


def _history(variant):
    path = os.path.join(variant.model_dir, HISTORY_NAME)
    with open(path) as f:
        return list(csv.DictReader(f))


def scene_study(variants, test_paths, count, epochs, temperature, work_dir):
    """Seed 003's question: a scene classifier trained on colour photos, given the test
    photos in colour, gray, and colorized by each variant; -> {input: {"accuracy",
    "confusion"}, "classes": [...]} (the class of a test photo is its folder's name)."""
    records_dir = next(v.records_dir for v in variants)
    classes = records.Report.load(records_dir).classes
    if len(classes) < 2:
        raise cli.UsageError(f"{records_dir} has fewer than two classes: no scene study")
    model = scene_classifier.train_scene_classifier(
        records_dir, os.path.join(work_dir, "scene_classifier.keras"), len(classes),
        epochs=epochs)
    chosen = [test_paths[i] for i in np.linspace(0, len(test_paths) - 1,
                                                 min(count, len(test_paths))).astype(int)]
    truths, labels = [], []
    for path in chosen:
        folder = os.path.basename(os.path.dirname(path))
        if folder not in classes:
            continue
        try:
            truths.append(photos.read_ground_truth(
                path, gray_threshold=color.GRAY_SPREAD))
        except photos.LeftOut:
            continue
        labels.append(classes.index(folder))
    inputs = {"colour": truths,
              "gray": [np.repeat(cv2.cvtColor(t, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
                       for t in truths]}
    for v in variants:
        print(f"study: scene classifier on {len(truths)} photos colorized by {v.name}",
              flush=True)
        colorizer = inference.Colorizer(v.saved_model())
        inputs[v.name] = [colorizer.colorize(t, temperature) for t in truths]
    out = {"classes": classes, "photos": len(truths)}
    for name, images in inputs.items():
        accuracy, matrix = scene_classifier.confusion(
            labels, scene_classifier.classify(model, images), len(classes))
        out[name] = {"accuracy": accuracy, "confusion": matrix.tolist()}
    return out


def main(argv=None):
    f, _ = cli.parse(define_flags, argv)
    try:
        temperatures = _check_flags(f)
        configs = f["configs"] or sorted(
            p for p in glob.glob(os.path.join(STUDY_CONFIGS, "*.flags"))
            if os.path.basename(p) != COMMON)
        variants = [Variant(path, f["report_dir"]) for path in configs]
        paths = photos.list_photos(f["test_dir"], f["max_test_images"])
        log_dir = os.path.join("runs", "study", "logs")
        build_record_sets(variants, f["train_dir"], f["frame_size"], f["workers"], log_dir)
        results = {}
        for variant in variants:
            train_and_export(variant, log_dir)
            results[variant.name] = evaluate_saved_model(
                variant.name, variant.saved_model(), variant.eval_dir, paths, temperatures)
        reference = None
        if f["reference_model"]:  # the shipped model, for "is a variant better?"
            saved_model = inference.resolve_saved_model(f["reference_model"])
            reference = (os.path.relpath(saved_model), evaluate_saved_model(
                "reference", saved_model, os.path.join(f["report_dir"], "reference"), paths,
                temperatures))
        scenes = None
        if f["scene_test_images"]:
            default = scoring.default_method(temperatures)
            scenes = scene_study(variants, paths, f["scene_test_images"], f["scene_epochs"],
                                 float(default[2:]), os.path.join("runs", "study"))
        study_report.write(f["report_dir"], variants, results, paths, temperatures,
                           f["num_grid_photos"], training_summary, scenes, reference)
    except (cli.UsageError, inference.ModelError, reports.NoPhotoEvaluated,
            StateError) as e:
        cli.fail("study", e)
    print(f"study: report in {os.path.join(f['report_dir'], 'README.md')}")


MIN_FRAME_SIZE = 8  # px: build_records' own lower bound for --frame_size


def _check_flags(f):
    """-> temperatures; refuses bad flags before any work (UsageError)."""
    for name in ("train_dir", "test_dir"):
        if not os.path.isdir(f[name]):
            raise cli.UsageError(f"--{name} {f[name]!r} is not a folder")
    temperatures = cli.parse_temperatures(f["temperatures"])
    for name in ("max_test_images", "num_grid_photos", "scene_test_images"):
        if f[name] < 0:
            raise cli.UsageError(f"--{name} must be >= 0, got {f[name]}")
    for path in f["configs"] or []:
        if not os.path.isfile(path):
            raise cli.UsageError(f"--configs: no flagfile {path!r}")
    if f["scene_epochs"] < 1:
        raise cli.UsageError(f"--scene_epochs must be >= 1, got {f['scene_epochs']}")
    if f["workers"] < 1:
        raise cli.UsageError(f"--workers must be >= 1, got {f['workers']}")
    if f["frame_size"] < MIN_FRAME_SIZE:
        raise cli.UsageError(f"--frame_size must be >= {MIN_FRAME_SIZE} px, got "
                             f"{f['frame_size']}")
    cli.check_output_dir(f["report_dir"], "--report_dir")
    return temperatures


if __name__ == "__main__":
    cli.run_main("study", main)
