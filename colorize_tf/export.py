r"""Export a trained run as a versioned SavedModel for TF Serving.

    python -m colorize_tf.export --model_dir=runs/landscapes_cpu \
        --export_dir=saved_models/colorunet_landscapes

writes saved_models/colorunet_landscapes/<N>/ (N: the next free version) through a
temp dir and a rename, so TF Serving never sees a half-written version. The graph
(serving/graph.py) does all pre- and post-processing in core TF ops; its signatures are
in serving_api.py.
"""
from colorize_tf import cli  # first: as an entry point, hide TF start-up lines
if __name__ == "__main__":
    cli.quiet_tensorflow()
import math
import os

from colorize_tf import serving_api
from colorize_tf.chroma import guided
from colorize_tf.serving import graph
from colorize_tf.serving import inference
from colorize_tf.training import exporter


def define_flags(fv):
    """Defines this entry point's flags on the FlagValues fv."""
    d = cli.definer(fv)
    d.string("model_dir", None, "The training run to export (python -m colorize_tf.train).")
    d.string("from_saved_model", None, "Instead of --model_dir: a SavedModel version folder "
             "of colorize_tf whose weights get this version's serving graph (its assets "
             "give the architecture, bins and decoder).")
    d.string("export_dir", None, "Model base dir, e.g. saved_models/NAME; the version "
             "goes below it.")
    d.integer("version", 0, "Version number; 0: the next free one.")
    d.enum("checkpoint", "best", ["best", "last"], "Which checkpoint of the run.")
    d.integer("work_size", 0, f"Longest side the model sees (px, >= "
              f"{graph.MIN_WORK_SIZE}); 0: the training crop size (the SavedModel's own "
              "with --from_saved_model).")
    d.integer("max_pixels", 0, f"Larger images are refused; 0: "
              f"{graph.DEFAULT_MAX_PIXELS:,} (the SavedModel's own with --from_saved_model).")
    d.float("default_temperature", 0.0, "The temperature the model is meant for "
            "(export.json): colorize and the Python API use it when none is given; 0: "
            f"{serving_api.DEFAULT_TEMPERATURE} (the SavedModel's own with "
            "--from_saved_model).")
    d.integer("guided_radius", guided.DEFAULT_RADIUS, "The chroma reaches the photo's size "
              "guided by its luma (colour edges follow luma edges) with windows of this "
              "radius, in working-size pixels; 0: bilinear, as exports before 2026-12.")
    d.float("tint_correction", -1.0, "0-1: moves each photo's mean chroma that far towards "
            "the mean of the probabilities with the rebalancing undone (chroma/decoding.py; "
            "joint bins only); below 0: 0, or the SavedModel's own with --from_saved_model.")
    d.float("smoothing_sigma", -1.0, "Coherent colours (chroma/decoding.py): blur each "
            "bin's probabilities over the photo by a Gaussian of this standard deviation, "
            "in cells of the model's output grid, before the annealed mean; 0: none; below "
            "0: 0 (with --from_saved_model and neither coherence flag given: the "
            "SavedModel's own two settings).")
    d.float("flat_temperature", -1.0, "Coherent colours: raise each pixel's temperature "
            "towards 1 by this share (0-1) of its distribution's flatness (entropy / log "
            "n) before the annealed mean; 0: none; below 0: 0 (as --smoothing_sigma).")
    d.string("interpolate_from", None, "A SavedModel of colorize_tf that the exported "
             "model was fine-tuned from: the exported weights become (1 - "
             "--interpolation) x its weights + --interpolation x the model's own (WiSE-FT, "
             "Wortsman et al. 2022): most of the fine-tuning's gain on its new data, most "
             "of the base's quality on its old data. Same architecture and bins.")
    d.float("interpolation", 0.5, "With --interpolate_from: the share (0-1) of the "
            "exported model's own weights; 1: its own, 0: the other model's.")


def main(argv=None):
    f, _ = cli.parse(define_flags, argv)
    try:
        source = f["model_dir"] or f["from_saved_model"]
        if not source or not f["export_dir"] or (f["model_dir"] and f["from_saved_model"]):
            raise cli.UsageError("--export_dir and one of --model_dir or --from_saved_model "
                                 "are required")
        if min(f["version"], f["work_size"], f["max_pixels"], f["default_temperature"]) < 0:
            raise cli.UsageError("--version, --work_size, --max_pixels and "
                                 "--default_temperature must be >= 0 (0: automatic)")
        if f["guided_radius"] < 0:
            raise cli.UsageError("--guided_radius must be >= 0 (0: bilinear chroma)")
        if f["tint_correction"] > 1:
            raise cli.UsageError(f"--tint_correction must be at most 1, got "
                                 f"{f['tint_correction']}")
        tint = f["tint_correction"] if f["tint_correction"] >= 0 else None
        if not f["smoothing_sigma"] < math.inf:
            raise cli.UsageError(f"--smoothing_sigma must be a finite number, got "
                                 f"{f['smoothing_sigma']}")
        if f["flat_temperature"] > 1:
            raise cli.UsageError(f"--flat_temperature must be at most 1, got "
                                 f"{f['flat_temperature']}")
        coherence = None
        if f["smoothing_sigma"] >= 0 or f["flat_temperature"] >= 0:
            coherence = (max(f["smoothing_sigma"], 0.0), max(f["flat_temperature"], 0.0))
        if not 0 <= f["interpolation"] <= 1:
            raise cli.UsageError(f"--interpolation must be in [0, 1], got "
                                 f"{f['interpolation']}")
        interpolation = None
        if f["interpolate_from"]:
            if not os.path.isdir(f["interpolate_from"]):
                raise cli.UsageError(f"--interpolate_from {f['interpolate_from']!r} is not "
                                     "a folder")
            interpolation = (f["interpolate_from"], f["interpolation"])
        flag = "--model_dir" if f["model_dir"] else "--from_saved_model"
        if not os.path.isdir(source):
            raise cli.UsageError(f"{flag} {source!r} is not a folder")
        cli.check_output_dir(f["export_dir"], "--export_dir")
        if f["from_saved_model"]:
            path = exporter.export_from_saved_model(
                f["from_saved_model"], f["export_dir"], f["version"] or None,
                f["work_size"] or None, f["max_pixels"] or None,
                f["default_temperature"] or None, f["guided_radius"], tint, coherence,
                interpolation)
        else:
            path = exporter.export(
                f["model_dir"], f["export_dir"], f["version"] or None, f["work_size"] or None,
                f["max_pixels"] or graph.DEFAULT_MAX_PIXELS, f["checkpoint"],
                f["default_temperature"] or serving_api.DEFAULT_TEMPERATURE,
                f["guided_radius"], tint or 0.0, coherence or (0.0, 0.0), interpolation)
    except (cli.UsageError, exporter.ExportError, inference.ModelError) as e:
        cli.fail("export", e)
    except OSError as e:
        cli.fail("export", f"cannot write {f['export_dir']!r}: {e.strerror or e}")
    print(f"exported {path}\n  inspect: saved_model_cli show --dir {path} --all")


if __name__ == "__main__":
    cli.run_main("export", main)
