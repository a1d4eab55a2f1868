import cv2
import numpy as np
import pytest
import tensorflow as tf

from colorize_tf.data import records
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


def _tf_example(png, frame_shape, box, original_shape, source_id, label, text):
    """The oracle: TensorFlow's own protobuf classes and serializer."""
    def feature(value):
        if isinstance(value, bytes):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=list(value)))
    feature = {
        "image/encoded": feature(png), "image/format": feature(b"png"),
        "image/height": feature([frame_shape[0]]), "image/width": feature([frame_shape[1]]),
        "image/mask/box": feature(box), "image/original/height": feature([original_shape[0]]),
        "image/original/width": feature([original_shape[1]]),
        "image/source_id": feature(source_id.encode("utf-8", "surrogateescape")),
        "image/class/label": feature([label]), "image/class/text": feature(text.encode())}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(
        deterministic=True)


@pytest.mark.parametrize("case", [
    # (PNG size, frame, box, original, source id, label, text): lengths across varint
    # widths (127/128, 16383/16384 bytes), a negative label (a ten-byte varint), ids
    # that are not UTF-8, empty texts, sizes past 2**31.
    (0, (1, 1), (0, 0, 1, 1), (1, 1), "", -1, ""),
    (127, (32, 32), (0, 0, 20, 30), (40, 60), "sea/1.jpg", 3, "sea"),
    (128, (128, 128), (0, 0, 128, 96), (3000, 4000), "caf\udce9/\u00e9t\u00e9.jpg", 0, "\u00e9"),
    (16383, (256, 256), (0, 0, 255, 1), (2 ** 31 + 5, 7), "a" * 200, 2 ** 40, "x" * 130),
    (16384, (96, 64), (0, 0, 96, 64), (96, 64), "tfds:x/train/00000001", 127, "street"),
    (70000, (128, 128), (1, 2, 3, 4), (300, 200), "b/c.png", 128, "faces"),
])
def test_examples_are_tf_protobuf_bytes(case):
    # Written without TensorFlow (data prep's workers), the same bytes as TF's
    # protobuf classes give with deterministic=True.
    size, frame, box, original, source_id, label, text = case
    png = np.random.default_rng(size).integers(0, 256, size, np.uint8).tobytes()
    assert records.make_example(png, frame, box, original, source_id, label, text) == \
        _tf_example(png, frame, box, original, source_id, label, text)


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
