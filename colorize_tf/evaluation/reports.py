"""An evaluation's outputs: metrics.json, per_photo.csv, report.md, the group and
comparison tables (markdown) and the figures, written by evaluate_to."""
import os
import re
import time

import cv2
import numpy as np

from colorize_tf import cli
from colorize_tf import errors
from colorize_tf import safe_write
from colorize_tf.chroma import color
from colorize_tf.data import image_files
from colorize_tf.evaluation import figures
from colorize_tf.evaluation import photos
from colorize_tf.evaluation import recognition
from colorize_tf.evaluation import scoring
from colorize_tf.evaluation import statistics
from colorize_tf.modeling import metrics


class NoPhotoEvaluated(errors.Error):
    """Not one of the photos could serve as a ground truth."""


def evaluate_to(output_dir, colorizer, paths, temperatures, num_figures=6,
                gray_threshold=color.GRAY_SPREAD, max_pixels=image_files.DEFAULT_MAX_PIXELS,
                batch_size=photos.BATCH_SIZE, groups=None, label_notes=None, judge=None):
    """Evaluates colorizer on the photos at paths (groups, judge: as scoring.evaluate's);
    writes metrics.json, per_photo.csv (statistics.write_per_photo), report.md and
    figures/ to output_dir; -> the metrics.json dict."""
    figure_dir = os.path.join(output_dir, "figures")
    os.makedirs(figure_dir, exist_ok=True)
    names = scoring.method_names(temperatures)
    bar = cli.Progress(len(paths), "photo")
    start = time.time()

    def save_figures(index, path, results, confidence, truth):
        _save_photo_figures(figure_dir, index, path, results, confidence, truth, names)
    totals = scoring.evaluate(colorizer, paths, temperatures, num_figures, gray_threshold,
                              max_pixels, batch_size, on_photos=bar.update,
                              on_figure=save_figures, groups=groups, judge=judge)
    if totals.evaluated == 0:
        raise NoPhotoEvaluated("no photo could be evaluated")
    methods, truth_c = totals.summary()
    result = {
        "images": totals.evaluated, "left_out": totals.left_out,
        "saved_model": colorizer.path, "color_space": colorizer.color_space,
        "num_bins": colorizer.bins.num_bins, "temperatures": list(temperatures),
        "default_temperature": colorizer.export_info.default_temperature,
        "ground_truth": {"colourfulness": truth_c}, "methods": methods,
        "bin_frequencies": {"truth": list(totals.truth_bins / totals.truth_bins.sum()), **{
            n: list(m.bin_counts / max(m.bin_counts.sum(), 1.0))
            for n, m in totals.methods.items()}},
        "groups": {name: {"images": totals.groups[name].evaluated,
                          "methods": totals.groups[name].summary(frechet=False)[0]}
                   for name in sorted(totals.groups, key=_group_order)},
        "seconds": round(time.time() - start, 1)}
    if label_notes:
        result["labels_csv"] = label_notes
    if judge is not None:
        result["recognition_judge"] = recognition.JUDGE_NAME
    default = scoring.result_default_method(result)
    result["group_spreads"] = statistics.group_spreads(
        {name: group.methods[default].per_image["psnr"] for name, group in
         totals.groups.items()})
    _save_summary_figures(figure_dir, totals, default)
    safe_write.write_json(os.path.join(output_dir, "metrics.json"), result)
    statistics.write_per_photo(os.path.join(output_dir, statistics.PER_PHOTO_NAME),
                               totals.per_photo_rows())
    safe_write.write_bytes(os.path.join(output_dir, "report.md"), report_markdown(result).encode())
    return result


def _group_order(name):
    """Domains first, then each label column; numbers in natural order (age 3-9
    before 10-19)."""
    kind, _, value = name.partition(": ")
    return (kind != "domain", kind,
            [(0, int(part), "") if part.isdigit() else (1, 0, part)
             for part in re.split(r"(\d+)", value)])


def _save_photo_figures(figure_dir, index, path, results, confidence, truth, names):
    """strip_NN_<stem>.png (gray, each temperature, truth) and confidence_NN_<stem>.png."""
    stem = os.path.splitext(os.path.basename(path))[0]
    figures.save_png(os.path.join(figure_dir, f"strip_{index:02d}_{stem}.png"),
                     figures.labelled_strip([results[scoring.GRAY]] + [results[n] for n in
                                            names[2:]] + [truth],
                                            ["gray"] + names[2:] + ["truth"]))
    heat = cv2.applyColorMap(np.round(confidence * 255).astype(np.uint8),
                             cv2.COLORMAP_VIRIDIS)[..., ::-1]
    figures.save_png(os.path.join(figure_dir, f"confidence_{index:02d}_{stem}.png"),
                     figures.labelled_strip([results[scoring.GRAY], heat, truth],
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
         for n in [scoring.GRAY, scoring.MEAN, default]},
        "class-rebalanced accuracy vs ab threshold", "threshold (Lab ab units)"))


def _cast(m):
    """A method's mean colour cast as text ("-" in results from before it was measured)."""
    return f"{m['colour_cast']:.1f}" if "colour_cast" in m else "-"


def _recognised(m):
    """A method's recognition as text: "74.0% (-0.24)"; "-" when not judged."""
    if "recognition" not in m:
        return "-"
    return f"{100 * m['recognition']:.1f}% ({m.get('recognition_gap_closed', 0.0):+.2f})"


def _fd(m):
    return f"{m['fd']:.1f}" if "fd" in m else "-"


def _p_text(p):
    """A permutation p-value as text (never 0: 1 / (1 + shuffles) at least)."""
    return f"p = {p:.3f}" if p >= 0.001 else "p < 0.001"


def groups_markdown(result):
    """The per-group table at the default temperature (empty without groups)."""
    groups = result.get("groups") or {}
    if not groups:
        return ""
    method = scoring.result_default_method(result)
    judged = "recognition_judge" in result
    rows = [f"Per group at {method} (gray in brackets):", "",
            "| group | photos | PSNR dB | AuC rebal. | colourfulness ratio | colour cast |"
            + (" recognised |" if judged else ""),
            "|---|---|---|---|---|---|" + ("---|" if judged else "")]
    for name, group in groups.items():
        m, g = group["methods"][method], group["methods"][scoring.GRAY]
        rows.append(f"| {name} | {group['images']} | {m['psnr']:.2f} ({g['psnr']:.2f}) | "
                    f"{m['auc_rebalanced']:.4f} ({g['auc_rebalanced']:.4f}) | "
                    f"{m['colourfulness_ratio']:.2f} | {_cast(m)} ({_cast(g)}) |"
                    + (f" {_recognised(m)} ({100 * g['recognition']:.1f}%) |"
                       if judged else ""))
    rows.append("")
    for kind, s in result.get("group_spreads", {}).items():
        rows.append(f"- {kind}: PSNR spread {s['spread']:.2f} dB (best {s['best']}, worst "
                    f"{s['worst']}); by chance alone (photos dealt to the groups at random, "
                    f"{s['shuffles']} times) median {s['chance_median']:.2f}, 95th "
                    f"percentile {s['chance_95']:.2f} dB: {_p_text(s['p_value'])}")
    return "\n".join(rows) + "\n"


def comparison_markdown(results):
    """{model name: metrics.json dict} (the same photos) -> one table: for all photos and
    each group, gray, and each model's mean chroma and default temperature: PSNR, rebalanced
    AuC, colourfulness ratio (and, judged, recognition; FD for all photos); then each
    model's group spreads (group_spreads)."""
    first = next(iter(results.values()))
    judged = "recognition_judge" in first
    methods = [scoring.result_default_method(r) for r in results.values()]
    extra = " / rec." if judged else ""
    header = ["group", "photos", "gray PSNR / AuC r. / cast" + extra]
    for name, method in zip(results, methods):
        header += [f"{name} mean chroma PSNR / AuC r.",
                   f"{name} {method} PSNR / AuC r. / col. / cast" + extra
                   + (" / FD" if judged else "")]
    rows = [f"Models side by side ({first['images']} photos; AuC r.: rebalanced AuC; col.: "
            "colourfulness ratio to the truth; cast: colour cast, Lab ab distance of the "
            "mean chroma to the truth's; gray's is the truth's own"
            + ("; rec.: recognised by the judge as on the truth (gap closed); FD: Frechet "
               "distance of the judge's features to the truths'" if judged else "") + ").",
            "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def cells(m, colour=False, cast=False):
        text = f"{m['psnr']:.2f} / {m['auc_rebalanced']:.4f}"
        text += f" / {m['colourfulness_ratio']:.2f}" if colour else ""
        text += f" / {_cast(m)}" if colour or cast else ""
        text += f" / {_recognised(m)}" if judged and (colour or cast) else ""
        return text + (f" / {_fd(m)}" if judged and colour else "")
    for group in ["all"] + sorted(first.get("groups") or {}, key=_group_order):
        scope = [r if group == "all" else r["groups"][group] for r in results.values()]
        gray = scope[0]["methods"][scoring.GRAY]
        row = [group, str(scope[0]["images"]), cells(gray, cast=True)]
        for result, method in zip(scope, methods):
            row += [cells(result["methods"][scoring.MEAN]), cells(result["methods"][method], True)]
        rows.append("| " + " | ".join(row) + " |")
    spreads = [(name, kind, spread) for name, result in results.items()
               for kind, spread in result.get("group_spreads", {}).items()]
    if spreads:
        rows += ["", "PSNR spread between the best and the worst group at each model's "
                 "default temperature (by chance alone: the 95th percentile over the "
                 "photos dealt to the groups at random):", ""]
        rows += [f"- {name}, {kind}: {s['spread']:.2f} dB ({s['best']} / {s['worst']}); "
                 f"by chance {s['chance_95']:.2f} dB, {_p_text(s['p_value'])}"
                 for name, kind, s in spreads]
    return "\n".join(rows) + "\n"


def report_markdown(result):
    rows = [
        f"Evaluated {result['images']} photos ({len(result['left_out'])} left out: unreadable, "
        "or gray ground truth); "
        f"{result['num_bins']} bins in {result['color_space'].upper()}; ground-truth "
        f"colourfulness {result['ground_truth']['colourfulness']:.1f}.",
        "",
        "| method | PSNR dB | SSIM | MSE ab | AuC | AuC rebal. | colourfulness (ratio) | "
        "colour cast | KL bins |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    judged = "recognition_judge" in result
    if judged:
        rows[2] += " recognised (gap closed) | FD |"
        rows[3] += "---|---|"
    for name, m in result["methods"].items():
        rows.append(f"| {name} | {m['psnr']:.2f} | {m['ssim']:.4f} | {m['mse_ab']:.1f} | "
                    f"{m['auc']:.4f} | {m['auc_rebalanced']:.4f} | {m['colourfulness']:.1f} "
                    f"({m['colourfulness_ratio']:.2f}) | {_cast(m)} | {m['kl_bins']:.3f} |"
                    + (f" {_recognised(m)} | {_fd(m)} |" if judged else ""))
    if judged:
        rows += ["", f"Recognised: the share of photos whose top-1 ImageNet class by "
                 f"{result['recognition_judge']} is its top-1 on the truth; gap closed: "
                 "the share of gray's gap to the truth that a method closes. FD: the "
                 "Frechet distance of its pooled features to the truths' (an FID with "
                 f"another network, on these {result['images']} photos)."]
    notes = result.get("labels_csv")
    if notes:
        left_out = "; ".join(f"{notes[k]['count']} {what}" for k, what in (
            ("missing_files", "rows naming no file"),
            ("ragged_rows", "ragged rows"),
            ("twice", "photos labelled again with other labels")) if notes[k]["count"])
        rows += ["", f"Labels: {notes['csv']} labels {notes['labelled']} of the "
                 f"{notes['photos']} photos" + (f"; left out: {left_out}." if left_out
                                                else ".")]
    groups = groups_markdown(result)
    return "\n".join(rows) + "\n" + ("\n" + groups if groups else "")


def hints_markdown(result):
    """The table of evaluate_hints' result."""
    lines = [f"Hints revealed from the truth ({result['images']} photos, T = "
             f"{result['temperature']:g}; gray: PSNR {result['gray']['psnr']:.2f} dB, "
             f"rebalanced AuC {result['gray']['auc_rebalanced']:.4f})", "",
             "| hints | PSNR (dB) | SSIM | AuC rebalanced | MSE ab |", "|---|---|---|---|---|"]
    for row in result["rows"]:
        lines.append(f"| {row['hints']} | {row['psnr']:.2f} | {row['ssim']:.4f} | "
                     f"{row['auc_rebalanced']:.4f} | {row['mse_ab']:.1f} |")
    return "\n".join(lines) + "\n"
