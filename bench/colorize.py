r"""Inference speed: ColorUNet vs Zhang et al.'s ECCV16 network, and the SavedModel's
pre/post-processing overhead, all measured in the same run.

    python bench/colorize.py [--base_filters=16]

1. Model-only images/s at 256x256 for ColorUNet and for the ECCV16 colorization
   network (VGG-style conv1-8, dilated conv5/6, 313-bin head at 1/4 resolution,
   1x1 to ab, 4x upsample; ~32M params) built in Keras with random weights: speed
   does not depend on weights. Goal: ColorUNet >= 20x faster.
2. The exported serving graph (decode, luma, Lanczos to the working size, model,
   annealed mean, upsample, PNG encode) on 256x256, 768x512 and 3000x2000 photos,
   next to the model alone at the same working size. Goal: the graph around the
   model costs <= 25% of the model at 768x512.
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench import common  # noqa: E402
from colorize_tf.fake_data import make_photo  # noqa: E402


def build_eccv16():
    """Zhang, Isola, Efros 2016 colorization network (Caffe model 'colorization_deploy_v2')."""
    import keras
    from keras import layers
    l_in = keras.Input((None, None, 1), name="l")
    x = l_in
    spec = [  # (block, filters, convs, first stride, last stride, dilation)
        ("conv1", 64, 2, 1, 2, 1), ("conv2", 128, 2, 1, 2, 1), ("conv3", 256, 3, 1, 2, 1),
        ("conv4", 512, 3, 1, 1, 1), ("conv5", 512, 3, 1, 1, 2), ("conv6", 512, 3, 1, 1, 2),
        ("conv7", 512, 3, 1, 1, 1)]
    for name, filters, convs, _, last_stride, dilation in spec:
        for i in range(convs):
            stride = last_stride if i == convs - 1 else 1
            x = layers.Conv2D(filters, 3, strides=stride, dilation_rate=dilation,
                              padding="same", activation="relu", name=f"{name}_{i + 1}")(x)
        x = layers.BatchNormalization(name=f"{name}_norm")(x)
    x = layers.Conv2DTranspose(256, 4, strides=2, padding="same", activation="relu",
                               name="conv8_1")(x)
    x = layers.Conv2D(256, 3, padding="same", activation="relu", name="conv8_2")(x)
    x = layers.Conv2D(256, 3, padding="same", activation="relu", name="conv8_3")(x)
    x = layers.Conv2D(313, 1, name="conv8_313")(x)
    x = layers.Softmax(name="class8_313_rh")(x * 2.606)
    x = layers.Conv2D(2, 1, use_bias=False, name="class8_ab")(x)
    x = layers.UpSampling2D(4, interpolation="bilinear", name="upsample4")(x)
    return keras.Model(l_in, x, name="eccv16")


def model_rate(model, size, batch=1, repeats=8):
    call = tf.function(lambda x: model(x, training=False))
    x = tf.random.uniform([batch, size[0], size[1], 1])
    return common.rate(lambda: [call(x) for _ in range(repeats)][-1].numpy(), batch * repeats)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base_filters", type=int, default=16)
    parser.add_argument("--work_size", type=int, default=256)
    args = parser.parse_args()
    from colorize_tf import bins as bins_lib
    from colorize_tf import serving
    from colorize_tf import model as model_lib

    ours = model_lib.build_colorunet(model_lib.ModelConfig(base_filters=args.base_filters))
    zhang = build_eccv16()
    print(f"ColorUNet {ours.count_params():,} params, ECCV16 {zhang.count_params():,} params",
          flush=True)
    ours_rate = model_rate(ours, (256, 256))
    zhang_rate = model_rate(zhang, (256, 256), repeats=3)
    common.line("ColorUNet model only, 256x256", ours_rate, "images/s", "ECCV16", zhang_rate)

    hist = bins_lib.ChromaHistogram(bins_lib.DEFAULT_GRIDS["yuv"])
    hist.add(np.random.default_rng(0).normal(0, 0.1, (64, 64, 2)))
    bins = bins_lib.fit_bins(hist, 32)
    module = serving.ColorizerModule(ours, bins, args.work_size)
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(module, tmp, signatures={"serving_default": module.serve})
        serve = tf.saved_model.load(tmp).signatures["serving_default"]
        for height, width in [(256, 256), (512, 768), (2000, 3000)]:
            photo = make_photo(height, width, seed=1)  # smooth, compresses like a photo
            data = tf.constant([tf.io.encode_jpeg(photo, quality=90).numpy()])
            repeats = 4 if height < 1000 else 2
            graph_rate = common.rate(lambda: [serve(image_bytes=data,
                                                    temperature=tf.constant([0.38]))
                                              for _ in range(repeats)][-1], repeats)
            work = serving.working_size(height, width, args.work_size).numpy()
            model_only = model_rate(ours, (int(np.ceil(work[0] / 8) * 8),
                                           int(np.ceil(work[1] / 8) * 8)), repeats=repeats)
            megapixels = height * width / 1e6
            common.line(f"SavedModel {width}x{height} (work {work[1]}x{work[0]})", graph_rate,
                        "images/s", "model only", model_only)
            print(f"    {1000 / graph_rate / megapixels:.0f} ms per megapixel; graph around "
                  f"the model costs {model_only / graph_rate - 1:.0%} of the model", flush=True)


if __name__ == "__main__":
    main()
