r"""Inference speed, all measured in the same run: ColorUNet vs Zhang et al.'s ECCV16
network, each signature of the SavedModel vs the bare model, and the graph around the
model at three photo sizes.

    python bench/colorize.py [--saved_model=saved_models/colorunet_general] [--work_size=256]

1. Model-only images/s at 256x256 for ColorUNet and for the ECCV16 colorization
   network (VGG-style conv1-8, dilated conv5/6, 313-bin head at 1/4 resolution,
   1x1 to ab, 4x upsample; ~32M params) built in Keras with random weights: speed
   does not depend on weights.
2. The signatures of the SavedModel's weights re-exported with this package's graph
   at --work_size (export_from_saved_model), at batch 4 of 256x256: colorize_luma and
   luma_probabilities on luma, serving_default and colorize_image (jpeg) on PNG
   photos, each next to the bare Keras model in a tf.function at the same batch and
   size, one call of each in turn for 16 rounds, median times (--guided_radius=0: with
   the bilinear chroma upsampling of earlier exports).
   Goal (issue 12): every signature >= 0.9 of the bare model.
3. One photo of 256x256, 768x512 and 3000x2000 through serving_default (PNG) and
   colorize_image (JPEG), next to the bare model at the same working size. Goals:
   the graph around the model costs <= 25% of the model at 768x512 and <= 200% at
   3000x2000. photo_floor (decode, a luma shrunk to the working size, encode), timed
   alone, is the least any graph from a JPEG to a JPEG of the photo does around the
   model.
In 2. and 3., decoding the model's scores alone (decode_scores: the annealed mean and
the confidence, on random logits) is timed too, against the share the goals leave.
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

from bench import common  # noqa: E402
from colorize_tf.testing.fake_data import make_photo  # noqa: E402


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


def photo_floor(data, work):
    """The least any graph from a JPEG to a colorized JPEG of the same size does around
    the model: decode, a luma, shrunk to the working size (area averaging, cheaper than
    the export's Lanczos), and encode a full-size RGB image (the decoded one, at the
    export's JPEG quality). The floor under the 768x512 and 3000x2000 goals."""
    from colorize_tf.serving import graph
    rgb = tf.io.decode_jpeg(data, channels=3)
    small = tf.image.resize(tf.image.rgb_to_grayscale(rgb), work, method="area")
    return tf.io.encode_jpeg(rgb, quality=graph.JPEG_QUALITY), small


def fetched_call(signature, inputs):
    """A call of a loaded signature on inputs, its outputs fetched as numpy."""
    return lambda: {k: v.numpy() for k, v in signature(**inputs).items()}


def decoding_ms(decoder, logits_shape, temperature, repeats):
    """ms of decoder.decode_scores (annealed mean and confidence: what every signature
    does after the model) on random logits of logits_shape, outputs fetched."""
    decode = tf.function(decoder.decode_scores, autograph=False)
    logits = tf.random.normal(logits_shape)
    temperatures = tf.fill(logits_shape[:1], temperature)

    def run():
        for _ in range(repeats):
            outputs = [x.numpy() for x in decode(logits, temperatures)]
        return outputs
    return 1000 / common.rate(run, repeats)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--saved_model", default=None,
                        help="default: the shipped default model")
    parser.add_argument("--work_size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--guided_radius", type=int, default=None,
                        help="the chroma's guided upsampling (export --guided_radius); "
                             "default: export's, 0: bilinear")
    args = parser.parse_args()
    from colorize_tf.chroma import decoding
    from colorize_tf.modeling.model import build_model, read_config
    from colorize_tf.serving import graph
    from colorize_tf.serving import inference
    from colorize_tf.training import exporter

    source = inference.resolve_saved_model(args.saved_model or inference.default_saved_model())
    with tempfile.TemporaryDirectory() as tmp:
        upsampling = {} if args.guided_radius is None else {
            "guided_radius": args.guided_radius}
        path = exporter.export_from_saved_model(source, os.path.join(tmp, "m"),
                                                work_size=args.work_size, **upsampling)
        signatures = tf.saved_model.load(path).signatures
        config = read_config(os.path.join(path, "assets"))
        ours = build_model(config)
        # The decoding runs on the logits, at 1 / output_stride of the working size.
        cells = lambda side: -(-int(side) // config.output_stride)  # noqa: E731
        pad = lambda side: -(-int(side) // config.pad_multiple) * config.pad_multiple  # noqa: E731
        decoder = decoding.Decoder.load(os.path.join(path, "assets"), None)
        num_scores = decoder.num_scores
        zhang = build_eccv16()
        print(f"{source}: {ours.name} {ours.count_params():,} params (logits at 1/"
              f"{config.output_stride}), work size {args.work_size}, chroma upsampling "
              f"{graph.ExportInfo.load(path).upsampling}; ECCV16 "
              f"{zhang.count_params():,} params", flush=True)
        common.line(f"{ours.name} model only, 256x256", model_rate(ours, (256, 256)),
                    "images/s", "ECCV16", model_rate(zhang, (256, 256), repeats=3))

        batch, t = args.batch, tf.constant([0.7])
        # Interleaved, one call of each per round, medians of 16 rounds: timed one after
        # the other (8 calls each) the ratios moved by 0.1-0.2 between runs (2026-12-05).
        bare_call = tf.function(lambda x: ours(x, training=False))
        floor_call = tf.function(photo_floor)
        luma = tf.random.uniform([batch, 256, 256, 1])
        photos = tf.constant([tf.io.encode_png(make_photo(256, 256, seed=i)).numpy()
                              for i in range(batch)])
        calls = {"bare model": lambda: bare_call(luma).numpy()}
        for name, inputs in [
                ("colorize_luma", {"luma": luma, "temperature": t}),
                ("luma_probabilities", {"luma": luma}),
                ("serving_default", {"image_bytes": photos, "temperature": t}),
                ("colorize_image", {"image_bytes": photos, "temperature": t,
                                    "output_format": tf.constant(["jpeg"])})]:
            calls[name] = fetched_call(signatures[name], inputs)
        rates = common.interleaved_rates(calls, batch, rounds=16)
        bare = rates.pop("bare model")
        for name, value in rates.items():
            common.line(f"{name}, batch {batch} of 256x256", value, "images/s",
                        "bare model", bare)
        # What the goal leaves for the work after the model, against decoding alone.
        model_ms = 1000 * batch / bare
        print(f"    0.9 of the bare model leaves {model_ms / 0.9 - model_ms:.0f} ms a batch "
              f"for all the work around the model ({model_ms:.0f} ms); decoding the "
              f"{num_scores} scores alone takes "
              f"{decoding_ms(decoder, [batch, cells(256), cells(256), num_scores], 0.7, 4):.0f}"
              " ms",
              flush=True)

        for height, width in [(256, 256), (512, 768), (2000, 3000)]:
            photo = make_photo(height, width, seed=1)  # smooth, compresses like a photo
            data = tf.constant([tf.io.encode_jpeg(photo, quality=90).numpy()])
            repeats = 4 if height < 1000 else 2
            work = graph.working_size(height, width, args.work_size).numpy()
            model_luma = tf.random.uniform([1, pad(work[0]), pad(work[1]), 1])
            calls = {"model only": lambda: bare_call(model_luma).numpy(),
                     "floor": lambda: [x.numpy() for x in floor_call(data[0], work)]}
            for name, extra in [("serving_default", {}),
                                ("colorize_image", {"output_format": tf.constant(["jpeg"])})]:
                calls[name] = fetched_call(signatures[name],
                                           dict(image_bytes=data, temperature=t, **extra))
            rates = common.interleaved_rates(calls, 1, rounds=4 * repeats)
            model_only = rates.pop("model only")
            floor = rates.pop("floor")
            megapixels = height * width / 1e6
            for name, graph_rate in rates.items():
                kind = "png" if name == "serving_default" else "jpeg"
                common.line(f"{width}x{height} {kind} (work {work[1]}x{work[0]})",
                            graph_rate, "images/s", "model only", model_only)
                print(f"    {1000 / graph_rate / megapixels:.0f} ms per megapixel; graph "
                      f"around the model costs {model_only / graph_rate - 1:.0%} of the "
                      "model", flush=True)
            decode_ms = decoding_ms(decoder, [1, cells(work[0]), cells(work[1]), num_scores],
                                    0.7, repeats)
            print(f"    decoding the {num_scores} scores, timed alone: {decode_ms:.1f} ms, "
                  f"{decode_ms * model_only / 1000:.0%} of the model "
                  f"({1000 / model_only:.1f} ms)", flush=True)
            print(f"    the floor (photo_floor: decode, luma, area shrink, encode) alone: "
                  f"{1000 / floor:.1f} ms, {model_only / floor:.0%} of the model", flush=True)


if __name__ == "__main__":
    main()
