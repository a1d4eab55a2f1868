"""How many photos of the records' val split have a near-duplicate among its training
photos, per domain: the distance in bits between 64-bit difference hashes (9 x 8 gray
thumbnails, each pixel against its right neighbour) of each val photo and its nearest
training photo. Checks whether held_out.py --held_out=val can be flattered by a model
that saw the same photo twice.

    python docs/eval_general/near_duplicates.py --file_list=records/general_mix.tsv \\
        --max_per_class=4000

Prints one line a domain: the share of val photos within 2, 5 and 8 bits.
"""
import collections
import os
import sys

from absl import app
from absl import flags

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from colorize_tf.data import records  # noqa: E402
from data_prep import builder  # noqa: E402

flags.DEFINE_string("file_list", os.path.join(REPO, "records", "general_mix.tsv"),
                    "The mix's file list (general_cpu.flags' first command).")
flags.DEFINE_integer("max_per_class", 4000, "The cap the records were built with.")
flags.DEFINE_float("val_fraction", builder.DEFAULT_VAL_FRACTION, "The records' --val_fraction.")
FLAGS = flags.FLAGS
THRESHOLDS = (2, 5, 8)  # bits of 64


def difference_hash(path):
    """64 bits [64] uint8 of the photo at path, or None when it cannot be read."""
    gray = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if gray is None:
        return None
    small = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    return (small[:, 1:] > small[:, :-1]).flatten().astype(np.uint8)


def nearest_distances(val_hashes, train_hashes):
    """[V, 64], [T, 64] bits -> [V]: each val hash's distance to its nearest train hash."""
    v, t = val_hashes.astype(np.int32), train_hashes.astype(np.int32)
    same = v @ t.T + (1 - v) @ (1 - t).T  # bits in common
    return v.shape[1] - same.max(axis=1)


def main(_):
    try:
        sources, _, _ = builder.list_file_sources(FLAGS.file_list)
    except builder.InputError as e:
        raise app.UsageError(str(e)) from None
    kept = builder.cap_per_class(sources, FLAGS.max_per_class)[0]
    plan, _ = builder.plan_splits(kept, FLAGS.val_fraction)
    val = {s.path for s in plan[records.VAL]}
    hashes = collections.defaultdict(lambda: ([], []))  # domain -> (val, train)
    for source in kept:
        bits = difference_hash(source.path)
        if bits is not None:
            hashes[source.label_text][source.path not in val].append(bits)
    for domain, (val_bits, train_bits) in sorted(hashes.items()):
        if not val_bits or not train_bits:
            continue
        nearest = nearest_distances(np.array(val_bits), np.array(train_bits))
        shares = ", ".join(f"<= {k} bits {np.mean(nearest <= k):.1%}" for k in THRESHOLDS)
        print(f"{domain}: {len(val_bits)} val, {len(train_bits)} train photos; nearest "
              f"training photo {shares}")


if __name__ == "__main__":
    app.run(main)
