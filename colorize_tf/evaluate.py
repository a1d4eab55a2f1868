r"""Evaluate a SavedModel on colour photos the way the colorization literature does.

    python -m colorize_tf.evaluate --saved_model=saved_models/colorunet_landscapes \
        --images_dir=../shared/data/landscapes/test --output_dir=out/eval

Each photo is reduced to its luma, colorized (one forward pass, then the annealed
mean at every temperature), and compared with the original: PSNR and SSIM on RGB,
MSE on Lab ab, AuC of the cumulative ab-error curve over 0-150 (Zhang et al. 2016)
raw and class-rebalanced (classes: Lab ab cells of side 10, the true colour's),
colourfulness (Hasler and Suesstrunk 2003) against the truth's, and the histogram
of predicted vs true bins with its KL divergence (ColorUNet figure 9). Baselines in
the same table: gray (chroma 0) and the training set's mean chroma.
Writes metrics.json, report.md and figures (temperature strips, confidence maps,
bin histograms, AuC curves).
"""
from colorize_tf import cli  # first: as an entry point, hide TF start-up lines
if __name__ == "__main__":
    cli.quiet_tensorflow()
import dataclasses
import os
import sys
import time

import cv2
import numpy as np
import tensorflow as tf

from colorize_tf import bins as bins_lib
from colorize_tf import color
from colorize_tf import decoding
from colorize_tf import figures
from colorize_tf import image_files
from colorize_tf import inference
from colorize_tf import metrics
from colorize_tf import safe_write

GRAY = "gray"
MEAN = "mean chroma"
_LAB_CLASSES = bins_lib.DEFAULT_GRIDS[color.LAB]


def list_images(images_dir, max_images=0):
    files, _ = image_files.list_files([images_dir], image_files.IMAGE_EXTENSIONS)
    paths = [path for path, _ in files]
    if max_images and len(paths) > max_images:  # an even spread over sub-folders
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, max_images).astype(int)]
    return paths


def read_ground_truth(path, max_pixels=image_files.DEFAULT_MAX_PIXELS):
    """A colour photo -> BGR uint8 [H, W, 3] (EXIF orientation applied); ImageRejected
    for what cannot serve as a ground truth (bombs, truncated JPEGs, undecodable)."""
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        raise image_files.ImageRejected("empty file (0 bytes)")
    image_files.check_pixels(data, max_pixels)
    if data[:2] == b"\xff\xd8" and not image_files.jpeg_is_complete(data):
        raise image_files.ImageRejected("truncated JPEG (no end-of-image marker): its "
                                        "missing part would count as gray")
    try:
        truth = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        truth = None
    if truth is None:
        raise image_files.ImageRejected("OpenCV cannot decode it")
    return truth


class _MethodScores:
    def __init__(self, num_bins):
        self.values = {"psnr": [], "ssim": [], "mse_ab": [], "colourfulness": []}
        self.curve = metrics.ErrorCurve(_LAB_CLASSES.num_cells)
        self.bin_counts = np.zeros(num_bins)

    def add(self, result, truth, truth_ab, truth_class, bins, space):
        result_f = result.astype(np.float32) / 255.0
        ab = color.rgb_to_lab(result_f).numpy()[..., 1:]
        error = np.sqrt(np.sum((ab - truth_ab) ** 2, axis=-1))
        self.values["psnr"].append(metrics.psnr(result, truth))
        self.values["ssim"].append(metrics.ssim(result, truth))
        self.values["mse_ab"].append(float(np.mean((ab - truth_ab) ** 2)))
        self.values["colourfulness"].append(metrics.colourfulness(result))
        self.curve.add(error, truth_class)
        chroma = color.rgb_to_luma_chroma(result_f, space)[1]
        predicted = bins_lib.encode_hard(chroma, bins).numpy().reshape(-1)
        self.bin_counts += np.bincount(predicted, minlength=len(self.bin_counts))

    def summary(self, truth_colourfulness, truth_bins):
        out = {k: float(np.mean(v)) for k, v in self.values.items()}
        out["auc"] = self.curve.auc()
        out["auc_rebalanced"] = self.curve.rebalanced_auc()
        out["colourfulness_ratio"] = out["colourfulness"] / max(truth_colourfulness, 1e-9)
        out["kl_bins"] = metrics.kl_divergence(truth_bins, self.bin_counts)
        return out


def evaluate(colorizer, paths, temperatures, output_dir, num_figures=6,
             gray_threshold=color.GRAY_SPREAD,
             max_pixels=image_files.DEFAULT_MAX_PIXELS):
    """Runs every photo through the model; writes metrics.json, report.md, figures."""
    bins = colorizer.bins
    names = [GRAY, MEAN] + [f"T={t:g}" for t in temperatures]
    totals = _Totals({n: _MethodScores(bins.num_bins) for n in names},
                     np.zeros(bins.num_bins), [], [])
    figure_dir = os.path.join(output_dir, "figures")
    os.makedirs(figure_dir, exist_ok=True)
    bar = cli.Progress(len(paths), "photo")
    start = time.time()
    for i, path in enumerate(paths):
        try:
            truth = _ground_truth_in_colour(path, max_pixels, gray_threshold)
        except (OSError, image_files.ImageRejected, _GrayTruth) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            totals.left_out.append({"file": cli.display_path(path), "reason": reason})
            bar.update(i + 1)
            continue
        results, confidence = _evaluate_photo(colorizer, truth, temperatures, names, totals)
        if i < num_figures:
            _save_photo_figures(figure_dir, i, path, results, confidence, truth, names)
        bar.update(i + 1)
    if len(totals.left_out) == len(paths):
        raise cli.UsageError("no photo could be evaluated")
    result = _summary(colorizer, totals, names, temperatures, len(paths), time.time() - start)
    _save_summary_figures(figure_dir, totals, names)
    safe_write.write_json(os.path.join(output_dir, "metrics.json"), result)
    safe_write.write_bytes(os.path.join(output_dir, "report.md"), report_markdown(result).encode())
    return result


class _GrayTruth(ValueError):
    """A ground truth with no colour to compare (its gray PSNR would be infinite)."""


@dataclasses.dataclass
class _Totals:
    scores: dict  # method name -> _MethodScores
    truth_bins: np.ndarray  # [n] pixel count of each true bin
    truth_colourfulness: list  # one value per photo
    left_out: list  # [{"file", "reason"}]


def _ground_truth_in_colour(path, max_pixels, gray_threshold):
    """-> RGB uint8 [H, W, 3] of a colour photo; _GrayTruth for a gray or single-tint
    one (chroma spread below gray_threshold, color.chroma_spread)."""
    truth = np.ascontiguousarray(read_ground_truth(path, max_pixels)[..., ::-1])
    spread = color.chroma_spread(color.rgb_to_luma_chroma(
        truth.astype(np.float32) / 255.0, color.YUV)[1])
    if spread < gray_threshold:
        raise _GrayTruth(f"ground truth is gray or single-tint (chroma spread {spread:.4f})")
    return truth


def _evaluate_photo(colorizer, truth, temperatures, names, totals):
    """Colorizes one ground truth by every method and adds its scores to totals;
    -> ({method: RGB uint8}, confidence [H, W] at the default temperature)."""
    bins, space = colorizer.bins, colorizer.color_space
    truth_f = truth.astype(np.float32) / 255.0
    truth_ab = color.rgb_to_lab(truth_f).numpy()[..., 1:]
    truth_class = bins_lib.cell_index(truth_ab, _LAB_CLASSES).numpy()
    truth_chroma = color.rgb_to_luma_chroma(truth_f, space)[1]
    totals.truth_bins += np.bincount(
        bins_lib.encode_hard(truth_chroma, bins).numpy().reshape(-1), minlength=bins.num_bins)
    totals.truth_colourfulness.append(metrics.colourfulness(truth))
    luma, probabilities = colorizer.predict_probabilities(truth)
    mean_chroma = np.sum(np.asarray(bins.centres) * bins.prior[:, None], axis=0)
    results = {
        GRAY: color.luma_chroma_to_rgb(luma, tf.zeros_like(truth_chroma), space),
        MEAN: color.luma_chroma_to_rgb(
            luma, tf.broadcast_to(tf.constant(mean_chroma, tf.float32),
                                  truth_chroma.shape), space)}
    results = {k: tf.image.convert_image_dtype(v, tf.uint8, saturate=True).numpy()
               for k, v in results.items()}
    confidence = None
    for t, name in zip(temperatures, names[2:]):
        results[name], top1 = colorizer.render(luma, probabilities, t)
        if confidence is None or abs(t - decoding.DEFAULT_TEMPERATURE) < 1e-6:
            confidence = top1
    for name in names:
        totals.scores[name].add(results[name], truth, truth_ab, truth_class, bins, space)
    return results, confidence


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


def _default_method(names):
    """The temperature method closest to decoding.DEFAULT_TEMPERATURE."""
    return min(names[2:], key=lambda n: abs(float(n[2:]) - decoding.DEFAULT_TEMPERATURE))


def _summary(colorizer, totals, names, temperatures, num_paths, seconds):
    """-> the metrics.json dict."""
    truth_c = float(np.mean(totals.truth_colourfulness))
    return {
        "images": num_paths - len(totals.left_out), "left_out": totals.left_out,
        "saved_model": colorizer.path, "color_space": colorizer.color_space,
        "num_bins": colorizer.bins.num_bins, "temperatures": list(temperatures),
        "ground_truth": {"colourfulness": truth_c},
        "methods": {n: totals.scores[n].summary(truth_c, totals.truth_bins) for n in names},
        "seconds": round(seconds, 1)}


def _save_summary_figures(figure_dir, totals, names):
    """bin_histogram.png (truth vs default temperature) and auc_curve.png."""
    default = _default_method(names)
    predicted = totals.scores[default].bin_counts
    figures.save_png(os.path.join(figure_dir, "bin_histogram.png"), figures.bar_plot(
        {"truth": totals.truth_bins / totals.truth_bins.sum(),
         f"predicted ({default})": predicted / predicted.sum()},
        "bin frequencies: truth vs predicted", "bin (most frequent first)"))
    thresholds = metrics.AUC_THRESHOLDS
    figures.save_png(os.path.join(figure_dir, "auc_curve.png"), figures.line_plot(
        {n: (thresholds, totals.scores[n].curve.rebalanced_curve())
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
    d.list("temperatures", ["0.2", "0.38", "0.6", "1.0"], "Annealed-mean temperatures.")
    d.integer("max_images", 0, "Evaluate at most this many photos (evenly spread); 0: all.")
    d.integer("num_figures", 6, "Photos drawn as temperature strips and confidence maps.")
    d.string("training_history", None, "A run's history.csv: also draws "
             "figures/training_curve.png.")
    d.integer("max_pixels", image_files.DEFAULT_MAX_PIXELS, "Photos with more pixels are "
              "left out before decoding.")


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
                          f["output_dir"], f["num_figures"], max_pixels=f["max_pixels"])
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
