"""The TFRecord schema: one tf.train.Example per photo, written by data prep, read by training.

Keys follow tensorflow/models' `image/*` convention. The frame is lossless PNG RGB,
the valid pixels are a content box inside it (the photo is placed at the top-left
corner and the rest is padding), so the mask costs four ints.
"""
import dataclasses
import hashlib
import json
import os

import numpy as np
import tensorflow as tf

# The feature keys and the writer need no TensorFlow (data prep's workers use them).
from colorize_tf import errors
from colorize_tf.data.example_proto import (  # noqa: F401 (the schema's names, here too)
    ENCODED, FORMAT, HEIGHT, LABEL, LABEL_TEXT, MASK_BOX, NO_LABEL, ORIGINAL_HEIGHT,
    ORIGINAL_WIDTH, PNG, SOURCE_ID, WIDTH, make_example)

# The layout of a records dir (python -m data_prep.build_records writes it, train reads it).
TRAIN = "train"
VAL = "val"
SPLITS = (TRAIN, VAL)
REPORT_NAME = "report.json"  # written last: the mark of a complete build

FEATURES = {
    ENCODED: tf.io.FixedLenFeature([], tf.string),
    FORMAT: tf.io.FixedLenFeature([], tf.string, default_value=PNG),
    HEIGHT: tf.io.FixedLenFeature([], tf.int64),
    WIDTH: tf.io.FixedLenFeature([], tf.int64),
    MASK_BOX: tf.io.FixedLenFeature([4], tf.int64),
    ORIGINAL_HEIGHT: tf.io.FixedLenFeature([], tf.int64),
    ORIGINAL_WIDTH: tf.io.FixedLenFeature([], tf.int64),
    SOURCE_ID: tf.io.FixedLenFeature([], tf.string),
    LABEL: tf.io.FixedLenFeature([], tf.int64, default_value=NO_LABEL),
    LABEL_TEXT: tf.io.FixedLenFeature([], tf.string, default_value=b""),
}


def shard_name(split, index, num_shards):
    """train-00000-of-00004.tfrecord"""
    return f"{split}-{index:05d}-of-{num_shards:05d}.tfrecord"


def shard_pattern(records_dir, split):
    return f"{records_dir}/{split}-?????-of-?????.tfrecord"


def file_sha256(path):
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_shards(records_dir, split, listed):
    """Checks a split's shards on disk against what build_records listed for it
    ([{"file", "examples", "bytes", "sha256"}]); returns the number of examples.

    Raises ValueError naming the first difference: a missing, extra, resized or
    changed shard (a build killed half-way, files copied in from another build).
    """
    found = {os.path.basename(p) for p in tf.io.gfile.glob(shard_pattern(records_dir, split))}
    expected = {shard["file"] for shard in listed}
    if found - expected:
        raise errors.Error(f"{sorted(found - expected)[0]} is not listed in the report")
    if expected - found:
        raise errors.Error(f"{sorted(expected - found)[0]} is missing")
    for shard in listed:
        path = os.path.join(records_dir, shard["file"])
        if os.path.getsize(path) != shard["bytes"]:
            raise errors.Error(f"{shard['file']} has {os.path.getsize(path)} bytes, the report "
                               f"says {shard['bytes']}")
        if file_sha256(path) != shard["sha256"]:
            raise errors.Error(f"{shard['file']} differs from the one the report lists "
                               "(sha256)")
    return sum(shard["examples"] for shard in listed)


REPORT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Report:
    """What build_records did, saved as report.json (REPORT_NAME) next to the shards.

    written: {split: examples}; shards: {split: [{"file", "examples", "bytes",
    "sha256"}]}; classes: class names (label i is classes[i]); bins: the bin table
    and fingerprint, None when no photo was usable; skipped, notes, ignored: lists
    of {"source", ...} for every input that was not written as is.
    """
    written: dict
    shards: dict
    classes: list
    bins: dict = None
    inputs_seen: int = 0
    skipped_count: dict = dataclasses.field(default_factory=dict)
    skipped: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)
    ignored: list = dataclasses.field(default_factory=list)
    settings: dict = dataclasses.field(default_factory=dict)
    elapsed_seconds: float = 0.0
    photos_per_second: float = 0.0
    version: int = REPORT_VERSION

    @property
    def bins_fingerprint(self):
        return (self.bins or {}).get("fingerprint")

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        """ValueError when data is not a report this code can read."""
        if not isinstance(data, dict):
            raise errors.Error("not a JSON object")
        if data.get("version", REPORT_VERSION) != REPORT_VERSION:
            raise errors.Error(f"report version {data.get('version')}, this code reads "
                               f"{REPORT_VERSION}")
        fields = {f.name for f in dataclasses.fields(cls)}
        for name in ("written", "shards", "classes"):
            if name not in data:
                raise errors.Error(f"no {name!r}")
        if not all(isinstance(data["written"].get(s), int) for s in SPLITS):
            raise errors.Error("'written' does not count both splits")
        return cls(**{k: v for k, v in data.items() if k in fields})

    @classmethod
    def load(cls, records_dir):
        """The report of records_dir; OSError or ValueError when missing or unreadable."""
        with open(os.path.join(records_dir, REPORT_NAME)) as f:
            return cls.from_dict(json.load(f))

    def verify(self, records_dir):
        """Checks the shards on disk against this report (names, sizes, sha256, counts);
        ValueError naming the first difference."""
        for split in SPLITS:
            count = verify_shards(records_dir, split, self.shards.get(split, []))
            if count != self.written[split]:
                raise errors.Error(f"the report says {self.written[split]} {split} examples "
                                   f"but its shards hold {count}")


def parse_examples(serialized):
    """Batch of serialized examples [B] -> dict of feature tensors (see FEATURES)."""
    return tf.io.parse_example(serialized, FEATURES)


def box_to_mask(box, height, width):
    """[ymin, xmin, ymax, xmax) -> float32 mask [height, width, 1], 1 inside the box."""
    box = tf.cast(box, tf.int32)
    rows = tf.range(height)[:, None]
    cols = tf.range(width)[None, :]
    inside = (rows >= box[0]) & (rows < box[2]) & (cols >= box[1]) & (cols < box[3])
    return tf.cast(inside, tf.float32)[..., None]


def decode_frame(example):
    """One parsed example -> (rgb float32 [H, W, 3] in [0, 1], mask float32 [H, W, 1])."""
    rgb = tf.io.decode_png(example[ENCODED], channels=3)
    rgb.set_shape([None, None, 3])
    shape = tf.shape(rgb)
    mask = box_to_mask(example[MASK_BOX], shape[0], shape[1])
    return tf.image.convert_image_dtype(rgb, tf.float32), mask


def read_examples(path):
    """All examples of one shard, parsed, as a list of numpy dicts (for tests and tools)."""
    dataset = tf.data.TFRecordDataset(path).batch(256).map(parse_examples)
    out = []
    for batch in dataset:
        batch = {k: v.numpy() for k, v in batch.items()}
        for i in range(len(batch[ENCODED])):
            out.append({k: (v[i] if not isinstance(v[i], np.ndarray) else v[i].copy())
                        for k, v in batch.items()})
    return out
