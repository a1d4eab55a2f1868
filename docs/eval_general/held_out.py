"""Scores a model on held-out train photos: those `build_records --max_per_class=2400` left
out of the general mix (general_cpu.flags), up to --per_domain of each domain, evenly
spread. Used to pick a model's default temperature without looking at the test set, and
to measure a prior correction of the probabilities (p_b / w_b^alpha, renormalised, with
w the rebalancing weights: a classifier trained with class weights w over-predicts
classes by w, so alpha = 1 undoes the rebalancing at decoding time), and to choose how
the chroma is upsampled (--upsampling: radius:epsilon[:subsample] of the guided filter,
chroma/guided.py).

    python docs/eval_general/held_out.py --saved_model=saved_models/colorunet_general \\
        --alphas=0,0.5,1 --output=docs/eval_general/held_out.md

    python docs/eval_general/held_out.py --saved_model=saved_models/effnet_general \
        --temperatures=0.7 --upsampling=0:0.001,4:0.001,4:0.001:4,8:0.001:4 \
        --output=docs/eval_general/held_out_upsampling.md

    python docs/eval_general/held_out.py --saved_model=saved_models/effnet_general \
        --max_per_class=4000 --held_out=val --temperatures=0.7

(--held_out=val: photos of the records' val split, for models trained on records of
a larger cap, whose left-out photos a model of the smaller cap trained on; each table
of docs/eval_general/held_out_context.md is this command's, one per model.) The tint
correction (chroma/decoding.py), docs/eval_general/held_out_tint.md:

    python docs/eval_general/held_out.py --saved_model=saved_models/effnet_general \
        --max_per_class=4000 --held_out=val --temperatures=0.38,0.5,0.7 \
        --tint_corrections=0,0.5,1

Test-time averages of the probabilities (docs/eval_general/held_out_fixres.md): over
the luma enlarged (--scales=1,1.5), with the mirror image (--mirror_average), with other
models of the same bins (--ensemble=M2,...).

Prints and writes one table: per domain, PSNR / rebalanced AuC / colourfulness ratio /
colour cast of gray and of each (upsampling, alpha, tint correction, temperature).
"""
import dataclasses
import os
import sys

from absl import app
from absl import flags

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

import tensorflow as tf  # noqa: E402

from colorize_tf import safe_write  # noqa: E402
from colorize_tf.chroma import guided  # noqa: E402
from colorize_tf.data import records  # noqa: E402
from colorize_tf.evaluation import scoring  # noqa: E402
from colorize_tf.serving import graph  # noqa: E402
from colorize_tf.serving import inference  # noqa: E402
from data_prep import builder  # noqa: E402

flags.DEFINE_string("saved_model", os.path.join(REPO, "saved_models", "colorunet_general"),
                    "SavedModel (version or base dir).")
flags.DEFINE_string("file_list", os.path.join(REPO, "records", "general_mix.tsv"),
                    "The mix's file list (general_cpu.flags' first command).")
flags.DEFINE_integer("max_per_class", 2400, "The cap the records were built with.")
flags.DEFINE_integer("per_domain", 100, "Held-out photos per domain.")
flags.DEFINE_enum("held_out", "left_out", ["left_out", "val"], "left_out: photos the cap "
                  "left out of the records; val: photos of the records' val split (the "
                  "content hash's, as build_records splits), which no run trains on, "
                  "whatever cap it was built with.")
flags.DEFINE_float("val_fraction", builder.DEFAULT_VAL_FRACTION,
                   "--held_out=val: the records' --val_fraction.")
flags.DEFINE_list("alphas", ["0"], "Prior corrections to compare (0: none).")
flags.DEFINE_list("temperatures", ["0.38", "0.5", "0.7", "1"], "Temperatures.")
flags.DEFINE_list("upsampling", [], "Chroma upsamplings to compare, each "
                  "RADIUS:EPSILON[:SUBSAMPLE] (chroma/guided.py; radius 0: bilinear); none: "
                  "the model's own.")
flags.DEFINE_list("tint_corrections", [], "Tint corrections to compare "
                  "(chroma/decoding.py, 0-1); none: the model's own.")
flags.DEFINE_list("scales", ["1"], "Test-time average over the luma enlarged by each "
                  "of these (must include 1), e.g. 1,1.5.")
flags.DEFINE_bool("mirror_average", False, "Test-time average with the mirror image.")
flags.DEFINE_list("ensemble", [], "Test-time average with these SavedModels' "
                  "probabilities (the same bins and grid).")
flags.DEFINE_string("output", "", "Markdown file for the table (optional).")
FLAGS = flags.FLAGS


def held_out_photos(file_list, max_per_class, per_domain):
    """-> (paths, {path: ("domain: NAME",)}): per class, up to per_domain of the photos
    builder.cap_per_class leaves out, evenly spread over their listing order (the same
    cap_per_class again)."""
    sources, _, _ = builder.list_file_sources(file_list)
    kept = {s.path for s in builder.cap_per_class(sources, max_per_class)[0]}
    left = [s for s in sources if s.path not in kept]
    return _by_domain(builder.cap_per_class(left, per_domain)[0])


def _by_domain(picked):
    """Sources -> (paths, {path: ("domain: NAME",)})."""
    return ([s.path for s in picked],
            {s.path: (f"domain: {s.label_text}",) for s in picked})


def val_photos(file_list, max_per_class, per_domain, val_fraction):
    """-> (paths, {path: ("domain: NAME",)}): per class, up to per_domain of the photos
    of the records' val split (builder.plan_splits on the photos cap_per_class keeps),
    evenly spread. The split is by content, so these are val photos of every build of
    the list, at any cap: held out from a model trained on any of them."""
    sources, _, _ = builder.list_file_sources(file_list)
    kept = builder.cap_per_class(sources, max_per_class)[0]
    plan, _ = builder.plan_splits(kept, val_fraction)
    val_paths = {s.path for s in plan[records.VAL]}
    val = [s for s in kept if s.path in val_paths]
    return _by_domain(builder.cap_per_class(val, per_domain)[0])


def corrected(probabilities_fn, weights, alpha):
    """Colorizer.probabilities with p / w^alpha renormalised (alpha 0: unchanged)."""
    def probabilities(rgb, work_size=None, hint_count=None, hint_seeds=None):
        luma, p = probabilities_fn(rgb, work_size)
        if alpha:
            p = p * tf.pow(weights, -alpha)
            p = p / tf.reduce_sum(p, axis=-1, keepdims=True)
        return luma, p
    return probabilities


def test_time_average(colorizer, others, scales, mirror):
    """Colorizer.probabilities -> the mean of the bin probabilities of the photo's
    working-size luma enlarged by each of scales (bicubic; brought back to the logits'
    grid of scale 1 by area averaging), of its mirror image's too (mirror), and of the
    Colorizers others' (models with the same bins and grid): test-time averages."""
    def probabilities(rgb, work_size=None, hint_count=None, hint_seeds=None):
        luma, small = graph.preprocess(tf.convert_to_tensor(rgb, tf.uint8),
                                       work_size or colorizer.export_info.work_size,
                                       colorizer.color_space)
        size = tf.cast(tf.shape(small)[1:3], tf.float32)
        parts = []
        for model in [colorizer, *others]:
            for scale in scales:
                x = small if scale == 1 else tf.clip_by_value(tf.image.resize(
                    small, tf.cast(tf.round(size * scale), tf.int32), "bicubic"), 0.0, 1.0)
                for flip in [False, True] if mirror else [False]:
                    p = model.probabilities_of_luma(tf.reverse(x, [2]) if flip else x)
                    parts.append((scale, tf.reverse(p, [2]) if flip else p))
        grid = tf.shape(next(p for scale, p in parts if scale == 1))[1:3]
        mean = tf.add_n([p if scale == 1 else tf.image.resize(p, grid, "area")
                         for scale, p in parts]) / len(parts)
        return luma, mean / tf.reduce_sum(mean, axis=-1, keepdims=True)
    return probabilities


def main(_):
    try:
        alphas = [float(a) for a in FLAGS.alphas]
        temperatures = [float(t) for t in FLAGS.temperatures]
        upsamplings = [guided.ChromaUpsampling(int(u[0]), float(u[1]), int((u[2:] or [1])[0]))
                       for u in (u.split(":") for u in FLAGS.upsampling)]
        tints = [float(b) for b in FLAGS.tint_corrections]
        scales = [float(x) for x in FLAGS.scales]
    except (ValueError, IndexError) as e:
        raise app.UsageError(f"--alphas, --temperatures, --tint_corrections and --scales "
                             f"take numbers, --upsampling RADIUS:EPSILON pairs: {e}") from None
    if 1 not in scales or min(scales) <= 0:
        raise app.UsageError(f"--scales must be > 0 and include 1, got {scales}")
    if not all(0 <= b <= 1 for b in tints):
        raise app.UsageError(f"--tint_corrections must be in [0, 1], got {tints}")
    if FLAGS.per_domain < 1 or FLAGS.max_per_class < 1:
        raise app.UsageError("--per_domain and --max_per_class must be >= 1")
    try:
        if FLAGS.held_out == "val":
            paths, groups = val_photos(FLAGS.file_list, FLAGS.max_per_class,
                                       FLAGS.per_domain, FLAGS.val_fraction)
        else:
            paths, groups = held_out_photos(FLAGS.file_list, FLAGS.max_per_class,
                                            FLAGS.per_domain)
    except builder.InputError as e:
        raise app.UsageError(str(e)) from None
    colorizer = inference.Colorizer(FLAGS.saved_model)
    upsamplings = upsamplings or [colorizer.export_info.upsampling]
    own = colorizer.decoder
    tints = tints or [own.tint_correction]
    plain = colorizer.probabilities
    if FLAGS.ensemble or FLAGS.mirror_average or scales != [1]:
        others = [inference.Colorizer(path) for path in FLAGS.ensemble]
        for other in others:
            same = [(b.grid, b.kept_cells, b.centres) for b in (other.bins, colorizer.bins)]
            if same[0] != same[1]:  # the counts may differ (build_records --bins_from)
                raise app.UsageError(f"{other.path}: other bins than {colorizer.path}'s")
        plain = test_time_average(colorizer, others, scales, FLAGS.mirror_average)
    weights = tf.constant(colorizer.bins.weights, tf.float32)
    domains = sorted({g for names in groups.values() for g in names})
    kind = "Val-split" if FLAGS.held_out == "val" else "Held-out train"
    averaged = ", ".join(
        ([f"averaged over the luma at {FLAGS.scales} its size"] if scales != [1] else [])
        + (["averaged with its mirror image"] if FLAGS.mirror_average else [])
        + ([f"averaged with {FLAGS.ensemble}"] if FLAGS.ensemble else []))
    lines = [f"{kind} photos of {colorizer.path}{' (' + averaged + ')' if averaged else ''}"
             f" ({len(paths)} photos; PSNR dB / "
             "rebalanced AuC % / colourfulness ratio / colour cast; upsampling: the guided "
             "filter's radius:epsilon:subsample, radius 0 bilinear):", "",
             "| upsampling | alpha | tint | method | all | "
             + " | ".join(d.split(": ")[1] for d in domains) + " |",
             "|---|---|---|---|---|" + "---|" * len(domains)]
    info = colorizer.export_info
    for upsampling, alpha, tint in [(u, a, b) for u in upsamplings for a in alphas
                                    for b in tints]:
        colorizer.export_info = dataclasses.replace(
            info, guided_radius=upsampling.radius, guided_epsilon=upsampling.epsilon,
            guided_subsample=upsampling.subsample)
        colorizer.probabilities = corrected(plain, weights, alpha)
        colorizer.decoder = own.with_tint_correction(tint, colorizer.bins)
        totals = scoring.evaluate(colorizer, paths, temperatures, num_figures=0,
                                  groups=groups)
        per_group = {"all": totals.summary()[0],
                     **{d: totals.groups[d].summary()[0] for d in domains}}
        start = len(lines)
        for method in scoring.method_names(temperatures):
            if (alpha or upsampling != upsamplings[0] or tint != tints[0]) and method in (
                    scoring.GRAY, scoring.MEAN):
                continue  # the same with every alpha, upsampling and tint correction
            cells = [f"{m[method]['psnr']:.2f} / {100 * m[method]['auc_rebalanced']:.1f} / "
                     f"{m[method]['colourfulness_ratio']:.2f} / "
                     f"{m[method]['colour_cast']:.1f}"
                     for m in (per_group[g] for g in ["all", *domains])]
            lines.append(f"| {upsampling.radius}:{upsampling.epsilon:g}:"
                         f"{upsampling.subsample} | {alpha:g} | {tint:g} | "
                         f"{method} | " + " | ".join(cells) + " |")
        print("\n".join(lines[start:]), flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if FLAGS.output:
        safe_write.write_bytes(FLAGS.output, text.encode())


if __name__ == "__main__":
    app.run(main)
