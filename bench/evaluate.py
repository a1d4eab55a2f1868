r"""Evaluation speed: the whole evaluation next to the model alone, in the same run.

    python bench/evaluate.py [--images=400] [--saved_model=saved_models/colorunet_landscapes]

1. Model alone: the SavedModel's `luma_probabilities` signature (the ColorUNet and its
   softmax) on batches of the photos' working-size luma, prepared beforehand.
2. The whole evaluation (scoring.evaluate): read and decode every photo, leave
   out gray ones, preprocess, the model, gray/mean/4 temperatures rendered at full
   size, and every metric (PSNR, SSIM, MSE ab, error curves, colourfulness, bin
   histograms). Goal: >= 0.5x the model-only rate.
Photos: an even spread over ../shared/data/landscapes/test.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench import common  # noqa: E402
from colorize_tf.evaluation import photos  # noqa: E402
from colorize_tf.evaluation import scoring  # noqa: E402
from colorize_tf.serving import graph  # noqa: E402
from colorize_tf.serving import inference  # noqa: E402

GOAL = 0.5


def model_only_rate(colorizer, truths, batch_size):
    """Photos/s of the luma_probabilities signature on the photos' working-size luma."""
    by_shape = {}
    for truth in truths:
        by_shape.setdefault(truth.shape, []).append(truth)
    batches = []
    for group in by_shape.values():
        for i in range(0, len(group), batch_size):
            rgb = tf.constant(np.stack(group[i:i + batch_size]), tf.uint8)
            batches.append(graph.preprocess(rgb, colorizer.export_info.work_size,
                                            colorizer.color_space)[1])
    return common.rate(lambda: [colorizer.probabilities_of_luma(b).numpy() for b in batches],
                       len(truths))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--batch_size", type=int, default=photos.BATCH_SIZE)
    parser.add_argument("--saved_model", default=inference.default_saved_model())
    parser.add_argument("--images_dir", default=os.path.join(common.SHARED_DATA, "landscapes",
                                                             "test"))
    args = parser.parse_args()
    if not os.path.isdir(args.images_dir):
        sys.exit(f"bench/evaluate.py: {args.images_dir} is missing")
    files = sorted(os.path.join(root, name) for root, _, names in os.walk(args.images_dir)
                   for name in names)
    paths = [files[i] for i in np.linspace(0, len(files) - 1, min(args.images, len(files)))
             .astype(int)]
    colorizer = inference.Colorizer(args.saved_model)
    temperatures = scoring.DEFAULT_TEMPERATURES
    scoring.evaluate(colorizer, paths[:args.batch_size], temperatures)  # trace once
    start = time.perf_counter()
    totals = scoring.evaluate(colorizer, paths, temperatures, batch_size=args.batch_size)
    whole = len(paths) / (time.perf_counter() - start)
    truths = []
    for _, truth in photos.read_ground_truths(paths, colorizer.export_info.max_pixels,
                                              None):
        if not isinstance(truth, photos.LeftOut):
            truths.append(truth)
    model = model_only_rate(colorizer, truths, args.batch_size)
    print(f"{len(paths)} photos ({totals.evaluated} evaluated), {len(temperatures)} "
          f"temperatures, batch {args.batch_size}, work size "
          f"{colorizer.export_info.work_size}")
    common.line("model alone (luma_probabilities)", model, "photos/s")
    common.line("whole evaluation", whole, "photos/s", "model alone", model)
    print(f"goal: >= {GOAL}x the model alone: {'met' if whole >= GOAL * model else 'NOT met'}")


if __name__ == "__main__":
    main()
