"""ColorUNet (Billaut et al. 2018, A convolutional classification approach to
colorization, Figure 2) as a functional Keras model returning logits.

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
"""
import keras
from keras import layers

from colorize_tf.modeling import blocks
from colorize_tf.modeling import families

NAME = "colorunet"


def build_colorunet(config, seed=None):
    """ModelConfig -> keras.Model. Output: logits [B, H, W, n] (or chroma [B, H, W, 2]
    for decoding "regression") float32 (even under mixed precision); with heads, a
    dict {"logits", "chroma"?, "scene"?}. seed: int seeds the initial weights (None:
    Keras' global seed)."""
    init = blocks.kernel_initializers(seed)
    inputs, x = blocks.model_inputs(config)
    skips = []
    for level in range(config.depth):
        x = blocks.double_conv(x, config.base_filters * 2 ** level, f"down{level + 1}", init)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{level + 1}_pool")(x)
    bottom_filters = config.base_filters * 2 ** (config.depth - 1)
    bottleneck = blocks.double_conv(x, bottom_filters, "bottleneck", init)
    x = add_global_context(bottleneck, bottom_filters, init) if config.global_context \
        else bottleneck
    for level in reversed(range(config.depth)):
        filters = config.base_filters * 2 ** level
        name = f"up{level + 1}"
        x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same",
                                   kernel_initializer=init(), name=f"{name}_upsample")(x)
        if 0 < level:  # skips at the middle scales only (paper, section 3.1)
            x = layers.Concatenate(name=f"{name}_skip")([x, skips[level]])
        x = blocks.double_conv(x, filters, name, init)
    x = blocks.double_conv(x, config.base_filters, "output_cell", init)
    primary = blocks.primary_output(x, config, init)
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


FAMILY = families.register(families.Family(
    NAME, build_colorunet, pad_multiple=lambda config: 2 ** config.depth,
    pad_reason=lambda config: "2^depth: the ColorUNet pools depth times"))
