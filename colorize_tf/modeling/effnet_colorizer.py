"""The pretrained colorizer: an ImageNet-pretrained EfficientNet-Lite encoder (Tan and Le
2019; modeling/efficientnet_lite.py) and a light decoder predicting bins at a quarter
of the input's resolution, as Zhang et al. 2016 do. Two families: effnet_lite0 (the
default model's) and effnet_lite2.
"""
import keras
import tensorflow as tf
from keras import layers

from colorize_tf import errors
from colorize_tf import serving_api
from colorize_tf.chroma import color
from colorize_tf.chroma import decoding
from colorize_tf.modeling import blocks
from colorize_tf.modeling import efficientnet_lite
from colorize_tf.modeling import families

EFFNET_LITE0 = "effnet_lite0"
EFFNET_LITE2 = "effnet_lite2"
# The pretrained colorizers: architecture -> the EfficientNet-Lite variant of the encoder.
EFFNET_VARIANTS = {EFFNET_LITE0: efficientnet_lite.LITE0, EFFNET_LITE2: efficientnet_lite.LITE2}
# The pretrained colorizer's encoder: EfficientNet-Lite cut after its last block at
# stride 16 (Lite0: block 10, 112 filters; Lite2: block 14, 120); the decoder reads
# strides 16, 8 and 4. With global_context the encoder goes on to its last block
# (Lite0: 15, 320 filters; Lite2: 20, 352; stride 32).
EFFNET_ENCODER_STRIDE = 16
EFFNET_CONTEXT_STRIDE = 32
EFFNET_OUTPUT_STRIDE = 4
ENCODER_PREFIX = "encoder_"  # the names of the pretrained encoder's layers start so
ENCODER_TRAINING = ("full", "frozen", "frozen_bn")  # set_encoder_training's modes


def effnet_encoder_stride(global_context):
    """The stride of the pretrained encoder's last block used (its input sides must be
    multiples of it): 16, or 32 with global_context (the encoder on to its last block)."""
    return EFFNET_CONTEXT_STRIDE if global_context else EFFNET_ENCODER_STRIDE


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
    init = blocks.kernel_initializers(seed)
    luma = keras.Input(shape=(None, None, 1), name=serving_api.LUMA)
    rgb = GrayEncoderInput(config.color_space, name="encoder_input")(luma)
    net = EFFNET_VARIANTS[config.architecture]
    feature_blocks = net.feature_blocks
    features = efficientnet_lite.encoder_features(
        rgb, net, last_block=feature_blocks[config.pad_multiple], prefix=ENCODER_PREFIX)
    f = config.base_filters
    x = layers.Conv2D(2 * f, 1, use_bias=False, kernel_initializer=init(),
                      name="dec16_conv")(features[feature_blocks[16]])
    x = layers.ReLU(name="dec16_relu")(layers.BatchNormalization(name="dec16_bn")(x))
    if config.global_context:
        x = add_deep_context(x, features[feature_blocks[EFFNET_CONTEXT_STRIDE]], init)
    x = blocks.BilinearUpsample(2, name="dec8_upsample")(x)
    x = layers.Concatenate(name="dec8_skip")([x, features[feature_blocks[8]]])
    x = blocks.conv_bn_relu(x, 2 * f, "dec8", init)
    x = blocks.BilinearUpsample(2, name="dec4_upsample")(x)
    x = layers.Concatenate(name="dec4_skip")([x, features[feature_blocks[4]]])
    x = blocks.double_conv(x, f, "dec4", init)
    return keras.Model(luma, blocks.primary_output(x, config, init), name="effnet_colorizer")


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
    c = blocks.BilinearUpsample(2, name="ctx_upsample")(c)
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


FAMILIES = tuple(families.register(families.Family(
    name, build_effnet_colorizer,
    pad_multiple=lambda config: effnet_encoder_stride(config.global_context),
    pad_reason=lambda config, name=name: f"the {name} encoder's stride" + (
        " with global_context" if config.global_context else ""),
    output_stride=EFFNET_OUTPUT_STRIDE, pretrained=True, heads=False, hints=False,
    decodings=(decoding.BINS,), pretrained_layers=encoder_layers,
    load_pretrained=lambda model, skip, name=name: load_encoder_weights(model, name, skip=skip),
    pretrained_source=f"the ImageNet weights of EfficientNet-{EFFNET_VARIANTS[name].name.title()}",
    set_training=set_encoder_training, training_modes=ENCODER_TRAINING))
    for name in EFFNET_VARIANTS)
