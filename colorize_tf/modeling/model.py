"""ColorUNet (Billaut et al. 2018, Figure 2) as a functional Keras model returning logits.

    luma [B, H, W, 1] -> DownConv x depth -> bottleneck -> UpConv x depth -> Output cell
    -> 1x1 conv -> logits [B, H, W, num_bins]

DownConv: two 3x3 conv + batch norm + ReLU, then 2x2 max-pool. UpConv: 3x3
transposed conv of stride 2, concatenation with the skip of the same size, two 3x3
conv. As in the paper, only the middle scales have skips: the full-resolution one
(too close to the input to carry colour) and the bottleneck are set aside.
H and W must be divisible by 2^depth.

ModelConfig.global_context adds Iizuka et al. 2016's fusion layer (Let there be Color!,
section 3.2.3) at the bottleneck: a vector of the whole photo (average-pooled bottleneck,
a dense layer) is projected and added at every position. The bottleneck's receptive
field (~70 px for depth 3, less in effect) does not see a whole 96 px crop, and a model
over several domains must tell a portrait's palette from a landscape's. Measured on
the general model at equal compute (docs/model_colorunet_general.md): no gain, so no
shipped model uses it.

ModelConfig.decoding picks the output (chroma/decoding.py): logits over the joint bins
("bins"), logits over each chroma channel's bins ("per_channel", num_bins = n0 + n1),
or the chroma itself ("regression", 2 channels, named "chroma"). architecture
"zhang_small" is Zhang et al. 2016's network at a small width (build_zhang_small).

ModelConfig.hints adds two inputs beside the luma, as in Zhang et al. 2017 (Real-Time
User-Guided Image Colorization, section 3.1): a sparse chroma map hint_chroma
[B, H, W, 2] (in the bins' colour space, 0 where no hint) and hint_mask [B, H, W, 1]
(1 where a hint is given); the three are concatenated before the first cell.
"""
import dataclasses
import itertools
import json
import os

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from colorize_tf import errors
from colorize_tf import serving_api
from colorize_tf.chroma import color
from colorize_tf.chroma import decoding
from colorize_tf.modeling import efficientnet_lite

COLORUNET = "colorunet"
ZHANG_SMALL = "zhang_small"
EFFNET_LITE0 = "effnet_lite0"
EFFNET_LITE2 = "effnet_lite2"
# The pretrained colorizers: architecture -> the EfficientNet-Lite variant of the encoder.
EFFNET_VARIANTS = {EFFNET_LITE0: efficientnet_lite.LITE0, EFFNET_LITE2: efficientnet_lite.LITE2}
ARCHITECTURES = (COLORUNET, ZHANG_SMALL, EFFNET_LITE0, EFFNET_LITE2)
# The pretrained colorizer's encoder: EfficientNet-Lite cut after its last block at
# stride 16 (Lite0: block 10, 112 filters; Lite2: block 14, 120); the decoder reads
# strides 16, 8 and 4. With global_context the encoder goes on to its last block
# (Lite0: 15, 320 filters; Lite2: 20, 352; stride 32).
EFFNET_ENCODER_STRIDE = 16
EFFNET_CONTEXT_STRIDE = 32
EFFNET_OUTPUT_STRIDE = 4
ENCODER_PREFIX = "encoder_"  # the names of the pretrained encoder's layers start so
ENCODER_TRAINING = ("full", "frozen", "frozen_bn")  # set_encoder_training's modes
CONFIG_NAME = "model_config.json"  # a run's or a SavedModel's ModelConfig (read_config)


def effnet_encoder_stride(global_context):
    """The stride of the pretrained encoder's last block used (its input sides must be
    multiples of it): 16, or 32 with global_context (the encoder on to its last block)."""
    return EFFNET_CONTEXT_STRIDE if global_context else EFFNET_ENCODER_STRIDE


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """num_bins: channels of the logits (decoding "bins": the bins; "per_channel": n0 +
    n1; "regression": unused, the output is the 2-channel chroma); base_filters:
    filters of the first cell, doubled per level; depth: DownConv cells (ColorUNet;
    Zhang's network always pools 3 times); regression_head: adds a 2-channel chroma
    output; num_scenes: > 0 adds a scene classifier on the bottleneck; hints: adds
    the hint_chroma and hint_mask inputs (module doc), hint_chroma multiplied by
    hint_scale (about 1 / the largest chroma of the colour space) to be near [-1, 1];
    global_context: fuses the whole photo's features into every bottleneck position
    (ColorUNet: add_global_context; the pretrained colorizer: add_deep_context, its
    encoder then runs to stride 32); color_space: the colour space whose luma the
    model takes (the pretrained encoder is given the sRGB gray of that luma)."""
    num_bins: int = 32
    base_filters: int = 16
    depth: int = 3
    regression_head: bool = False
    num_scenes: int = 0
    decoding: str = decoding.BINS
    architecture: str = COLORUNET
    hints: bool = False
    hint_scale: float = 1.0
    global_context: bool = False
    color_space: str = color.YUV

    @property
    def has_heads(self):
        return self.regression_head or self.num_scenes > 0

    @property
    def primary_output(self):
        """Name of the output the decoder reads: "chroma" for regression, else "logits"."""
        return "chroma" if self.decoding == decoding.REGRESSION else "logits"

    @property
    def is_pretrained(self):
        """Whether the architecture is a pretrained colorizer (an EfficientNet-Lite
        encoder, EFFNET_VARIANTS)."""
        return self.architecture in EFFNET_VARIANTS

    @property
    def pad_multiple(self):
        """Input sides must be multiples of this (2 ** the number of poolings)."""
        if self.is_pretrained:
            return effnet_encoder_stride(self.global_context)
        return 2 ** (3 if self.architecture == ZHANG_SMALL else self.depth)

    @property
    def output_stride(self):
        """The logits have 1 / output_stride of the input's height and width (4 for the
        pretrained colorizer, as Zhang et al. 2016; 1 for the others)."""
        return EFFNET_OUTPUT_STRIDE if self.is_pretrained else 1


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


def build_model(config, seed=None):
    """ModelConfig -> keras.Model of its architecture (build_colorunet,
    build_zhang_small or build_effnet_colorizer)."""
    if config.architecture == ZHANG_SMALL:
        return build_zhang_small(config, seed)
    if config.is_pretrained:
        return build_effnet_colorizer(config, seed)
    return build_colorunet(config, seed)


def _primary_output(x, config, init):
    """The output the decoder reads, float32 even under mixed precision."""
    if config.decoding == decoding.REGRESSION:
        return layers.Conv2D(2, 1, dtype="float32", kernel_initializer=init(),
                             name="chroma")(x)
    return layers.Conv2D(config.num_bins, 1, dtype="float32", kernel_initializer=init(),
                         name="logits")(x)


def read_config(folder):
    """The ModelConfig of a run or a SavedModel's assets (model_config.json; OSError,
    ValueError, KeyError or TypeError when it is missing or not one)."""
    with open(os.path.join(folder, CONFIG_NAME)) as f:
        return ModelConfig(**json.load(f)["model"])


def decoder_output_only(model):
    """A model with heads -> the same layers with only the output the decoder reads
    (what a SavedModel holds); a model without heads as it is."""
    if not isinstance(model.output, dict):
        return model
    primary = "logits" if "logits" in model.output else "chroma"
    return keras.Model(model.input, model.output[primary], name=model.name)


def load_checkpoint(path):
    """A saved .keras model of this module (its own layers registered by this import,
    so a fresh process can load a zhang_small run), uncompiled."""
    return keras.models.load_model(path, compile=False)


def build_colorunet(config, seed=None):
    """ModelConfig -> keras.Model. Output: logits [B, H, W, n] (or chroma [B, H, W, 2]
    for decoding "regression") float32 (even under mixed precision); with heads, a
    dict {"logits", "chroma"?, "scene"?}. seed: int seeds the initial weights (None:
    Keras' global seed)."""
    init = _kernel_initializers(seed)
    inputs, x = _inputs(config)
    skips = []
    for level in range(config.depth):
        x = _double_conv(x, config.base_filters * 2 ** level, f"down{level + 1}", init)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{level + 1}_pool")(x)
    bottom_filters = config.base_filters * 2 ** (config.depth - 1)
    bottleneck = _double_conv(x, bottom_filters, "bottleneck", init)
    x = add_global_context(bottleneck, bottom_filters, init) if config.global_context \
        else bottleneck
    for level in reversed(range(config.depth)):
        filters = config.base_filters * 2 ** level
        name = f"up{level + 1}"
        x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same",
                                   kernel_initializer=init(), name=f"{name}_upsample")(x)
        if 0 < level:  # skips at the middle scales only (paper, section 3.1)
            x = layers.Concatenate(name=f"{name}_skip")([x, skips[level]])
        x = _double_conv(x, filters, name, init)
    x = _double_conv(x, config.base_filters, "output_cell", init)
    primary = _primary_output(x, config, init)
    if not config.has_heads:
        return keras.Model(inputs, primary, name="colorunet")
    outputs = {config.primary_output: primary}
    if config.regression_head:
        outputs["chroma"] = layers.Conv2D(2, 1, dtype="float32", kernel_initializer=init(),
                                          name="chroma")(x)
    if config.num_scenes > 0:
        pooled = layers.GlobalAveragePooling2D(name="scene_pool")(bottleneck)
        outputs["scene"] = layers.Dense(config.num_scenes, dtype="float32",
                                        kernel_initializer=init(), name="scene")(pooled)
    return keras.Model(inputs, outputs, name="colorunet")


def add_global_context(x, filters, init):
    """Fusion layer (Iizuka et al. 2016, section 3.2.3) on features x [B, h, w, filters]
    -> [B, h, w, filters]: ReLU(x + W g + b) with g = ReLU(dense(mean of x over h, w)),
    the same g at every position. The same as concatenating g to each position and a
    1x1 convolution, with the local features' part of that kernel the identity."""
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name="global_pool")(x)
    features = layers.Dense(filters, activation="relu", kernel_initializer=init(),
                            name="global_features")(pooled)  # [B, 1, 1, filters]
    projected = layers.Dense(filters, kernel_initializer=init(),
                             name="global_fusion")(features)
    fused = layers.Add(name="global_add")([x, projected])  # broadcast over h, w
    return layers.ReLU(name="global_relu")(fused)


def _inputs(config):
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


def warm_start(model, source):
    """Copies the weights of source (a trained keras.Model) into model, layer by layer
    of the same name; a kernel that differs only in having more input channels (the
    first conv of a hints model started from a model without hints) gets the source's
    kernel in its first channels and zeros in the others, so that model computes what
    source computes until it learns to use them. -> the names of the layers copied;
    ValueError when a layer of both differs otherwise."""
    by_name = {layer.name: layer for layer in source.layers}
    copied = []
    for layer in model.layers:
        old = by_name.get(layer.name)
        if old is None or not layer.weights:
            continue
        values = []
        for new_weight, old_value in zip(layer.get_weights(), old.get_weights()):
            if new_weight.shape == old_value.shape:
                values.append(old_value)
            elif (new_weight.ndim == 4 and new_weight.shape[:2] == old_value.shape[:2]
                  and new_weight.shape[3] == old_value.shape[3]
                  and new_weight.shape[2] > old_value.shape[2]):
                grown = np.zeros_like(new_weight)
                grown[:, :, :old_value.shape[2], :] = old_value
                values.append(grown)
            else:
                raise errors.Error(f"layer {layer.name}: weights of shape "
                                 f"{new_weight.shape} cannot take {old_value.shape}")
        layer.set_weights(values)
        copied.append(layer.name)
    return copied


def interpolate_weights(model, base, share):
    """Sets every weight of model (a fine-tuned keras.Model) to (1 - share) x base's +
    share x its own, layer by layer of the same name, batch-norm statistics included:
    the weight-space ensemble of WiSE-FT (Wortsman et al. 2022, "Robust fine-tuning of
    zero-shot models", eq. 1), which keeps most of what the fine-tuning gained on its
    new data and most of what base knew of its old data, at no cost at inference.
    Meaningful only where model was fine-tuned from base (the same architecture,
    started from base's weights). share in [0, 1] (1: model unchanged, 0: base's
    weights). ValueError where the two differ in layers or weight shapes."""
    if not 0 <= share <= 1:
        raise errors.Error(f"the interpolation share must be in [0, 1], got {share}")
    with_weights = {layer.name: layer for layer in base.layers if layer.weights}
    own = [layer for layer in model.layers if layer.weights]
    if sorted(with_weights) != sorted(layer.name for layer in own):
        missing = sorted(set(with_weights) ^ {layer.name for layer in own})
        raise errors.Error(f"the two models differ in their layers ({', '.join(missing[:4])}"
                         f"{' ...' if len(missing) > 4 else ''}): not the same architecture")
    for layer in own:
        mine, theirs = layer.get_weights(), with_weights[layer.name].get_weights()
        if [w.shape for w in mine] != [w.shape for w in theirs]:
            raise errors.Error(f"layer {layer.name}: weights of shapes "
                             f"{[w.shape for w in mine]} and {[w.shape for w in theirs]}")
        layer.set_weights([(1.0 - share) * b + share * m for m, b in zip(mine, theirs)])


def build_zhang_small(config, seed=None):
    """Zhang et al. 2016's colorization network (Figure 2) at a width that trains on a
    CPU: VGG blocks conv1-3 (each ending in a stride-2 conv), conv4, conv5 and conv6
    dilated by 2, conv7, conv8 a stride-2 transposed conv and two convs, each block
    with batch norm; a 1x1 conv to the logits at 1/4 resolution, upsampled 4x
    bilinearly to the input size (so that the loss and the decoder see every pixel,
    as for the U-Net). Filters: base, 2 base, 4 base, then 8 base (Zhang: 64 ... 512).
    No skip connections and no heads."""
    init = _kernel_initializers(seed)
    b = config.base_filters
    spec = [  # (block, filters, convs, stride of the last conv, dilation)
        ("conv1", b, 2, 2, 1), ("conv2", 2 * b, 2, 2, 1), ("conv3", 4 * b, 3, 2, 1),
        ("conv4", 8 * b, 3, 1, 1), ("conv5", 8 * b, 3, 1, 2), ("conv6", 8 * b, 3, 1, 2),
        ("conv7", 8 * b, 3, 1, 1)]
    luma = keras.Input(shape=(None, None, 1), name="luma")
    x = layers.Rescaling(2.0, offset=-1.0, name="center")(luma)
    for name, filters, convs, last_stride, dilation in spec:
        for i in range(convs):
            x = layers.Conv2D(filters, 3, strides=last_stride if i == convs - 1 else 1,
                              dilation_rate=dilation, padding="same", activation="relu",
                              kernel_initializer=init(), name=f"{name}_{i + 1}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    x = layers.Conv2DTranspose(4 * b, 4, strides=2, padding="same", activation="relu",
                               kernel_initializer=init(), name="conv8_1")(x)
    for i in (2, 3):
        x = layers.Conv2D(4 * b, 3, padding="same", activation="relu",
                          kernel_initializer=init(), name=f"conv8_{i}")(x)
    x = _primary_output(x, config, init)
    x = BilinearUpsample(4, dtype="float32", name=f"{config.primary_output}_upsample")(x)
    return keras.Model(luma, x, name="zhang_small")


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


def synchronize_batch_norm(model):
    """Makes every BatchNormalization layer of model compute its batch statistics over
    all replicas of the distribution strategy (Keras' `synchronized`; TensorFlow
    backend), as one process with the global batch would. Read when the train step is
    traced: call it before training."""
    for layer in model.layers:  # functional and flat: no nested models
        if isinstance(layer, layers.BatchNormalization):
            layer.synchronized = True


@keras.saving.register_keras_serializable(package="colorize_tf")
class GrayEncoderInput(layers.Layer):
    """luma [B, H, W, 1] in [0, 1] (of color_space) -> [B, H, W, 3]: the sRGB gray of
    that luma (the colour with zero chroma), 0..255 in all three channels, normalised
    as EfficientNet-Lite's ImageNet training did ((x - 127) / 128): the encoder sees a
    gray photo the way it saw colour ones."""

    def __init__(self, color_space, **kwargs):
        super().__init__(**kwargs)
        self.color_space = color_space

    def call(self, luma):
        luma = tf.cast(luma, tf.float32)
        gray = color.luma_chroma_to_rgb(luma, tf.zeros_like(tf.concat([luma, luma], -1)),
                                        self.color_space)
        normalized = (gray * 255.0 - efficientnet_lite.INPUT_MEAN) / \
            efficientnet_lite.INPUT_SCALE
        return tf.cast(normalized, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "color_space": self.color_space}


def build_effnet_colorizer(config, seed=None):
    """The pretrained colorizer: luma [B, H, W, 1] (H, W multiples of pad_multiple: 16,
    or 32 with global_context) -> logits [B, H / 4, W / 4, num_bins] float32.

    Encoder: EfficientNet-Lite0 or Lite2 (efficientnet_lite; EFFNET_VARIANTS of
    config.architecture) up to its stride-16 block (its
    stride-32 block with global_context), layers named encoder_*, given the luma's gray
    in three channels (GrayEncoderInput); its ImageNet weights are loaded by
    load_encoder_weights, not here. Decoder (U-Net-like, light): stride 16 -> 1x1 conv
    to 2F (plus add_deep_context's term with global_context); bilinear x2,
    concatenated with the stride-8 features, 3x3 conv 2F; bilinear x2, concatenated
    with the stride-4 features, two 3x3 convs F; a 1x1 conv to the logits at stride 4
    (Zhang et al. 2016 predict at a quarter too: chroma is smooth, and the decoding
    then costs 16x fewer exponentials). F = config.base_filters. Each conv with batch
    norm and ReLU."""
    init = _kernel_initializers(seed)
    luma = keras.Input(shape=(None, None, 1), name=serving_api.LUMA)
    rgb = GrayEncoderInput(config.color_space, name="encoder_input")(luma)
    net = EFFNET_VARIANTS[config.architecture]
    blocks = net.feature_blocks
    features = efficientnet_lite.encoder_features(
        rgb, net, last_block=blocks[config.pad_multiple], prefix=ENCODER_PREFIX)
    f = config.base_filters
    x = layers.Conv2D(2 * f, 1, use_bias=False, kernel_initializer=init(),
                      name="dec16_conv")(features[blocks[16]])
    x = layers.ReLU(name="dec16_relu")(layers.BatchNormalization(name="dec16_bn")(x))
    if config.global_context:
        x = add_deep_context(x, features[blocks[EFFNET_CONTEXT_STRIDE]], init)
    x = BilinearUpsample(2, name="dec8_upsample")(x)
    x = layers.Concatenate(name="dec8_skip")([x, features[blocks[8]]])
    x = _conv_bn_relu(x, 2 * f, "dec8", init)
    x = BilinearUpsample(2, name="dec4_upsample")(x)
    x = layers.Concatenate(name="dec4_skip")([x, features[blocks[4]]])
    x = _double_conv(x, f, "dec4", init)
    return keras.Model(luma, _primary_output(x, config, init), name="effnet_colorizer")


def add_deep_context(x, deep, init):
    """The pretrained colorizer's global context: the decoder's stride-16 features x
    [B, h, w, C] plus what the encoder's stride-32 features deep [B, h/2, w/2, 320]
    and their mean over the whole photo add to them -> [B, h, w, C].

    Lite0's last five blocks are its most semantic (what ImageNet's classes are read
    from) and see the whole of a 192 px photo; the mean over the photo is Iizuka et
    al. 2016's fusion (section 3.2.3), telling a portrait's palette from a street's.
    c = ReLU(BN(1x1 conv(deep)) + dense(ReLU(dense(mean of it)))), upsampled x2
    bilinearly, then a 1x1 conv whose kernel starts at zero (named ctx_merge): a model
    warm-started from one without context computes what it did, and learns from there.
    """
    filters = x.shape[-1]
    c = layers.Conv2D(filters, 1, use_bias=False, kernel_initializer=init(),
                      name="ctx_conv")(deep)
    c = layers.BatchNormalization(name="ctx_bn")(c)
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name="ctx_pool")(c)
    pooled = layers.Dense(filters, activation="relu", kernel_initializer=init(),
                          name="ctx_global")(pooled)
    pooled = layers.Dense(filters, kernel_initializer=init(), name="ctx_fusion")(pooled)
    c = layers.ReLU(name="ctx_relu")(layers.Add(name="ctx_add")([c, pooled]))
    c = BilinearUpsample(2, name="ctx_upsample")(c)
    c = layers.Conv2D(filters, 1, kernel_initializer="zeros", name="ctx_merge")(c)
    return layers.Add(name="dec16_context")([x, c])


def encoder_layers(model):
    """The pretrained encoder's layers of model (names starting with ENCODER_PREFIX)."""
    return [layer for layer in model.layers if layer.name.startswith(ENCODER_PREFIX)]


def load_encoder_weights(model, architecture=EFFNET_LITE0, weights_path=None, skip=()):
    """Sets the encoder of a pretrained colorizer of architecture from its
    EfficientNet-Lite variant's ImageNet weights (weights_path None: the installed
    package's file), but for the layers named in skip. -> the layer names set.
    ImportError when the package is not installed; torch_weights.WeightsFileError when
    the file does not fit."""
    net = EFFNET_VARIANTS[architecture]
    tensors = efficientnet_lite.read_imagenet_weights(weights_path, net)
    return efficientnet_lite.load_imagenet_weights(
        model, tensors, net, source=weights_path or net.package,
        prefix=ENCODER_PREFIX, skip=skip)


def set_encoder_training(model, mode):
    """mode "full": every encoder layer trains; "frozen": none (its batch norm layers
    then run on their stored statistics, as Keras does for a frozen BatchNormalization);
    "frozen_bn": the convolutions train, the batch norm layers stay frozen."""
    if mode not in ENCODER_TRAINING:
        raise errors.Error(f"encoder training must be one of {ENCODER_TRAINING}, got {mode!r}")
    for layer in encoder_layers(model):
        is_bn = isinstance(layer, layers.BatchNormalization)
        layer.trainable = mode == "full" or (mode == "frozen_bn" and not is_bn)
