"""How much of the truth's recognition can a colorizer of this shape give back at all?

    python docs/eval_world/recognition_ceiling.py WILD/val [--max_images=700] \
        [--saved_model=saved_models/effnet_general/4]

The recognition goal of issue 40 asks the colours to close a quarter of gray's gap to
the truth's top-1 (the judge, EfficientNet-Lite2, agreeing with its own top-1 on the
colour photo). Every colorizer here predicts chroma at a quarter of its working size
(192 px on the longer side: a 48 px chroma grid) as a mix of 257 bin centres, under the
photo's own luma. This script gives the judge the truth's own chroma through those
limits, with no model in between, so the gap a perfect model could close is measured,
not assumed:

- truth: the colour photo;
- gray: its luma alone (chroma 0, as `evaluate` makes gray);
- grid: the truth's chroma, area-averaged to the model's output grid, bilinear back up;
- grid + bins: the same, each cell's chroma replaced by its nearest bin centre (what a
  perfectly confident, perfectly right model decodes to);
- mean: the photo's mean chroma everywhere (a global tint and nothing else).

Prints each variant's agreement with the truth's top-1 and the share of gray's gap it
closes (recognition.gap_closed). The judge comes from the `pretrained` extra.
"""
import argparse
import os
import sys

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from colorize_tf import presets  # noqa: E402
from colorize_tf.chroma import color  # noqa: E402
from colorize_tf.chroma.bins import BINS_NAME, Bins  # noqa: E402
from colorize_tf.data import image_files  # noqa: E402
from colorize_tf.evaluation import photos, recognition  # noqa: E402

WORK_SIZE = 192  # the shipped models' working size (export --work_size)
OUTPUT_STRIDE = 4  # their logits' stride: chroma on a grid a quarter of the working size


def variants(rgb, centres):
    """RGB uint8 [H, W, 3] -> {name: RGB uint8 [H, W, 3]} (module doc)."""
    rgb01 = tf.convert_to_tensor(rgb, tf.float32)[None] / 255.0
    luma, chroma = color.rgb_to_luma_chroma(rgb01, color.LAB)
    height, width = rgb.shape[:2]
    scale = WORK_SIZE / OUTPUT_STRIDE / max(height, width)
    grid_size = [max(1, round(height * scale)), max(1, round(width * scale))]
    small = tf.image.resize(chroma, grid_size, "area")
    distances = tf.reduce_sum((small[..., None, :] - centres) ** 2, -1)
    snapped = tf.gather(centres, tf.argmin(distances, -1))
    mean = tf.broadcast_to(tf.reduce_mean(chroma, [1, 2], keepdims=True), tf.shape(chroma))

    def rgb_of(c):
        up = tf.image.resize(c, [height, width], "bilinear")
        out = color.luma_chroma_to_rgb(luma, up, color.LAB)
        return tf.cast(tf.round(out[0] * 255.0), tf.uint8).numpy()
    return {"truth": rgb, "gray": rgb_of(tf.zeros_like(chroma)), "grid": rgb_of(small),
            "grid + bins": rgb_of(snapped), "mean": rgb_of(mean)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images_dir")
    parser.add_argument("--max_images", type=int, default=700)
    parser.add_argument("--saved_model", default="effnet_general")
    args = parser.parse_args()
    bins_path = os.path.join(presets.resolve_saved_model(args.saved_model), "assets",
                             BINS_NAME)
    centres = tf.constant(Bins.load(bins_path).centres, tf.float32)
    judge = recognition.Judge()
    paths = photos.list_photos(args.images_dir, args.max_images)
    top1 = {}
    for i, (path, truth) in enumerate(photos.read_ground_truths(
            paths, image_files.DEFAULT_MAX_PIXELS, color.GRAY_SPREAD)):
        if isinstance(truth, photos.LeftOut):
            continue
        made = variants(truth, centres)  # all of the photo's size: one batch
        classes, _ = judge(np.stack(list(made.values())))
        for name, top in zip(made, classes):
            top1.setdefault(name, []).append(int(top))
        if (i + 1) % 100 == 0:
            print(f"{i + 1}/{len(paths)} photos", file=sys.stderr)
    truth = np.array(top1["truth"])
    gray = float(np.mean(np.array(top1["gray"]) == truth))
    print(f"{len(truth)} photos of {args.images_dir} (judge: {recognition.JUDGE_NAME})")
    print("| variant | agrees with the truth's top-1 | gray's gap closed |")
    print("|---|---|---|")
    for name, values in top1.items():
        agree = float(np.mean(np.array(values) == truth))
        print(f"| {name} | {100 * agree:.1f}% | {recognition.gap_closed(agree, gray):+.2f} |")


if __name__ == "__main__":
    main()
