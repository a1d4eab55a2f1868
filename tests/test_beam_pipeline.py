"""build_records on Apache Beam (DirectRunner) gives what the local path gives."""
import os

import pytest
import tensorflow as tf

from colorize_tf.data import records
from data_prep import builder
from data_prep import prepare
from tests.conftest import make_photo, write_png
from tests.test_build_records import _make_bad_corpus

beam_pipeline = pytest.importorskip(
    "data_prep.beam_pipeline", reason="Apache Beam is not installed "
    "(pip install '.[beam]'; .ci/run runs this test in a venv of its own)")
pytest.importorskip("apache_beam")


def _examples(out, split):
    paths = tf.io.gfile.glob(records.shard_pattern(out, split))
    return sorted(bytes(r.numpy()) for r in tf.data.TFRecordDataset(sorted(paths)))


def test_beam_equals_the_local_path_on_a_bad_corpus(tmp_path):
    photos = _make_bad_corpus(str(tmp_path))
    for i in range(14):  # enough good photos for both splits and two train shards
        write_png(os.path.join(photos, f"c{i % 2}", f"{i}.png"), make_photo(40, 56, seed=i))
    sources, skipped, ignored = builder.list_dir_sources(photos)
    config = prepare.PrepConfig(frame_size=48, min_size=8)
    settings = dict(num_bins=8, rebalance_lambda=0.5, val_fraction=0.2, images_per_shard=8,
                    num_shards=2)
    local = builder.build_records(
        sources, str(tmp_path / "local"), config, workers=1, listing_skipped=skipped,
        ignored=ignored, log=lambda *_: None, **settings)
    beam = beam_pipeline.build_records_beam(
        sources, str(tmp_path / "beam"), config, runner="DirectRunner",
        listing_skipped=skipped, ignored=ignored, log=lambda *_: None, **settings)
    assert beam.written == local.written and local.written[records.VAL] > 0
    assert beam.skipped == local.skipped and len(local.skipped) >= 8  # reasons included
    assert beam.notes == local.notes and beam.ignored == local.ignored
    assert beam.bins == local.bins  # the table and its fingerprint
    for split in records.SPLITS:
        assert [s["file"] for s in beam.shards[split]] == [s["file"] for s in
                                                           local.shards[split]]
        assert _examples(tmp_path / "beam", split) == _examples(tmp_path / "local", split)
    # A complete build: training accepts it, and nothing of Beam's is left behind.
    records.Report.load(str(tmp_path / "beam")).verify(str(tmp_path / "beam"))
    assert sorted(os.listdir(tmp_path / "beam")) == sorted(os.listdir(tmp_path / "local"))
