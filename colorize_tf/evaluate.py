r"""Evaluate a SavedModel on colour photos the way the colorization literature does.

    python -m colorize_tf.evaluate --saved_model=saved_models/colorunet_landscapes \
        --images_dir=../shared/data/landscapes/test --output_dir=out/eval

Each photo is reduced to its luma, colorized (one forward pass, then the annealed
mean at every temperature), and compared with the original (colorize_tf/evaluation/scoring.py: the
metrics, batched as compiled graphs). Baselines in the same table: gray (chroma 0)
and the training set's mean chroma. Writes metrics.json, per_photo.csv (each photo's
scores, to compare two evaluations photo by photo), report.md and figures
(temperature strips, confidence maps, bin histograms, AuC curves).
"""
from colorize_tf import cli  # first: as an entry point, hide TF start-up lines
if __name__ == "__main__":
    cli.quiet_tensorflow()
import os
import sys

import numpy as np

from colorize_tf import safe_write
from colorize_tf.chroma import color
from colorize_tf.chroma import video_smoothing
from colorize_tf.data import image_files
from colorize_tf.evaluation import figures
from colorize_tf.evaluation import photos
from colorize_tf.evaluation import reports
from colorize_tf.evaluation import scoring
from colorize_tf.evaluation import video
from colorize_tf.serving import inference


# --video's smoothings: along the optical flow (the video default) and the ColorUNet's
# window at fixed pixels, each at the default alpha.
DEFAULT_SMOOTHING = (f"flow:{video_smoothing.SMOOTHING_ALPHA:g}",
                     f"{video_smoothing.SMOOTHING_FRAMES}:{video_smoothing.SMOOTHING_ALPHA:g}")


def define_flags(fv):
    """Defines this entry point's flags on the FlagValues fv."""
    d = cli.definer(fv)
    d.list("saved_model", [inference.default_saved_model()], "SavedModel(s) (version or base "
           "dir, or a shipped model's name: general, landscapes, ...), comma-separated; "
           "with several, each is evaluated into OUTPUT_DIR/NAME and OUTPUT_DIR/comparison.md "
           "puts them in one table per domain and group.")
    d.list("images_dir", None, "Folder(s) of colour photos (recursive), comma-separated; "
           "NAME=FOLDER names a folder's domain, else each first-level sub-folder is one. "
           "With two domains or more the report also has a row per domain.")
    d.string("labels_csv", None, "CSV with a `path` column (relative to the CSV) and label "
             "columns (e.g. general/faces_labels.csv: age, gender, race): the report also "
             "has a row per label value and the PSNR spread of each column (with the spread "
             "expected by chance: a permutation test).")
    d.string("output_dir", None, "Where metrics.json, per_photo.csv, report.md and figures/ go.")
    d.list("temperatures", [f"{t:g}" for t in scoring.DEFAULT_TEMPERATURES],
           "Annealed-mean temperatures.")
    d.integer("max_images", 0, "Evaluate at most this many photos (evenly spread); 0: all.")
    d.integer("num_figures", 6, "Photos drawn as temperature strips and confidence maps.")
    d.string("training_history", None, "A run's history.csv: also draws "
             "figures/training_curve.png.")
    d.integer("max_pixels", image_files.DEFAULT_MAX_PIXELS, "Photos with more pixels are "
              "left out before decoding.")
    d.integer("batch_size", photos.BATCH_SIZE, "Photos of one size per model call.")
    d.list("hints", None, "A hints model only: numbers of hints (e.g. 0,1,2,5,10,20) "
           "revealed from each photo's own colours as in training, the same points on "
           "every run; writes hints.json, hints.md and figures/hints_curve.png (PSNR and "
           "AuC against the number of hints, at the model's default temperature) "
           "instead of the full report.")
    d.bool("recognition", True, "Also judge recognition (Zhang et al. 2016 sec. 3.1): "
           "whether an ImageNet classifier (EfficientNet-Lite2, from the `pretrained` extra; "
           "skipped with one line when it is not installed) gives each colorized and gray "
           "photo the class it gives the truth, and the Frechet distance of its features "
           "to the truths' (evaluation/recognition.py).")
    d.bool("video", False, "Measure video flicker instead of the photo report: a "
           "pan-and-zoom clip from each photo, colorized frame by frame and with each "
           "--smoothing; writes video.json and video.md (flicker at the same scene point, "
           "its ratio to the true clip's, PSNR per frame, frames/s).")
    d.list("smoothing", None,
           "With --video: temporal smoothing settings to compare (default: "
           f"{','.join(DEFAULT_SMOOTHING)}): flow:ALPHA (along the "
           "optical flow, video_smoothing.MotionSmoother: the video default) or FRAMES:ALPHA (at "
           "fixed pixels over a window, video_smoothing.TemporalSmoother, the ColorUNet's).")


def check_flags(f):
    """-> (folders [(domain name or None, folder)], temperatures [float]); refuses bad
    flags before any work (UsageError)."""
    if not f["images_dir"]:
        raise cli.UsageError("--images_dir is required")
    cli.check_output_dir(f["output_dir"])
    folders = []
    for entry in f["images_dir"]:
        name, _, folder = (None, None, entry) if os.path.isdir(entry) else entry.partition("=")
        if not os.path.isdir(folder):
            raise cli.UsageError(f"--images_dir {cli.display_path(folder)!r} is not a folder")
        folders.append((name or None, folder))
    if f["labels_csv"] and not os.path.isfile(f["labels_csv"]):
        raise cli.UsageError(f"--labels_csv {f['labels_csv']!r} does not exist")
    temperatures = cli.parse_temperatures(f["temperatures"])
    for name in ("max_images", "num_figures"):
        if f[name] < 0:
            raise cli.UsageError(f"--{name} must be >= 0, got {f[name]}")
    if f["batch_size"] < 1:
        raise cli.UsageError(f"--batch_size must be >= 1, got {f['batch_size']}")
    if f["max_pixels"] < 1:
        raise cli.UsageError(f"--max_pixels must be >= 1, got {f['max_pixels']}")
    if f["training_history"] and not os.path.isfile(f["training_history"]):
        raise cli.UsageError(f"--training_history {f['training_history']!r} does not exist")
    if f["hints"] is not None:
        hint_counts(f["hints"])
        if len(f["saved_model"]) != 1:
            raise cli.UsageError("--hints evaluates one --saved_model")
    if f["smoothing"] and not f["video"]:
        raise cli.UsageError("--smoothing compares video smoothings: it needs --video")
    if f["video"]:
        f["smoothing"] = f["smoothing"] or list(DEFAULT_SMOOTHING)
        smoothing_settings(f["smoothing"])
        if len(f["saved_model"]) != 1 or f["hints"] is not None:
            raise cli.UsageError("--video evaluates one --saved_model, without --hints")
    return folders, temperatures


def smoothing_settings(values):
    """--smoothing's values -> [(frames, alpha, motion)], refusing other forms."""
    settings = []
    for value in values:
        frames, _, alpha = value.partition(":")
        motion = frames == "flow"
        try:
            setting = (0 if motion else int(frames), float(alpha), motion)
        except ValueError:
            setting = (0, -1.0, False)
        if (setting[0] < 1 and not motion) or not 0 <= setting[1] < 100:
            raise cli.UsageError(f"--smoothing takes flow:ALPHA or FRAMES:ALPHA, frames >= 1 "
                                 f"and alpha >= 0 (e.g. flow:0.1 or 20:0.2), got {value!r}")
        settings.append(setting)
    return settings


def evaluate_video(saved_model, paths, f):
    """--video: flicker of frame-by-frame and smoothed colorization -> its dict."""
    colorizer = inference.Colorizer(saved_model)
    truths, left_out = [], []
    for path, truth in photos.read_ground_truths(paths, f["max_pixels"], color.GRAY_SPREAD):
        if isinstance(truth, photos.LeftOut):
            left_out.append(path)
        else:
            truths.append((path, truth))
    if not truths:
        raise cli.UsageError("no photo could be read")
    bar = cli.Progress(len(truths), "clip")
    result = video.evaluate_video(
        colorizer, truths, colorizer.export_info.default_temperature,
        smoothing_settings(f["smoothing"]), on_clip=bar.update)
    result["saved_model"] = colorizer.path
    result["left_out"] = [cli.display_path(p) for p in left_out]
    os.makedirs(f["output_dir"], exist_ok=True)
    safe_write.write_json(os.path.join(f["output_dir"], "video.json"), result)
    table = video.video_markdown(result)
    safe_write.write_bytes(os.path.join(f["output_dir"], "video.md"), table.encode())
    print(table)
    print(f"wrote {os.path.join(f['output_dir'], 'video.json')} and video.md")
    return result


def hint_counts(values):
    """--hints' values -> [int], refusing anything but integers >= 0."""
    try:
        counts = [int(v) for v in values]
    except ValueError:
        counts = [-1]
    if not counts or min(counts) < 0:
        raise cli.UsageError(f"--hints must be numbers of hints >= 0 (e.g. 0,1,2,5,10,20), "
                             f"got {','.join(values)}")
    return counts


def evaluate_hints(saved_model, paths, f):
    """--hints: the curve of metrics against the number of hints -> its dict."""
    colorizer = inference.Colorizer(saved_model)
    if not colorizer.takes_hints:
        raise cli.UsageError(f"--hints: {saved_model} takes no colour hints (a model "
                             "trained with --hints does, e.g. "
                             "saved_models/colorunet_landscapes_hints)")
    temperature = colorizer.export_info.default_temperature
    size = colorizer.export_info.work_size
    counts = hint_counts(f["hints"])
    most = max(counts)
    if most > size * size:
        raise cli.UsageError(f"--hints: {most} hints are more than the {size * size} points "
                             f"of the model's {size} px working size")

    def progress(row):
        print(f"evaluate: {row['hints']} hints: PSNR {row['psnr']:.2f} dB, rebalanced AuC "
              f"{row['auc_rebalanced']:.4f}", flush=True)
    result = scoring.evaluate_hints(colorizer, paths, counts, temperature, f["max_pixels"],
                                    f["batch_size"], on_count=progress)
    result["saved_model"] = colorizer.path
    output_dir = f["output_dir"]
    os.makedirs(os.path.join(output_dir, "figures"), exist_ok=True)
    safe_write.write_json(os.path.join(output_dir, "hints.json"), result)
    table = reports.hints_markdown(result)
    safe_write.write_bytes(os.path.join(output_dir, "hints.md"), table.encode())
    counts = [row["hints"] for row in result["rows"]]
    figures.save_png(os.path.join(output_dir, "figures", "hints_curve.png"), np.concatenate([
        figures.line_plot({"model": (counts, [r[key] for r in result["rows"]]),
                           "gray": (counts, [result["gray"][key]] * len(counts))},
                          title, "hints revealed from the truth")
        for key, title in (("psnr", "PSNR (dB)"), ("auc_rebalanced", "rebalanced AuC"))],
        axis=1))
    print(table)
    print(f"wrote {os.path.join(output_dir, 'hints.json')}, hints.md and "
          "figures/hints_curve.png")
    return result


def model_names(saved_models):
    """--saved_model entries -> {name: path}: saved_models/NAME[/VERSION] -> NAME (UsageError
    for a missing model or two of one name)."""
    names = {}
    for path in saved_models:
        name = inference.model_name(path)
        if name in names:
            raise cli.UsageError(f"--saved_model: two models named {name!r}")
        names[name] = path
    return names


def label_groups(paths, groups, labels_csv):
    """-> (groups with each photo's labels from labels_csv added, the CSV's notes for
    the report: photos.Labels.notes). UsageError for a bad CSV or one that labels none
    of the photos; each kind of row it left out is one line on stderr."""
    try:
        labels = photos.read_label_groups(labels_csv)
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise cli.UsageError(f"--labels_csv: {e}") from None
    notes = labels.notes(cli.display_path(labels_csv), paths)
    if notes["labelled"] == 0:
        raise cli.UsageError(f"--labels_csv {cli.display_path(labels_csv)!r} labels none of "
                             f"the {len(paths)} photos (its paths are relative to its own "
                             "folder)")
    for name, what in (("missing_files", "name no file"),
                       ("ragged_rows", "have more or fewer cells than its header"),
                       ("twice", "label a photo again with other labels (the first kept)")):
        if notes[name]["count"]:
            print(f"evaluate: --labels_csv: {notes[name]['count']} rows {what}, left out "
                  f"(first: {notes[name]['first'][0]})", file=sys.stderr)
    return ({p: groups.get(p, ()) + labels.groups.get(os.path.realpath(p), ()) for p in paths},
            notes)


def recognition_judge(wanted):
    """--recognition's judge (recognition.Judge), or None, with one line on stderr, when
    its weights' package is not installed."""
    if not wanted:
        return None
    from colorize_tf.evaluation import recognition
    try:
        return recognition.Judge()
    except recognition.JudgeUnavailable as e:
        print(f"evaluate: recognition skipped: {e}", file=sys.stderr)
        return None


def evaluate_models(models, output_dirs, paths, groups, temperatures, f, label_notes=None):
    """Evaluates each model {name: SavedModel} into output_dirs[name], then (several)
    writes comparison.md; -> {name: metrics.json dict}. label_notes: label_groups'."""
    results = {}
    judge = recognition_judge(f["recognition"])
    for name, saved_model in models.items():
        if len(models) > 1:
            print(f"evaluate: {name}")
        colorizer = inference.Colorizer(saved_model)
        # The model's own default temperature is always among them: the per-group tables
        # and the comparison are given at it.
        own = sorted(set(temperatures) | {colorizer.export_info.default_temperature})
        results[name] = reports.evaluate_to(
            output_dirs[name], colorizer, paths, own, f["num_figures"],
            max_pixels=f["max_pixels"], batch_size=f["batch_size"], groups=groups,
            label_notes=label_notes, judge=judge)
        print(reports.report_markdown(results[name]))
    if len(models) > 1:
        comparison = reports.comparison_markdown(results)
        safe_write.write_bytes(os.path.join(f["output_dir"], "comparison.md"),
                               comparison.encode())
        print(comparison)
    return results


def main(argv=None):
    f, _ = cli.parse(define_flags, argv)
    try:
        folders, temperatures = check_flags(f)
        paths, groups = photos.list_domain_photos(folders, f["max_images"])
        if not paths:
            raise cli.UsageError(f"no photos in {','.join(f['images_dir'])!r}")
        label_notes = None
        if f["labels_csv"]:
            groups, label_notes = label_groups(paths, groups, f["labels_csv"])
        models = model_names(f["saved_model"])
        if f["hints"] is not None:
            evaluate_hints(next(iter(models.values())), paths, f)
            return
        if f["video"]:
            evaluate_video(next(iter(models.values())), paths, f)
            return
        output_dirs = {name: f["output_dir"] if len(models) == 1 else
                       os.path.join(f["output_dir"], name) for name in models}
        results = evaluate_models(models, output_dirs, paths, groups, temperatures, f,
                                  label_notes)
        first = next(iter(models))
        if f["training_history"]:  # the first model's run
            figures.save_png(os.path.join(output_dirs[first], "figures", "training_curve.png"),
                             figures.training_curves(f["training_history"]))
    except (cli.UsageError, inference.ModelError, reports.NoPhotoEvaluated) as e:
        cli.fail("evaluate", e)
    except OSError as e:
        cli.fail("evaluate", f"cannot write to {f['output_dir']!r}: {e.strerror or e}")
    for failure in results[first]["left_out"]:
        print(f"left out: {failure['file']}: {failure['reason']}", file=sys.stderr)
    for name in models:
        print(f"wrote {os.path.join(output_dirs[name], 'metrics.json')} and per_photo.csv, "
              "report.md, figures/")
    if len(models) > 1:
        print(f"wrote {os.path.join(f['output_dir'], 'comparison.md')}")


if __name__ == "__main__":
    cli.run_main("evaluate", main)
