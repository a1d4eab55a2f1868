r"""Photos -> sharded TFRecords + colour bins + report.

    python -m data_prep.build_records --input_dir=../shared/data/landscapes/train \
        --output_dir=/tmp/records/landscapes --frame_size=150 --workers=2

Inputs: a folder (recursive; a photo's class is its first sub-folder's name), a
file list, or a TFDS dataset already prepared on disk (read offline). Every file
is hashed first (duplicates dropped, train/val assigned by a stable content hash),
then decoded, checked and framed by worker processes, and written in order to
shards (temp name, then rename). The chroma histogram of the train split is
counted in the same pass and turned into `bins.json`; `report.json` says what
happened to every input.
"""
from colorize_tf import cli  # first: as an entry point, hide TF start-up lines
if __name__ == "__main__":
    cli.quiet_tensorflow()
import os
import shlex

from colorize_tf.chroma import color_numpy
from data_prep import prepare
# The library (data_prep.builder) loads TensorFlow, so it is imported where it is used,
# not here: the worker processes are spawned, and a spawned process imports its
# parent's main module again; they start in ~0.1 s without TensorFlow, ~2 s with it.


def define_flags(fv):
    """Defines this entry point's flags on the FlagValues fv."""
    from colorize_tf.chroma.bins import DEFAULT_NUM_BINS, DEFAULT_REBALANCE_LAMBDA
    from data_prep import builder
    d = cli.definer(fv)
    P = prepare.PrepConfig  # the per-photo settings' defaults are its own
    d.string("input_dir", None, "Folder of photos, read recursively; the first "
             "sub-folder's name is the photo's class.")
    d.string("file_list", None, "Text file: one photo path per line "
             "(relative to the list), optionally a tab and a class name.")
    d.string("tfds_name", None, "TFDS dataset name (read offline, never downloaded).")
    d.string("tfds_split", "train", "TFDS split to read.")
    d.string("tfds_data_dir", None, "TFDS data_dir holding the prepared dataset.")
    d.string("output_dir", None, "Where shards, bins.json and report.json go.")
    d.integer("frame_size", P.frame_size, "Side of the square frame (px); larger photos "
              "are shrunk with antialiased Lanczos, smaller ones padded.")
    d.enum("color_space", P.color_space, list(color_numpy.COLOR_SPACES),
           "Chroma space of the bins.")
    d.integer("max_per_class", 0, "Keep at most this many photos of each class, evenly "
              "spread over its listing (a balanced mix of unequal domains); 0 keeps all.")
    d.integer("num_bins", None, "Bins kept (most frequent first); 0 keeps every occupied "
              f"cell; unset: {DEFAULT_NUM_BINS}, or the bins of --bins_from.")
    d.string("bins_from", None, "Keep the bins (colour classes) of an earlier build: its "
             "bins.json, a records folder holding one, or a SavedModel (a version "
             "folder, a model's folder: its latest version, or a shipped model's name). "
             "Their counts and weights are counted again on these photos; a model "
             "trained on the earlier bins can then be fine-tuned on these records "
             "(train --warm_start).")
    d.float("rebalance_lambda", DEFAULT_REBALANCE_LAMBDA,
            "lambda of the rebalancing weights, in [0, 1].")
    d.float("val_fraction", builder.DEFAULT_VAL_FRACTION,
            "Fraction of photos in the val split.")
    d.integer("num_shards", 0, "Train shards; 0 derives it from --images_per_shard.")
    d.integer("images_per_shard", builder.DEFAULT_IMAGES_PER_SHARD,
              "Target photos per shard.")
    d.integer("workers", max(1, min(os.cpu_count() or 1, 8)), "Worker processes.")
    d.string("runner", None, "Run on Apache Beam with this runner (DirectRunner, "
             "PrismRunner, FlinkRunner, SparkRunner, DataflowRunner) instead of local "
             "worker processes; needs pip install 'colorize_tf[beam]'.")
    d.string("beam_options", "", "More Beam pipeline options, as on a command line, e.g. "
             "\"--project=P --region=R --temp_location=gs://B/tmp\".")
    d.float("grayscale_threshold", P.grayscale_threshold, "Photos whose YUV chroma standard "
            "deviation is below this are skipped as gray or single-tint.")
    d.integer("min_size", P.min_size, "Photos whose shorter side is below this are skipped.")
    d.enum("alpha_background", P.alpha_background, list(prepare.ALPHA_BACKGROUNDS),
           "What transparent pixels are composited over.")
    d.integer("png_compression", P.png_compression, "PNG level 0-9 of the stored frames.")
    d.integer("max_pixels", P.max_pixels, "Photos with more pixels (read "
              "from their header) are skipped before decoding.")


def check_flags(f):
    """Refuses bad flags before any work (cli.UsageError)."""
    chosen = [n for n in ("input_dir", "file_list", "tfds_name") if f[n]]
    if len(chosen) != 1:
        raise cli.UsageError("give exactly one of --input_dir, --file_list, --tfds_name")
    if not f["output_dir"]:
        raise cli.UsageError("--output_dir is required")
    if f["bins_from"] and f["num_bins"] is not None:
        raise cli.UsageError("give --num_bins or --bins_from, not both")
    if f["bins_from"]:
        f["bins_from"] = _load_earlier_bins(f["bins_from"], f["color_space"])
    elif f["num_bins"] is None:
        from colorize_tf.chroma.bins import DEFAULT_NUM_BINS
        f["num_bins"] = DEFAULT_NUM_BINS
    at_least = {"frame_size": 8, "images_per_shard": 1, "num_shards": 0, "workers": 1,
                "num_bins": 0, "max_per_class": 0, "min_size": 1, "png_compression": 0,
                "max_pixels": 1}
    for name, low in at_least.items():
        if f[name] is not None and f[name] < low:
            raise cli.UsageError(f"--{name} must be >= {low}, got {f[name]}")
    if f["png_compression"] > 9:
        raise cli.UsageError(f"--png_compression must be 0-9, got {f['png_compression']}")
    if not 0.0 <= f["rebalance_lambda"] <= 1.0:
        raise cli.UsageError(f"--rebalance_lambda must be in [0, 1], "
                             f"got {f['rebalance_lambda']}")
    if not 0.0 <= f["val_fraction"] < 1.0:
        raise cli.UsageError(f"--val_fraction must be in [0, 1), got {f['val_fraction']}")
    if not f["grayscale_threshold"] >= 0.0:
        raise cli.UsageError(f"--grayscale_threshold must be >= 0, "
                             f"got {f['grayscale_threshold']}")
    cli.check_output_dir(f["output_dir"])
    if f["runner"] or f["beam_options"]:
        if not f["runner"]:
            raise cli.UsageError("--beam_options needs --runner")
        import importlib.util
        if importlib.util.find_spec("apache_beam") is None:
            raise cli.UsageError("--runner needs Apache Beam: pip install 'colorize_tf[beam]'")
        try:
            f["beam_options"] = shlex.split(f["beam_options"])
        except ValueError as e:
            raise cli.UsageError(f"--beam_options: {e}") from None


def _load_earlier_bins(path, color_space):
    """--bins_from's artifact -> bins.Bins (UsageError when it is missing, not a bins
    artifact, or over another colour space than --color_space)."""
    from colorize_tf import presets
    from colorize_tf.chroma.bins import BINS_NAME, DEFAULT_GRIDS, Bins
    if not os.path.isfile(path) and not os.path.exists(
            os.path.join(path, BINS_NAME)):
        try:  # a model's folder (-> its latest version) or a shipped model's name
            path = presets.resolve_saved_model(path)
        except presets.ModelNotFound:
            pass  # a version folder without its graph, or nothing: checked below
    in_assets = os.path.join(path, "assets", BINS_NAME)  # a SavedModel
    if os.path.isdir(path) and os.path.exists(in_assets):
        path = in_assets
    try:
        earlier = Bins.load(path)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise cli.UsageError(f"--bins_from {path!r}: not a bins artifact ({e})") from None
    if earlier.grid != DEFAULT_GRIDS[color_space]:
        raise cli.UsageError(f"--bins_from {path!r} holds {earlier.grid.color_space} bins; "
                             f"--color_space is {color_space}")
    return earlier


def main(argv=None):
    f, _ = cli.parse(define_flags, argv)
    from data_prep.builder import (InputError, build_records, cap_per_class, list_dir_sources,
                                   list_file_sources, list_tfds_sources, summary)
    try:
        check_flags(f)
        if f["input_dir"]:
            sources, skipped, ignored = list_dir_sources(f["input_dir"])
        elif f["file_list"]:
            sources, skipped, ignored = list_file_sources(f["file_list"])
        else:
            sources, skipped, ignored = list_tfds_sources(
                f["tfds_name"], f["tfds_split"], f["tfds_data_dir"])
        if not sources:
            where = f["input_dir"] or f["file_list"] or f["tfds_name"]
            raise InputError(f"no image files found in {where!r}")
        sources, capped = cap_per_class(sources, f["max_per_class"])
        if capped:
            print(f"build_records: --max_per_class={f['max_per_class']} leaves out {capped} "
                  f"of {len(sources) + capped} photos")
        config = prepare.PrepConfig(
            frame_size=f["frame_size"], color_space=f["color_space"], min_size=f["min_size"],
            grayscale_threshold=f["grayscale_threshold"],
            alpha_background=f["alpha_background"], png_compression=f["png_compression"],
            max_pixels=f["max_pixels"])
        if f["runner"]:
            from data_prep import beam_pipeline
            report = beam_pipeline.build_records_beam(
                sources, f["output_dir"], config, f["num_bins"], f["rebalance_lambda"],
                f["val_fraction"], f["images_per_shard"], f["num_shards"], f["runner"],
                f["beam_options"], listing_skipped=skipped, ignored=ignored,
                earlier_bins=f["bins_from"])
        else:
            if f["workers"] == 1:  # this process prepares the photos itself
                prepare.tune_malloc()
            report = build_records(
                sources, f["output_dir"], config, f["num_bins"], f["rebalance_lambda"],
                f["val_fraction"], f["images_per_shard"], f["num_shards"], f["workers"],
                listing_skipped=skipped, ignored=ignored, earlier_bins=f["bins_from"])
    except (cli.UsageError, InputError) as e:
        cli.fail("build_records", e)
    except OSError as e:  # e.g. the disk filled while bins.json or report.json was written
        cli.fail("build_records", f"cannot write to {f['output_dir']!r}: {e.strerror or e} "
                 "(the records there are not complete: no report.json; the photos were "
                 "only read; free space and run the same command again)")
    print(summary(report, f["output_dir"]))


if __name__ == "__main__":
    cli.run_main("build_records", main)
