"""The seed study's report: tables, figures and the papers' claims checked against the
measured numbers (docs/study/README.md). Written by `python -m colorize_tf.study`."""
import csv
import os

import cv2
import numpy as np

from colorize_tf import safe_write
from colorize_tf.chroma import color
from colorize_tf.evaluation import figures
from colorize_tf.evaluation import photos
from colorize_tf.evaluation import scoring
from colorize_tf.serving import inference
from colorize_tf.training.state import HISTORY_NAME

REFERENCE = "cls_yuv32"
COLUMNS = [("psnr", "PSNR dB", "{:.2f}"), ("ssim", "SSIM", "{:.4f}"),
           ("mse_ab", "MSE ab", "{:.1f}"), ("auc", "AuC", "{:.4f}"),
           ("auc_rebalanced", "AuC rebal.", "{:.4f}"),
           ("colourfulness_ratio", "colourful. ratio", "{:.2f}"), ("kl_bins", "KL bins", "{:.3f}")]


def best_method(result):
    """The variant's best temperature: the highest class-rebalanced AuC (the papers'
    measure of getting rare colours right)."""
    names = [n for n in result["methods"] if n.startswith("T=")]
    return max(names, key=lambda n: result["methods"][n]["auc_rebalanced"])


def _row(label, extra, metrics):
    cells = [label, *extra, *(fmt.format(metrics[k]) for k, _, fmt in COLUMNS)]
    return "| " + " | ".join(cells) + " |"


def tables(variants, results, summaries, default, reference=None):
    """Markdown: one table at the default temperature, one at each variant's best;
    reference: (its path, its metrics.json dict) or None, a row of its own."""
    header = "| variant | params | train img/s | train min | T | " + \
        " | ".join(title for _, title, _ in COLUMNS) + " |"
    rule = "|" + "---|" * (5 + len(COLUMNS))
    lines = []
    for title, pick in [(f"At {default}", lambda r: default),
                        ("At each variant's best temperature (highest rebalanced AuC)",
                         best_method)]:
        lines += [f"### {title}", "", header, rule]
        # Gray keeps each colour space's own luma (YUV's Y, Lab's L): one row per space.
        spaces = {}
        for v in variants:
            spaces.setdefault(results[v.name]["color_space"], results[v.name])
        for space, result in sorted(spaces.items()):
            lines.append(_row(f"gray ({space.upper()} luma)", ["", "", "", ""],
                              result["methods"]["gray"]))
        if reference is not None:
            method = pick(reference[1])
            lines.append(_row(f"`{reference[0]}`", ["", "", "", method[2:]],
                              reference[1]["methods"][method]))
        for v in variants:
            params, rate, seconds = summaries[v.name]
            method = pick(results[v.name])
            lines.append(_row(v.name, [f"{params:,}", f"{rate:.1f}", f"{seconds / 60:.1f}",
                                       method[2:]], results[v.name]["methods"][method]))
        lines.append("")
    return lines


def grid_figure(path, variants, test_paths, count, temperature):
    """The same `count` test photos (rows): gray, each variant at `temperature`, truth."""
    chosen = []
    for index in np.linspace(0, len(test_paths) - 1, 4 * count).astype(int):
        try:
            chosen.append(photos.read_ground_truth(
                test_paths[index], gray_threshold=color.GRAY_SPREAD))
        except photos.LeftOut:
            continue
        if len(chosen) == count:
            break
    colorizers = {v.name: inference.Colorizer(v.saved_model()) for v in variants}
    rows = []
    for truth in chosen:
        gray = np.repeat(cv2.cvtColor(truth, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
        images = [gray] + [c.colorize(truth, temperature) for c in colorizers.values()] + [truth]
        rows.append(figures.labelled_strip(images, ["gray", *colorizers, "truth"], height=110))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 6), (0, width - r.shape[1]), (0, 0)), constant_values=255)
            for r in rows]
    ok, jpeg = cv2.imencode(".jpg", np.concatenate(rows)[..., ::-1].copy(),
                            [cv2.IMWRITE_JPEG_QUALITY, 88])
    safe_write.write_bytes(path, jpeg.tobytes())


def learning_curves(folder, variants):
    """Validation chroma MSE per epoch, all variants of one colour space on one plot
    (YUV and Lab units differ); -> [file names]."""
    by_space = {}
    for v in variants:
        with open(os.path.join(v.model_dir, HISTORY_NAME)) as f:
            rows = list(csv.DictReader(f))
        key = next((k for k in ("val_chroma_mse", "val_logits_chroma_mse",
                                "val_chroma_chroma_mse") if rows and k in rows[0]), None)
        if key is None:
            continue
        space = v.record_set
        by_space.setdefault(space, {})[v.name] = (
            [int(r["epoch"]) + 1 for r in rows], [float(r[key]) for r in rows])
    names = []
    for space, series in sorted(by_space.items()):
        name = f"learning_curves_{space}.png"
        figures.save_png(os.path.join(folder, name), figures.line_plot(
            series, f"validation chroma MSE at T=0.38 per epoch ({space} records)", "epoch"))
        names.append(name)
    return names


def claims(results, default):
    """Each claim of the seed papers, with the numbers that decide it and the verdict."""
    def m(name, method=default):
        return results[name]["methods"][method] if name in results else None
    out = []

    def claim(text, names, holds, numbers):
        if all(n in results for n in names):
            out.append(f"- {text}: **{'confirmed' if holds() else 'not confirmed'}** "
                       f"({numbers()}).")
        else:
            out.append(f"- {text}: not measured (variants {', '.join(names)} not run).")
    claim("Classification gives more colourful results than regression (Sun and Shen; "
          "Nicolai et al. 2021)",
          ["cls_yuv32", "reg_yuv"],
          lambda: m("cls_yuv32")["colourfulness_ratio"] > m("reg_yuv")["colourfulness_ratio"],
          lambda: f"colourfulness ratio {m('cls_yuv32')['colourfulness_ratio']:.2f} vs "
                  f"{m('reg_yuv')['colourfulness_ratio']:.2f} at {default}")
    claim("Regression gives a lower per-pixel chroma error (Sun and Shen)",
          ["cls_yuv32", "reg_yuv"],
          lambda: m("reg_yuv")["mse_ab"] < m("cls_yuv32")["mse_ab"],
          lambda: f"MSE ab {m('reg_yuv')['mse_ab']:.1f} vs {m('cls_yuv32')['mse_ab']:.1f}")
    low = min((n for n in results.get(REFERENCE, {}).get("methods", {}) if n.startswith("T=")),
              key=lambda n: float(n[2:]), default=default)
    claim(f"Augmentation stabilises low-temperature results (Billaut et al. 2018): PSNR at {low}",
          ["cls_yuv32", "cls_yuv32_noaug"],
          lambda: m("cls_yuv32", low)["psnr"] > m("cls_yuv32_noaug", low)["psnr"],
          lambda: f"{m('cls_yuv32', low)['psnr']:.2f} dB with vs "
                  f"{m('cls_yuv32_noaug', low)['psnr']:.2f} dB without")
    claim("Rebalancing favours rare colours (Billaut et al. 2018; Nicolai et al. 2021): "
          "rebalanced AuC and KL of the bin histogram", ["cls_yuv32", "cls_yuv32_norebal"],
          lambda: m("cls_yuv32")["auc_rebalanced"] > m("cls_yuv32_norebal")["auc_rebalanced"]
          and m("cls_yuv32")["kl_bins"] < m("cls_yuv32_norebal")["kl_bins"],
          lambda: f"rebalanced AuC {m('cls_yuv32')['auc_rebalanced']:.4f} vs "
                  f"{m('cls_yuv32_norebal')['auc_rebalanced']:.4f}, KL "
                  f"{m('cls_yuv32')['kl_bins']:.3f} vs {m('cls_yuv32_norebal')['kl_bins']:.3f}")
    claim("The scene head helps (Nguyen-Quynh et al.): multitask vs the reference, rebalanced "
          "AuC and PSNR (the multitask variant also uses soft targets)", ["cls_yuv32", "multitask"],
          lambda: m("multitask")["auc_rebalanced"] > m("cls_yuv32")["auc_rebalanced"]
          and m("multitask")["psnr"] > m("cls_yuv32")["psnr"],
          lambda: f"rebalanced AuC {m('multitask')['auc_rebalanced']:.4f} vs "
                  f"{m('cls_yuv32')['auc_rebalanced']:.4f}, PSNR {m('multitask')['psnr']:.2f} "
                  f"vs {m('cls_yuv32')['psnr']:.2f} dB")
    return out


def scene_section(scenes):
    """Markdown: the scene classifier's accuracy per input, and confusion matrices."""
    classes = scenes["classes"]
    inputs = [k for k in scenes if k not in ("classes", "photos")]
    lines = ["### Colorization before classification (Nicolai et al. 2021)", "",
             f"A scene classifier ({', '.join(classes)}; `modeling/scene_classifier.py`) "
             f"trained on colour photos, given {scenes['photos']} test photos:", "",
             "| input | top-1 accuracy |", "|---|---|"]
    lines += [f"| {name} | {scenes[name]['accuracy']:.3f} |" for name in inputs]
    colour, gray = scenes["colour"]["accuracy"], scenes["gray"]["accuracy"]
    best = max((n for n in inputs if n not in ("colour", "gray")),
               key=lambda n: scenes[n]["accuracy"], default=None)
    if best is not None and colour > gray:
        recovered = (scenes[best]["accuracy"] - gray) / (colour - gray)
        lines += ["", f"Gray costs {100 * (colour - gray):.1f} points of accuracy; the best "
                  f"colorizer ({best}) gives back {100 * recovered:.0f}% of them."]
    for name in ["colour", "gray"] + ([best] if best else []):
        lines += ["", f"Confusion ({name}; rows true, columns predicted):", "",
                  "| | " + " | ".join(classes) + " |", "|---" * (len(classes) + 1) + "|"]
        lines += [f"| {c} | " + " | ".join(str(v) for v in row) + " |"
                  for c, row in zip(classes, scenes[name]["confusion"])]
    return lines + [""]


def write(report_dir, variants, results, test_paths, temperatures, num_grid_photos,
          training_summary, scenes=None, reference=None):
    """Writes report_dir/README.md and its figures (scenes: study.scene_study's result;
    reference: (path, metrics) of a model shown beside the variants, e.g. the shipped
    one)."""
    os.makedirs(report_dir, exist_ok=True)
    default = scoring.default_method(temperatures)
    summaries = {v.name: training_summary(v) for v in variants}
    lines = ["# The seed study", "",
             f"Every variant: the same records, 96 px crops, the same optimizer steps and "
             f"seed; evaluated on {results[variants[0].name]['images']} test photos "
             f"(`python -m colorize_tf.study`). Flagfiles: `colorize_tf/configs/study/`.",
             "", "Records: " + "; ".join(sorted({
                 f"`{v.record_set}` ({results[v.name]['color_space'].upper()}, "
                 f"{results[v.name]['num_bins']} bins)" for v in variants})) + ". "
             "Training rates are those of this machine (2 CPU cores) while the study ran; "
             "other work shared the cores at times, so compare them within the table.", ""]
    lines += tables(variants, results, summaries, default, reference)
    grid = "grid.jpg"
    if num_grid_photos:
        grid_figure(os.path.join(report_dir, grid), variants, test_paths, num_grid_photos,
                    float(default[2:]))
        lines += [f"### The same test photos by every variant ({default})", "",
                  f"![grid]({grid})", ""]
    if REFERENCE in results and "cls_yuv32_norebal" in results:
        truth = results[REFERENCE]["bin_frequencies"]["truth"]
        figures.save_png(os.path.join(report_dir, "bin_frequencies.png"), figures.bar_plot(
            {"truth": np.asarray(truth),
             "with rebalancing": np.asarray(results[REFERENCE]["bin_frequencies"][default]),
             "without": np.asarray(results["cls_yuv32_norebal"]["bin_frequencies"][default])},
            f"bin frequencies, truth vs predicted at {default} (ColorUNet figure 9)",
            "bin (most frequent first)"))
        lines += ["### Predicted vs true bin frequencies (Billaut et al. 2018, figure 9)", "",
                  "![bins](bin_frequencies.png)", ""]
    lines += ["### Learning curves", ""]
    lines += [f"![curves]({name})" for name in learning_curves(report_dir, variants)] + [""]
    if scenes:
        safe_write.write_json(os.path.join(report_dir, "scene_classification.json"), scenes)
        lines += scene_section(scenes)
    lines += ["### The papers' claims against these numbers", ""] + claims(results, default)
    safe_write.write_bytes(os.path.join(report_dir, "README.md"),
                           ("\n".join(lines) + "\n").encode())
