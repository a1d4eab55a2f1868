"""Building blocks the model families share: seeded initializers, conv + batch norm +
ReLU cells, the luma (and hint) inputs, the output the decoder reads, and a bilinear
upsampling Keras layer that takes unknown sizes.
"""
import itertools

import keras
import tensorflow as tf
from keras import layers

from colorize_tf import serving_api
from colorize_tf.chroma import decoding


def kernel_initializers(seed):
    """-> a function giving each new layer its kernel initializer: Keras' default
    (Glorot uniform from Keras' global seed) when seed is None, else Glorot uniform
    seeded per layer, so that a run's initial weights follow its seed and not the
    process's global random state. Each layer gets its own seed: one shared int seed
    would give kernels of equal shape equal values."""
    if seed is None:
        return lambda: "glorot_uniform"
    seeds = itertools.count(seed * 1000)
    return lambda: keras.initializers.GlorotUniform(seed=next(seeds) % 2 ** 31)


def conv_bn_relu(x, filters, name, init):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer=init(),
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def double_conv(x, filters, name, init):
    x = conv_bn_relu(x, filters, f"{name}_a", init)
    return conv_bn_relu(x, filters, f"{name}_b", init)


def model_inputs(config):
    """-> (the model's inputs: the luma Input, or a dict of the luma and hint Inputs
    when config.hints; the tensor the first cell reads: the luma in [-1, 1], then the
    scaled hint chroma and the hint mask)."""
    luma = keras.Input(shape=(None, None, 1), name=serving_api.LUMA)
    x = layers.Rescaling(2.0, offset=-1.0, name="center")(luma)  # [0, 1] -> [-1, 1]
    if not config.hints:
        return luma, x
    hint_chroma = keras.Input(shape=(None, None, 2), name=serving_api.HINT_CHROMA)
    hint_mask = keras.Input(shape=(None, None, 1), name=serving_api.HINT_MASK)
    scaled = layers.Rescaling(config.hint_scale, name="hint_scale")(hint_chroma)
    x = layers.Concatenate(name="with_hints")([x, scaled, hint_mask])
    return {serving_api.LUMA: luma, serving_api.HINT_CHROMA: hint_chroma,
            serving_api.HINT_MASK: hint_mask}, x


def primary_output(x, config, init):
    """The output the decoder reads, float32 even under mixed precision."""
    if config.decoding == decoding.REGRESSION:
        return layers.Conv2D(2, 1, dtype="float32", kernel_initializer=init(),
                             name="chroma")(x)
    return layers.Conv2D(config.num_bins, 1, dtype="float32", kernel_initializer=init(),
                         name="logits")(x)


@keras.saving.register_keras_serializable(package="colorize_tf")
class BilinearUpsample(layers.Layer):
    """[B, H, W, C] -> [B, factor H, factor W, C], bilinear. Keras' UpSampling2D cannot
    take the unknown H and W of the exported graph."""

    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)

    def call(self, x):
        return tf.image.resize(x, tf.shape(x)[1:3] * self.factor, method="bilinear")

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}
