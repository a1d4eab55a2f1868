r"""Training throughput vs the machine's matmul rate, and input pipeline vs training step.

    python bench/train.py [--batch_size=32] [--crop_size=96] [--base_filters=16]
    python bench/train.py --records_dir=records/general_lab_128   # your records, 255 bins
    python bench/train.py --sizes=16x3x96,24x3x96,32x3x96,16x4x128 [--num_bins=255]

Prints where the step's time goes (forward only vs the whole step: backward and Adam
should cost about twice the forward), the model's FLOPs per image (counted layer by
layer from the built model: 2 * output pixels * kernel area * in * out for each
convolution; a training step is counted as 3x the forward pass), training images/s
of the Keras train step, the achieved FLOP/s next to a float32 matmul's FLOP/s
measured in the same run (goal: >= 50%), and the input pipeline's images/s, with
one-hot and with soft targets (Zhang's k = 5), next to the training step's (goal:
>= 5x). The pipeline reads --records_dir, or records built from
../shared/data/landscapes (or generated photos).

With --sizes, instead: one line per model size (base filters x depth x crop) with its
parameters, training GFLOP per image, training images/s and images per hour: what
scaling the model costs on this machine.
"""
import argparse
import functools
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import glob  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench import common  # noqa: E402

print = functools.partial(print, flush=True)  # progress shows when piped


def conv_flops(model, height, width):
    """Forward FLOPs of the convolutions for one [height, width] image."""
    import keras
    total = 0
    probe = keras.Model(model.input, [layer.output for layer in model.layers
                                      if isinstance(layer, (keras.layers.Conv2D,
                                                            keras.layers.Conv2DTranspose))])
    outputs = probe(np.zeros((1, height, width, 1), np.float32))
    convs = [l for l in model.layers if isinstance(l, (keras.layers.Conv2D,
                                                       keras.layers.Conv2DTranspose))]
    for layer, out in zip(convs, outputs):
        kh, kw, cin, cout = layer.kernel.shape
        pixels = out.shape[1] * out.shape[2]
        if isinstance(layer, keras.layers.Conv2DTranspose):
            cin, cout = cout, cin  # kernel is [kh, kw, out, in]
            pixels //= layer.strides[0] * layer.strides[1]  # each input pixel is scattered
        total += 2 * pixels * kh * kw * cin * cout
    return total


def matmul_flops_per_second(n=2048, repeats=10):
    a = tf.random.normal([n, n])
    b = tf.random.normal([n, n])
    step = tf.function(lambda: tf.matmul(a, b))
    step().numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        out = step()
    out.numpy()
    return 2 * n ** 3 * repeats / (time.perf_counter() - start)


def _records(tmp):
    from colorize_tf.testing.fake_data import make_photo, write_png
    from data_prep import builder
    from data_prep import prepare
    paths = sorted(glob.glob(os.path.join(common.LANDSCAPES, "*", "*.jpg")))[:800]
    if not paths:
        paths = [write_png(os.path.join(tmp, "photos", f"{i}.png"), make_photo(150, 150, i))
                 for i in range(300)]
    sources = [builder.Source(p, p) for p in paths]
    out = os.path.join(tmp, "records")
    builder.build_records(sources, out, prepare.PrepConfig(frame_size=128),
                          val_fraction=0.0, workers=1, log=lambda *_: None)
    return out


def training_rate(model, size, batch, num_bins, steps):
    """Images/s of Keras' train step on random data (no input pipeline)."""
    from colorize_tf.data import input_pipeline
    from colorize_tf.modeling import losses
    import keras
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=losses.MaskedRebalancedCrossEntropy())
    luma = tf.random.uniform([batch, size, size, 1])
    ones = tf.ones([batch, size, size, 1])
    target = input_pipeline.pack(tf.random.uniform([batch, size, size, 1], 0, num_bins,
                                                   tf.int32),
                                 tf.zeros([batch, size, size, 2]), ones, ones)
    data = tf.data.Dataset.from_tensors((luma, target)).repeat()
    model.fit(data, steps_per_epoch=3, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch / (time.perf_counter() - start)


def size_sweep(args):
    """One line per model size: parameters, FLOPs and training images/s, and how many
    images an hour of training sees at that rate."""
    from colorize_tf.modeling import colorunet
    from colorize_tf.modeling.model import ModelConfig
    print(f"{'filters x depth x crop':>24} {'params':>10} {'GFLOP/img (train)':>18} "
          f"{'images/s':>9} {'images/hour':>12}")
    for spec in args.sizes.split(","):
        filters, depth, crop = (int(v) for v in spec.lower().split("x"))
        model = colorunet.build_colorunet(ModelConfig(
            base_filters=filters, depth=depth, num_bins=args.num_bins))
        flops = 3 * conv_flops(model, crop, crop)
        rate = training_rate(model, crop, args.batch_size, args.num_bins, args.steps)
        print(f"{spec:>24} {model.count_params():>10,} {flops / 1e9:>18.3f} {rate:>9.1f} "
              f"{rate * 3600:>12,.0f}", flush=True)
    print(f"(batch {args.batch_size}, {args.num_bins} bins, {args.steps} steps each; "
          f"fp32 matmul on this machine: {matmul_flops_per_second() / 1e9:.1f} GFLOP/s)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--crop_size", type=int, default=96)
    parser.add_argument("--base_filters", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--sizes", default="",
                        help="instead: what each model size costs, e.g. 16x3x96,24x3x96 "
                        "(base filters x depth x crop px)")
    parser.add_argument("--num_bins", type=int, default=32, help="output bins (--sizes)")
    parser.add_argument("--records_dir", default="",
                        help="records for the input pipeline (default: built from photos)")
    args = parser.parse_args()
    if args.sizes:
        return size_sweep(args)
    from colorize_tf.chroma.bins import Bins
    from colorize_tf.data import input_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        records_dir = args.records_dir or _records(tmp)
        bins = Bins.load(records_dir)
        train_rate = step_report(args, bins.num_bins)
        for soft in (False, True):
            rate = pipeline_rate(records_dir, bins, args.batch_size,
                                 input_pipeline.PipelineConfig(crop_size=args.crop_size,
                                                               soft_targets=soft))
            common.line(f"input pipeline, {'soft' if soft else 'one-hot'} targets "
                        f"({bins.num_bins} bins)", rate, "images/s", "training step",
                        train_rate)


def step_report(args, num_bins):
    """Prints the model's cost and the training step's rate against the forward pass
    and the machine's matmul rate; -> training images/s."""
    from colorize_tf.modeling import colorunet
    from colorize_tf.modeling.model import ModelConfig
    size, batch = args.crop_size, args.batch_size
    model = colorunet.build_colorunet(ModelConfig(base_filters=args.base_filters,
                                                            num_bins=num_bins))
    flops = conv_flops(model, size, size)
    print(f"ColorUNet {model.count_params():,} params, {num_bins} bins; forward "
          f"{flops / 1e9:.3f} GFLOP per {size}x{size} image, training step "
          f"~{3 * flops / 1e9:.3f} GFLOP per image")
    train_rate = training_rate(model, size, batch, num_bins, args.steps)
    luma = tf.random.uniform([batch, size, size, 1])
    forward = tf.function(lambda x: model(x, training=False))
    forward_rate = common.rate(lambda: [forward(luma) for _ in range(5)][-1].numpy(), 5 * batch)
    matmul = matmul_flops_per_second()
    common.line("forward pass only", forward_rate, "images/s")
    common.line("training step", train_rate, "images/s", "3 x forward time",
                forward_rate / 3)
    common.line("training FLOP/s (GFLOP/s)", 3 * flops * train_rate / 1e9, "GFLOP/s",
                "fp32 matmul", matmul / 1e9)
    return train_rate

def pipeline_rate(records_dir, bins, batch, config, batches=40):
    """Images/s of the training input pipeline alone."""
    from colorize_tf.data import input_pipeline
    dataset = input_pipeline.make_dataset(f"{records_dir}/train-*", bins, batch, True,
                                          config, epochs=5, steps_per_epoch=10)
    iterator = iter(dataset)
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch / (time.perf_counter() - start)


if __name__ == "__main__":
    main()
