import cv2
import numpy as np
import tensorflow as tf

from colorize_tf import records
from tests.conftest import make_photo


def _example(rgb, box=(0, 0, 20, 30), label=1, text="sea"):
    ok, png = cv2.imencode(".png", rgb[..., ::-1].copy())
    assert ok
    return records.make_example(png.tobytes(), rgb.shape[:2], box, (40, 60), "sea/1.jpg",
                                label, text)


def test_round_trip_pixels_mask_label(tmp_path):
    rgb = make_photo(32, 32, seed=3)
    path = str(tmp_path / "a.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(_example(rgb))
    (example,) = records.read_examples(path)
    assert example[records.SOURCE_ID] == b"sea/1.jpg"
    assert example[records.LABEL] == 1 and example[records.LABEL_TEXT] == b"sea"
    assert list(example[records.MASK_BOX]) == [0, 0, 20, 30]
    assert (example[records.ORIGINAL_HEIGHT], example[records.ORIGINAL_WIDTH]) == (40, 60)
    decoded, mask = records.decode_frame({k: tf.constant(v) for k, v in example.items()})
    np.testing.assert_array_equal(np.round(decoded.numpy() * 255).astype(np.uint8), rgb)
    assert mask.shape == (32, 32, 1)
    assert mask.numpy().sum() == 20 * 30
    assert mask.numpy()[19, 29, 0] == 1 and mask.numpy()[20, 29, 0] == 0


def test_unlabeled_default():
    rgb = make_photo(8, 8)
    parsed = records.parse_examples(tf.constant([_example(rgb, label=records.NO_LABEL,
                                                          text="")]))
    assert parsed[records.LABEL].numpy()[0] == -1


def test_shard_names():
    assert records.shard_name("train", 3, 12) == "train-00003-of-00012.tfrecord"


def test_report_round_trip_and_refusals(tiny_records):
    import json
    import os
    import pytest
    report = records.Report.load(tiny_records)
    assert records.Report.from_dict(report.to_dict()) == report
    assert report.written["train"] == sum(s["examples"] for s in report.shards["train"])
    report.verify(tiny_records)
    for bad, message in [([], "not a JSON object"), ({"written": {}}, "no 'shards'"),
                         ({**report.to_dict(), "version": 99}, "report version 99"),
                         ({**report.to_dict(), "written": {"train": 1}}, "both splits")]:
        with pytest.raises(ValueError, match=message):
            records.Report.from_dict(bad)
    lying = records.Report.from_dict({**report.to_dict(), "written": {
        "train": report.written["train"] + 1, "val": report.written["val"]}})
    with pytest.raises(ValueError, match="the report says"):
        lying.verify(tiny_records)
    assert json.load(open(os.path.join(tiny_records, "report.json")))["version"] == 1
