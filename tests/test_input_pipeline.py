import numpy as np
import pytest
import tensorflow as tf

from colorize_tf.chroma.bins import Bins, DEFAULT_SOFT_K, encode_hard
from colorize_tf.chroma import color
from colorize_tf.data import input_pipeline
from colorize_tf.data import records

CONFIG = input_pipeline.PipelineConfig(crop_size=16, shuffle_buffer=8, seed=3)


def _pattern(records_dir, split="train"):
    return records.shard_pattern(records_dir, split)


def _first_example(records_dir):
    path = tf.io.gfile.glob(_pattern(records_dir))[0]
    dataset = tf.data.TFRecordDataset(path).batch(1).map(records.parse_examples).unbatch()
    return next(iter(dataset))


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("soft", [False, True])
def test_example_fn_eager_equals_tf_data(tiny_records, training, soft):
    bins = Bins.load(tiny_records)
    config = input_pipeline.PipelineConfig(crop_size=16, soft_targets=soft)
    example = _first_example(tiny_records)
    seed = tf.constant([7, 1], tf.int64)
    eager = input_pipeline.example_to_inputs(example, seed, bins, config, training)
    mapped = tf.data.Dataset.from_tensors(example).map(
        lambda e: input_pipeline.example_to_inputs(e, seed, bins, config, training))
    graph = next(iter(mapped))
    for a, b in zip(eager, graph):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    luma, packed = eager
    assert luma.shape == (16, 16, 1)
    k = min(DEFAULT_SOFT_K, bins.num_bins)
    assert packed.shape == (16, 16, (2 * k if soft else 1) + 4)
    assert 0.0 <= float(tf.reduce_min(luma)) and float(tf.reduce_max(luma)) <= 1.0


def test_targets_are_consistent(tiny_records):
    bins = Bins.load(tiny_records)
    example = _first_example(tiny_records)
    luma, packed = input_pipeline.example_to_inputs(example, tf.constant([0, 0], tf.int64),
                                                    bins, CONFIG, False)
    index = tf.cast(packed[..., 0], tf.int32)
    np.testing.assert_array_equal(index.numpy(),
                                  encode_hard(packed[..., 1:3], bins).numpy())
    np.testing.assert_allclose(packed[..., 3].numpy(),
                               np.asarray(bins.weights, np.float32)[index.numpy()])
    # The photo fills `rows` of the 32 frame's rows; resized to 16, the mask keeps half.
    top, left, bottom, right = example[records.MASK_BOX].numpy()
    rows = (bottom - top) / 2
    mask = packed[..., 4].numpy()
    assert mask[:int(np.floor(rows))].min() == 1 and mask[int(np.ceil(rows)):].max() == 0


def test_random_crop_only_takes_valid_pixels():
    rgb = tf.concat([tf.ones([20, 10, 3]), tf.zeros([20, 22, 3])], axis=1)
    rgb = tf.pad(rgb, [[0, 12], [0, 0], [0, 0]])
    for i in range(10):
        crop, mask = input_pipeline.random_square_crop(
            rgb, tf.constant([0, 0, 20, 10]), tf.constant([i, 0], tf.int64),
            (0.7, 1.0), 8)
        assert float(tf.reduce_min(crop)) > 0.99  # never the zero padding
        assert float(tf.reduce_min(mask)) == 1.0


def _photo_in_frame(height, width, frame=40):
    """A photo of distinct values at the top left of a zero-padded frame, and its box."""
    photo = np.random.default_rng(0).uniform(0.05, 1.0, [height, width, 3]).astype(np.float32)
    rgb = np.zeros([frame, frame, 3], np.float32)
    rgb[:height, :width] = photo
    return photo, tf.constant(rgb), tf.constant([0, 0, height, width])


def _slices_at(photo, crop):
    """(top, left) of every crop.shape square slice of photo equal to crop."""
    side = crop.shape[0]
    return [(t, left) for t in range(photo.shape[0] - side + 1)
            for left in range(photo.shape[1] - side + 1)
            if np.allclose(photo[t:t + side, left:left + side], crop, atol=1e-6)]


def test_frame_scale_crops_are_unresized_slices_of_the_photo():
    photo, rgb, box = _photo_in_frame(20, 30)
    places = set()
    for i in range(6):
        crop, mask = input_pipeline.random_square_crop(
            rgb, box, tf.constant([i, 0], tf.int64), None, 8)
        found = _slices_at(photo, crop.numpy())
        assert len(found) == 1 and float(tf.reduce_min(mask)) == 1.0
        places.add(found[0])
    assert len(places) > 1  # random places
    # Without a seed: the central slice, (20 - 8) / 2 rows and (30 - 8) // 2 columns in.
    crop, _ = input_pipeline.random_square_crop(rgb, box, None, None, 8)
    assert _slices_at(photo, crop.numpy()) == [(6, 11)]


def test_frame_scale_crop_of_a_narrow_photo_enlarges_its_shorter_side():
    photo, rgb, box = _photo_in_frame(6, 30)
    crop, mask = input_pipeline.random_square_crop(rgb, box, None, None, 8)
    # The central 6 x 6 square (columns 12..17), enlarged to 8 x 8, and no padding.
    expected = tf.image.resize(photo[None, :, 12:18], [8, 8], method="bilinear",
                               antialias=True)[0]
    np.testing.assert_allclose(crop.numpy(), np.clip(expected.numpy(), 0, 1), atol=1e-6)
    assert float(tf.reduce_min(mask)) == 1.0 and float(tf.reduce_min(crop)) > 0.0


@pytest.mark.parametrize("training", [True, False])
def test_frame_scale_crops_reach_the_inputs(tiny_records, training):
    """Training and validation both see crops at the frame's scale: their luma is a
    slice of the frame's own luma."""
    bins = Bins.load(tiny_records)
    example = _first_example(tiny_records)
    config = input_pipeline.PipelineConfig(crop_size=8, frame_scale_crops=True,
                                           mirror=False, noise_stddev=0.0)
    luma, _ = input_pipeline.example_to_inputs(example, tf.constant([5, 1], tf.int64), bins,
                                               config, training)
    rgb, _ = records.decode_frame(example)
    frame_luma = color.rgb_to_luma(rgb, bins.grid.color_space).numpy()
    top, left, bottom, right = example[records.MASK_BOX].numpy()
    assert min(bottom - top, right - left) >= 8  # the tiny frames: no enlarging
    found = _slices_at(frame_luma[top:bottom, left:right], luma.numpy())
    assert len(found) == 1
    if not training:
        assert found[0] == ((bottom - top - 8) // 2, (right - left - 8) // 2)


def test_dataset_batches_and_resume_determinism(tiny_records):
    bins = Bins.load(tiny_records)
    kwargs = dict(file_pattern=_pattern(tiny_records), bins=bins, batch_size=2,
                  training=True, config=CONFIG, steps_per_epoch=2)
    full = [b[0].numpy() for b in input_pipeline.make_dataset(epochs=3, **kwargs)]
    again = [b[0].numpy() for b in input_pipeline.make_dataset(epochs=3, **kwargs)]
    resumed = [b[0].numpy() for b in input_pipeline.make_dataset(epochs=3, initial_epoch=2,
                                                                 **kwargs)]
    assert len(full) == 6 and full[0].shape == (2, 16, 16, 1)
    for a, b in zip(full, again):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(full[4:], resumed):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(full[0], full[2])  # epochs differ


def test_val_dataset_is_one_plain_pass(tiny_records):
    bins = Bins.load(tiny_records)
    val = input_pipeline.make_dataset(_pattern(tiny_records, "val"), bins, 2, False, CONFIG)
    count = sum(int(b[0].shape[0]) for b in val)
    import json, os
    report = json.load(open(os.path.join(tiny_records, "report.json")))
    assert count == report["written"]["val"] > 0


def test_missing_shards_are_refused(tmp_path, tiny_records):
    bins = Bins.load(tiny_records)
    with pytest.raises(FileNotFoundError, match="no TFRecord shards"):
        input_pipeline.make_dataset(str(tmp_path / "x-*.tfrecord"), bins, 2, True)


def test_pipeline_size_does_not_grow_with_epochs(tiny_records):
    # One epoch's pipeline, with the epoch index as a tensor: 1,000 epochs build the
    # same graph as 10 (chaining one dataset per epoch grew to GBs), and cost no more
    # memory to build or to start.
    bins = Bins.load(tiny_records)
    sizes = []
    for epochs in (10, 1000):
        dataset = input_pipeline.make_dataset(_pattern(tiny_records), bins, 2, True, CONFIG,
                                              epochs=epochs, steps_per_epoch=1)
        sizes.append(len(dataset._as_serialized_graph().numpy()))
        assert dataset.cardinality().numpy() in (epochs, tf.data.UNKNOWN_CARDINALITY)
    assert sizes[1] < sizes[0] * 1.01  # (a few bytes: the constant 1000 vs 10)
    # ... and the 1,000 epochs are all there, each of one batch.
    many = input_pipeline.make_dataset(_pattern(tiny_records), bins, 2, True, CONFIG,
                                       epochs=1000, initial_epoch=995, steps_per_epoch=1)
    assert sum(1 for _ in many) == 5


def test_cached_pipeline_differs_per_epoch_and_resumes(tiny_records):
    bins = Bins.load(tiny_records)
    config = input_pipeline.PipelineConfig(**{**CONFIG.__dict__, "cache": True})
    kwargs = dict(file_pattern=_pattern(tiny_records), bins=bins, batch_size=2,
                  training=True, config=config, steps_per_epoch=2)
    full = [b[0].numpy() for b in input_pipeline.make_dataset(epochs=3, **kwargs)]
    resumed = [b[0].numpy() for b in input_pipeline.make_dataset(epochs=3, initial_epoch=2,
                                                                 **kwargs)]
    for a, b in zip(full[4:], resumed):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(full[0], full[2])


def test_shards_are_read_in_turns_so_that_classes_mix(tmp_path):
    # Data prep writes photos in name order, so a shard often holds one class: the
    # stream takes one record from each shard in turn (a0 b0 c0 a1 b1 c1 ...).
    files = []
    for shard in "abc":
        files.append(str(tmp_path / f"{shard}.tfrecord"))
        with tf.io.TFRecordWriter(files[-1]) as writer:
            for i in range(3):
                writer.write(f"{shard}{i}".encode())
    stream = input_pipeline._serialized_records(files, False, input_pipeline.PipelineConfig(),
                                                tf.constant(0, tf.int64))
    assert [x.decode() for x in stream.as_numpy_iterator()] == \
        ["a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"]
