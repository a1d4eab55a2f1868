"""tf.data input pipeline: records -> (luma, targets) batches for ColorUNet.

Per epoch e the order and the augmentation are functions of (seed, e) only: the
shards are shuffled statelessly, the example shuffle buffer is seeded with
(seed, e), and every random op is stateless, seeded with (seed, e, index). A run
resumed at epoch e therefore sees exactly the data an uninterrupted run sees.

Targets are packed into one tensor per pixel so a plain Keras loss can read them:
one-hot: [..., 5] = (bin index, chroma (2), rebalancing weight, mask);
soft:    [..., 2k + 4] = (k nearest bins, their k probabilities, chroma (2), weight of
the nearest bin, mask): Zhang's soft target by its k non-zero entries.
The true chroma rides along for the chroma-error metric.
"""
import dataclasses
import typing

import tensorflow as tf

from colorize_tf import serving_api
from colorize_tf.chroma.bins import DEFAULT_SOFT_K, bin_weights, encode_hard, encode_soft
from colorize_tf.chroma import color
from colorize_tf.chroma import hints
from colorize_tf.data import records

AUTOTUNE = tf.data.AUTOTUNE
MAX_OPEN_SHARDS = 16  # shards read at once, in turns (_serialized_records)


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """crop_size: training side (px, divisible by 8); crop_scale: side of the random
    square crop as a fraction of the photo's shorter side (paper 3.2); noise_stddev:
    max standard deviation of Gaussian noise added to the input luma, drawn
    uniformly per image from [0, noise_stddev]; target_stride: the targets have
    1 / target_stride of the crop's side, each the mean chroma (and mask) of a
    target_stride^2 block (a model whose logits are at a quarter resolution, as Zhang
    et al. 2016's: the truth is averaged to their grid, then encoded)."""
    crop_size: int = 128
    mirror: bool = True
    random_crop: bool = True
    crop_scale: tuple = (0.7, 1.0)
    noise_stddev: float = 0.03
    soft_targets: bool = False
    soft_k: int = DEFAULT_SOFT_K
    soft_sigma: float = 0.0  # 0: half a grid cell
    regression_target: bool = False
    scene_target: bool = False
    regression_only: bool = False  # the only target is pack_regression (Sun and Shen, eq. 2)
    hints: bool = False  # inputs: luma and hints simulated from the truth (chroma/hints.py)
    target_stride: int = 1
    frame_scale_crops: bool = False
    shuffle_buffer: int = 2048
    cache: bool = False
    deterministic: bool = True
    seed: int = 0


class Targets(typing.NamedTuple):
    """The named parts of a packed target: bins int32 [..., k] with their probability
    [..., k] (one-hot: k = 1, probability 1), chroma [..., 2], weight [...] (of the
    true bin), mask [...]."""
    bins: tf.Tensor
    probability: tf.Tensor
    chroma: tf.Tensor
    weight: tf.Tensor
    mask: tf.Tensor


def pack(target, chroma, weight, mask):
    """The parts (weight and mask [..., 1]) -> one tensor [..., t + 4] (module doc);
    target: the bin index [..., 1], or the k nearest bins and their probabilities
    [..., 2k]."""
    return tf.concat([tf.cast(target, tf.float32), chroma, weight, mask], axis=-1)


def unpack_targets(packed):
    """A packed target [..., t + 4] -> Targets; the one place that knows the layout."""
    packed = tf.cast(packed, tf.float32)
    target = packed[..., :-4]
    if target.shape[-1] == 1:  # one-hot: the bin index
        bins, probability = target, tf.ones_like(target)
    else:  # soft: k bins, then their k probabilities
        k = target.shape[-1] // 2
        bins, probability = target[..., :k], target[..., k:]
    return Targets(tf.cast(bins, tf.int32), probability, packed[..., -4:-2], packed[..., -2],
                   packed[..., -1])


def pack_regression(chroma, mask):
    """The regression head's target: chroma [..., 2] and mask [..., 1] -> [..., 3]."""
    return tf.concat([chroma, mask], axis=-1)


def unpack_regression(packed):
    """[..., 3] -> (chroma [..., 2], mask [...])."""
    packed = tf.cast(packed, tf.float32)
    return packed[..., :2], packed[..., 2]


def pack_targets(chroma, mask, bins, soft=False, soft_k=DEFAULT_SOFT_K,
                 soft_sigma=None):
    """chroma [..., 2], mask [..., 1] -> packed target (see module doc)."""
    index = encode_hard(chroma, bins)
    weight = bin_weights(index, bins)[..., None]
    if soft:
        nearest, probability = encode_soft(chroma, bins, soft_k, soft_sigma or None)
        target = tf.concat([tf.cast(nearest, tf.float32), probability], axis=-1)
    else:
        target = tf.cast(index, tf.float32)[..., None]
    return pack(target, chroma, weight, mask)


def random_square_crop(rgb, box, seed, scale, size):
    """A square crop inside the photo's box, resized to size: side = U(scale) * shorter
    side, or with scale None min(size, shorter side) (the frame's own scale; only a
    photo narrower than size is enlarged); at a random place, or central with seed None.

    Only valid pixels are cropped, so the mask of the result is all ones.
    """
    box = tf.cast(box, tf.int32)
    height, width = box[2] - box[0], box[3] - box[1]
    if scale is None:
        side = tf.maximum(1, tf.minimum(size, tf.minimum(height, width)))
    else:
        shorter = tf.cast(tf.minimum(height, width), tf.float32)
        fraction = tf.random.stateless_uniform([], seed, scale[0], scale[1])
        side = tf.maximum(1, tf.cast(tf.round(fraction * shorter), tf.int32))
    if seed is None:
        top, left = box[0] + (height - side) // 2, box[1] + (width - side) // 2
    else:
        offset_seed = tf.random.experimental.stateless_fold_in(seed, 1)
        offsets = tf.random.stateless_uniform([2], offset_seed, 0.0, 1.0)
        top = box[0] + tf.cast(offsets[0] * tf.cast(height - side + 1, tf.float32), tf.int32)
        left = box[1] + tf.cast(offsets[1] * tf.cast(width - side + 1, tf.float32), tf.int32)
        top = tf.minimum(top, box[2] - side)
        left = tf.minimum(left, box[3] - side)
    crop = tf.image.crop_to_bounding_box(rgb, top, left, side, side)
    crop = tf.image.resize(crop, [size, size], method="bilinear", antialias=True)
    return tf.clip_by_value(crop, 0.0, 1.0), tf.ones([size, size, 1], tf.float32)


def resize_frame(rgb, mask, size):
    """The whole frame to [size, size] (identity when it already is that size)."""
    rgb = tf.image.resize(rgb, [size, size], method="bilinear", antialias=True)
    mask = tf.image.resize(mask, [size, size], method="nearest")
    return tf.clip_by_value(rgb, 0.0, 1.0), mask


def pool_targets(chroma, mask, stride):
    """chroma [H, W, 2], mask [H, W, 1] (H, W multiples of stride) -> both averaged over
    stride x stride blocks, [H / stride, W / stride, .]; a block counts as valid (mask
    1) when at least half its pixels are, and its chroma is the mean of its valid
    pixels."""
    pooled = lambda x: tf.nn.avg_pool2d(x[None], stride, stride, "VALID")[0]  # noqa: E731
    valid = pooled(mask)
    chroma = pooled(chroma * mask) / tf.maximum(valid, 1e-6)
    return chroma, tf.cast(valid >= 0.5, tf.float32)


def example_to_inputs(example, seed, bins, config, training):
    """One parsed example -> (luma [S, S, 1], targets) for the model; with config.hints
    the inputs are a dict of the luma and the hints (hints.simulate, also when not
    training, so that validation sees hints).

    seed: int [2] for the stateless random ops (only the hints' when not training).
    """
    rgb, mask = records.decode_frame(example)
    size = config.crop_size
    if config.frame_scale_crops:
        rgb, mask = random_square_crop(rgb, example[records.MASK_BOX],
                                       seed if training and config.random_crop else None,
                                       None, size)
    elif training and config.random_crop:
        rgb, mask = random_square_crop(rgb, example[records.MASK_BOX], seed,
                                       config.crop_scale, size)
    else:
        rgb, mask = resize_frame(rgb, mask, size)
    if training and config.mirror:
        flip = tf.random.stateless_uniform([], tf.random.experimental.stateless_fold_in(
            seed, 2)) < 0.5
        rgb = tf.cond(flip, lambda: tf.image.flip_left_right(rgb), lambda: rgb)
        mask = tf.cond(flip, lambda: tf.image.flip_left_right(mask), lambda: mask)
    luma, chroma = color.rgb_to_luma_chroma(rgb, bins.grid.color_space)
    if training and config.noise_stddev > 0:
        noise_seed = tf.random.experimental.stateless_fold_in(seed, 3)
        stddev = tf.random.stateless_uniform([], noise_seed, 0.0, config.noise_stddev)
        noise = tf.random.stateless_normal(
            tf.shape(luma), tf.random.experimental.stateless_fold_in(seed, 4), stddev=stddev)
        luma = tf.clip_by_value(luma + noise, 0.0, 1.0)
    inputs = luma
    if config.target_stride > 1:
        chroma, mask = pool_targets(chroma, mask, config.target_stride)
    if config.hints:
        hint_chroma, hint_mask = hints.simulate(
            chroma, mask, tf.random.experimental.stateless_fold_in(seed, 5))
        inputs = {serving_api.LUMA: luma, serving_api.HINT_CHROMA: hint_chroma,
                  serving_api.HINT_MASK: hint_mask}
    if config.regression_only:
        primary_name, primary = "chroma", pack_regression(chroma, mask)
    else:
        primary_name, primary = "logits", pack_targets(
            chroma, mask, bins, config.soft_targets, config.soft_k, config.soft_sigma)
    if not (config.regression_target or config.scene_target):
        return inputs, primary
    targets = {primary_name: primary}
    if config.regression_target:
        targets["chroma"] = pack_regression(chroma, mask)
    if config.scene_target:
        targets["scene"] = example[records.LABEL]
    return inputs, targets


def _serialized_records(files, training, config, epoch):
    """Serialized examples of one pass over the files, shard order shuffled by
    (seed, epoch) if training. epoch: int64 scalar tensor."""
    open_shards = min(len(files), MAX_OPEN_SHARDS)
    files = tf.constant(files)
    if training:
        files = tf.random.experimental.stateless_shuffle(
            files, seed=tf.stack([tf.constant(config.seed, tf.int64), epoch]))
    # One example from each of up to MAX_OPEN_SHARDS shards in turn: data prep writes
    # the photos in the order of their names, so a shard often holds one class (the
    # general mix: 11 shards, each of one domain). Read 4 shards at a time in blocks
    # of 16, an epoch of 6,400 crops saw a few domains at a time and its loss swung
    # with them (4.27 -> 3.69 -> 4.36 between epochs).
    return tf.data.Dataset.from_tensor_slices(files).interleave(
        tf.data.TFRecordDataset, cycle_length=open_shards,
        block_length=1, num_parallel_calls=AUTOTUNE, deterministic=config.deterministic)


def _block_shuffle(serialized, config, epoch):
    """Shuffles within consecutive blocks of config.shuffle_buffer examples, each block
    by a stateless seed (seed, epoch, block). Dataset.shuffle cannot take the epoch
    as a tensor seed (with global seed 0 its seed check turns the tensor into a bool)."""
    def shuffle_block(block_index, block):
        seed = tf.stack([_epoch_seed(config, epoch), block_index])
        return tf.random.experimental.stateless_shuffle(block, seed=seed)
    return serialized.batch(config.shuffle_buffer).enumerate().map(shuffle_block).unbatch()


def _parsed(serialized):
    return serialized.batch(256).map(records.parse_examples,
                                     num_parallel_calls=AUTOTUNE).unbatch()


def _epoch_seed(config, epoch):
    return tf.constant(config.seed * 100003, tf.int64) + epoch


def make_dataset(file_pattern, bins, batch_size, training, config=PipelineConfig(),
                 epochs=1, initial_epoch=0, steps_per_epoch=None, shard=None):
    """Batches of (luma [B, S, S, 1], targets) from TFRecord shards.

    training: shuffle, augment, drop the last partial batch, and run the epochs
    [initial_epoch, epochs), each of steps_per_epoch batches (None: one pass); the
    epoch index is a tensor that seeds the order and the augmentation, so the
    pipeline has the same size for 10 or 10,000 epochs.
    Not training: one deterministic pass, no augmentation.
    shard: (count, index): keep the examples at positions index, index + count, ... of
    the epoch's order, after parsing and before the decoding and augmentation (which
    stay seeded by the position). Worker i of N with batch_size B / N then holds a
    share of the very global batches that one process with batch_size B makes.
    """
    files = sorted(tf.io.gfile.glob(file_pattern))
    if not files:
        raise FileNotFoundError(f"no TFRecord shards match {file_pattern!r}")
    cached = None
    if config.cache:  # the serialized records in one order, kept for all epochs
        cached = _serialized_records(files, False, config, tf.constant(0, tf.int64)).cache()

    def one_epoch(epoch):
        serialized = cached if cached is not None else _serialized_records(
            files, training, config, epoch)
        if training:
            serialized = _block_shuffle(serialized, config, epoch)
        examples = _parsed(serialized)

        def to_inputs(index, example):
            seed = tf.stack([_epoch_seed(config, epoch), index])
            return example_to_inputs(example, seed, bins, config, training)

        examples = examples.enumerate()
        if shard is not None:
            count, index = shard
            examples = examples.shard(count, index)
        dataset = examples.map(to_inputs, num_parallel_calls=AUTOTUNE,
                               deterministic=config.deterministic)
        dataset = dataset.batch(batch_size, drop_remainder=training)
        if training and steps_per_epoch:  # a short set repeats its epoch's order
            dataset = dataset.repeat().take(steps_per_epoch)
        return dataset

    if not training:
        return one_epoch(tf.constant(0, tf.int64)).prefetch(AUTOTUNE)
    dataset = tf.data.Dataset.range(initial_epoch, epochs).flat_map(one_epoch)
    return dataset.prefetch(AUTOTUNE)
