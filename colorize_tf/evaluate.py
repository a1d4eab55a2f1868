r"""Evaluate a SavedModel on colour photos the way the colorization literature does.

    python -m colorize_tf.evaluate --saved_model=saved_models/colorunet_landscapes \
        --images_dir=../shared/data/landscapes/test --output_dir=out/eval

Each photo is reduced to its luma, colorized (one forward pass, then the annealed
mean at every temperature), and compared with the original (evaluation.py: the
metrics, batched as compiled graphs). Baselines in the same table: gray (chroma 0)
and the training set's mean chroma. Writes metrics.json, report.md and figures
(temperature strips, confidence maps, bin histograms, AuC curves).
"""
from colorize_tf import cli  # first: as an entry point, hide TF start-up lines
if __name__ == "__main__":
    cli.quiet_tensorflow()
import os
import sys
import time

import cv2
import numpy as np

from colorize_tf import color
from colorize_tf import evaluation
from colorize_tf import figures
from colorize_tf import image_files
from colorize_tf import inference
from colorize_tf import metrics
from colorize_tf import safe_write
from colorize_tf.evaluation import GRAY
from colorize_tf.evaluation import MEAN


def list_images(images_dir, max_images=0):
    files, _ = image_files.list_files([images_dir], image_files.IMAGE_EXTENSIONS)
    paths = [path for path, _ in files]
    if max_images and len(paths) > max_images:  # an even spread over sub-folders
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, max_images).astype(int)]
    return paths


def evaluate(colorizer, paths, temperatures, output_dir, num_figures=6,
             gray_threshold=color.GRAY_SPREAD, max_pixels=image_files.DEFAULT_MAX_PIXELS,
             batch_size=evaluation.BATCH_SIZE):
    """Evaluates colorizer on the photos at paths; writes metrics.json, report.md and
    figures/ to output_dir; -> the metrics.json dict."""
    figure_dir = os.path.join(output_dir, "figures")
    os.makedirs(figure_dir, exist_ok=True)
    names = evaluation.method_names(temperatures)
    bar = cli.Progress(len(paths), "photo")
    start = time.time()

    def save_figures(index, path, results, confidence, truth):
        _save_photo_figures(figure_dir, index, path, results, confidence, truth, names)
    totals = evaluation.evaluate(colorizer, paths, temperatures, num_figures, gray_threshold,
                                 max_pixels, batch_size, on_photos=bar.update,
                                 on_figure=save_figures)
    if totals.evaluated == 0:
        raise cli.UsageError("no photo could be evaluated")
    methods, truth_c = totals.summary()
    result = {
        "images": totals.evaluated, "left_out": totals.left_out,
        "saved_model": colorizer.path, "color_space": colorizer.color_space,
        "num_bins": colorizer.bins.num_bins, "temperatures": list(temperatures),
        "ground_truth": {"colourfulness": truth_c}, "methods": methods,
        "seconds": round(time.time() - start, 1)}
    _save_summary_figures(figure_dir, totals, evaluation.default_method(temperatures))
    safe_write.write_json(os.path.join(output_dir, "metrics.json"), result)
    safe_write.write_bytes(os.path.join(output_dir, "report.md"), report_markdown(result).encode())
    return result


def _save_photo_figures(figure_dir, index, path, results, confidence, truth, names):
    """strip_NN_<stem>.png (gray, each temperature, truth) and confidence_NN_<stem>.png."""
    stem = os.path.splitext(os.path.basename(path))[0]
    figures.save_png(os.path.join(figure_dir, f"strip_{index:02d}_{stem}.png"),
                     figures.labelled_strip([results[GRAY]] + [results[n] for n in
                                            names[2:]] + [truth],
                                            ["gray"] + names[2:] + ["truth"]))
    heat = cv2.applyColorMap(np.round(confidence * 255).astype(np.uint8),
                             cv2.COLORMAP_VIRIDIS)[..., ::-1]
    figures.save_png(os.path.join(figure_dir, f"confidence_{index:02d}_{stem}.png"),
                     figures.labelled_strip([results[GRAY], heat, truth],
                                            ["gray", "confidence (top-1 p)", "truth"]))


def _save_summary_figures(figure_dir, totals, default):
    """bin_histogram.png (truth vs the default temperature) and auc_curve.png."""
    predicted = totals.methods[default].bin_counts
    figures.save_png(os.path.join(figure_dir, "bin_histogram.png"), figures.bar_plot(
        {"truth": totals.truth_bins / totals.truth_bins.sum(),
         f"predicted ({default})": predicted / predicted.sum()},
        "bin frequencies: truth vs predicted", "bin (most frequent first)"))
    thresholds = metrics.AUC_THRESHOLDS
    figures.save_png(os.path.join(figure_dir, "auc_curve.png"), figures.line_plot(
        {n: (thresholds, totals.methods[n].curve.rebalanced_curve())
         for n in [GRAY, MEAN, default]},
        "class-rebalanced accuracy vs ab threshold", "threshold (Lab ab units)"))


def report_markdown(result):
    rows = [
        f"Evaluated {result['images']} photos ({len(result['left_out'])} left out: unreadable, "
        "or gray ground truth); "
        f"{result['num_bins']} bins in {result['color_space'].upper()}; ground-truth "
        f"colourfulness {result['ground_truth']['colourfulness']:.1f}.",
        "",
        "| method | PSNR dB | SSIM | MSE ab | AuC | AuC rebal. | colourfulness (ratio) | KL bins |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, m in result["methods"].items():
        rows.append(f"| {name} | {m['psnr']:.2f} | {m['ssim']:.4f} | {m['mse_ab']:.1f} | "
                    f"{m['auc']:.4f} | {m['auc_rebalanced']:.4f} | {m['colourfulness']:.1f} "
                    f"({m['colourfulness_ratio']:.2f}) | {m['kl_bins']:.3f} |")
    return "\n".join(rows) + "\n"


def define_flags(fv):
    """Defines this entry point's flags on the FlagValues fv."""
    d = cli.definer(fv)
    d.string("saved_model", inference.DEFAULT_SAVED_MODEL, "SavedModel (version or base dir).")
    d.string("images_dir", None, "Folder of colour photos (recursive).")
    d.string("output_dir", None, "Where metrics.json, report.md and figures/ go.")
    d.list("temperatures", [f"{t:g}" for t in evaluation.DEFAULT_TEMPERATURES],
           "Annealed-mean temperatures.")
    d.integer("max_images", 0, "Evaluate at most this many photos (evenly spread); 0: all.")
    d.integer("num_figures", 6, "Photos drawn as temperature strips and confidence maps.")
    d.string("training_history", None, "A run's history.csv: also draws "
             "figures/training_curve.png.")
    d.integer("max_pixels", image_files.DEFAULT_MAX_PIXELS, "Photos with more pixels are "
              "left out before decoding.")
    d.integer("batch_size", evaluation.BATCH_SIZE, "Photos of one size per model call.")


def check_flags(f):
    """-> temperatures [float]; refuses bad flags before any work (UsageError)."""
    if not f["images_dir"]:
        raise cli.UsageError("--images_dir is required")
    cli.check_output_dir(f["output_dir"])
    if not os.path.isdir(f["images_dir"]):
        raise cli.UsageError(f"--images_dir {cli.display_path(f['images_dir'])!r} is not a "
                             "folder")
    try:
        temperatures = [float(t) for t in f["temperatures"]]
    except ValueError:
        raise cli.UsageError(f"--temperatures must be numbers, got {f['temperatures']}")
    if not temperatures or not all(0 < t < float("inf") for t in temperatures):
        raise cli.UsageError("--temperatures must be > 0 (e.g. 0.2,0.38,1)")
    for name in ("max_images", "num_figures"):
        if f[name] < 0:
            raise cli.UsageError(f"--{name} must be >= 0, got {f[name]}")
    if f["batch_size"] < 1:
        raise cli.UsageError(f"--batch_size must be >= 1, got {f['batch_size']}")
    if f["max_pixels"] < 1:
        raise cli.UsageError(f"--max_pixels must be >= 1, got {f['max_pixels']}")
    if f["training_history"] and not os.path.isfile(f["training_history"]):
        raise cli.UsageError(f"--training_history {f['training_history']!r} does not exist")
    return temperatures


def main(argv=None):
    f, _ = cli.parse(define_flags, argv)
    try:
        temperatures = check_flags(f)
        paths = list_images(f["images_dir"], f["max_images"])
        if not paths:
            raise cli.UsageError(f"no photos in {f['images_dir']!r}")
        result = evaluate(inference.Colorizer(f["saved_model"]), paths, temperatures,
                          f["output_dir"], f["num_figures"], max_pixels=f["max_pixels"],
                          batch_size=f["batch_size"])
        if f["training_history"]:
            figures.save_png(os.path.join(f["output_dir"], "figures", "training_curve.png"),
                             figures.training_curves(f["training_history"]))
    except cli.UsageError as e:
        cli.fail("evaluate", e)
    except OSError as e:
        cli.fail("evaluate", f"cannot write to {f['output_dir']!r}: {e.strerror or e}")
    print(report_markdown(result))
    for failure in result["left_out"]:
        print(f"left out: {failure['file']}: {failure['reason']}", file=sys.stderr)
    print(f"wrote {os.path.join(f['output_dir'], 'metrics.json')} and report.md, figures/")


if __name__ == "__main__":
    cli.run_main("evaluate", main)
