"""ColorUNet (Billaut et al. 2018, Figure 2) as a functional Keras model returning logits.

    luma [B, H, W, 1] -> DownConv x depth -> bottleneck -> UpConv x depth -> Output cell
    -> 1x1 conv -> logits [B, H, W, num_bins]

DownConv: two 3x3 conv + batch norm + ReLU, then 2x2 max-pool. UpConv: 3x3
transposed conv of stride 2, concatenation with the skip of the same size, two 3x3
conv. As in the paper, only the middle scales have skips: the full-resolution one
(too close to the input to carry colour) and the bottleneck are set aside.
H and W must be divisible by 2^depth.
"""
import dataclasses
import itertools

import keras
from keras import layers


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """num_bins: output classes; base_filters: filters of the first cell, doubled per
    level; depth: DownConv cells; regression_head: adds a 2-channel chroma output;
    num_scenes: > 0 adds a scene classifier on the bottleneck."""
    num_bins: int = 32
    base_filters: int = 16
    depth: int = 3
    regression_head: bool = False
    num_scenes: int = 0

    @property
    def has_heads(self):
        return self.regression_head or self.num_scenes > 0


def _kernel_initializers(seed):
    """-> a function giving each new layer its kernel initializer: Keras' default
    (Glorot uniform from Keras' global seed) when seed is None, else Glorot uniform
    seeded per layer, so that a run's initial weights follow its seed and not the
    process's global random state. Each layer gets its own seed: one shared int seed
    would give kernels of equal shape equal values."""
    if seed is None:
        return lambda: "glorot_uniform"
    seeds = itertools.count(seed * 1000)
    return lambda: keras.initializers.GlorotUniform(seed=next(seeds) % 2 ** 31)


def _conv_bn_relu(x, filters, name, init):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer=init(),
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _double_conv(x, filters, name, init):
    x = _conv_bn_relu(x, filters, f"{name}_a", init)
    return _conv_bn_relu(x, filters, f"{name}_b", init)


def build_colorunet(config, seed=None):
    """ModelConfig -> keras.Model. Output: logits [B, H, W, n] float32 (even under
    mixed precision); with heads, a dict {"logits", "chroma"?, "scene"?}. seed: int
    seeds the initial weights (None: Keras' global seed)."""
    init = _kernel_initializers(seed)
    luma = keras.Input(shape=(None, None, 1), name="luma")
    x = layers.Rescaling(2.0, offset=-1.0, name="center")(luma)  # [0, 1] -> [-1, 1]
    skips = []
    for level in range(config.depth):
        x = _double_conv(x, config.base_filters * 2 ** level, f"down{level + 1}", init)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{level + 1}_pool")(x)
    bottom_filters = config.base_filters * 2 ** (config.depth - 1)
    bottleneck = _double_conv(x, bottom_filters, "bottleneck", init)
    x = bottleneck
    for level in reversed(range(config.depth)):
        filters = config.base_filters * 2 ** level
        name = f"up{level + 1}"
        x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same",
                                   kernel_initializer=init(), name=f"{name}_upsample")(x)
        if 0 < level:  # skips at the middle scales only (paper, section 3.1)
            x = layers.Concatenate(name=f"{name}_skip")([x, skips[level]])
        x = _double_conv(x, filters, name, init)
    x = _double_conv(x, config.base_filters, "output_cell", init)
    logits = layers.Conv2D(config.num_bins, 1, dtype="float32", kernel_initializer=init(),
                           name="logits")(x)
    if not config.has_heads:
        return keras.Model(luma, logits, name="colorunet")
    outputs = {"logits": logits}
    if config.regression_head:
        outputs["chroma"] = layers.Conv2D(2, 1, dtype="float32", kernel_initializer=init(),
                                          name="chroma")(x)
    if config.num_scenes > 0:
        pooled = layers.GlobalAveragePooling2D(name="scene_pool")(bottleneck)
        outputs["scene"] = layers.Dense(config.num_scenes, dtype="float32",
                                       kernel_initializer=init(), name="scene")(pooled)
    return keras.Model(luma, outputs, name="colorunet")
