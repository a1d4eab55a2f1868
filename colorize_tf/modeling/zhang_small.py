"""Zhang, Isola, Efros 2016 (Colorful Image Colorization, Figure 2)'s network at a width
that trains on a CPU: the seed study's baseline of another architecture.
"""
import keras
from keras import layers

from colorize_tf.modeling import blocks
from colorize_tf.modeling import families

NAME = "zhang_small"


def build_zhang_small(config, seed=None):
    """Zhang et al. 2016's colorization network (Figure 2) at a width that trains on a
    CPU: VGG blocks conv1-3 (each ending in a stride-2 conv), conv4, conv5 and conv6
    dilated by 2, conv7, conv8 a stride-2 transposed conv and two convs, each block
    with batch norm; a 1x1 conv to the logits at 1/4 resolution, upsampled 4x
    bilinearly to the input size (so that the loss and the decoder see every pixel,
    as for the U-Net). Filters: base, 2 base, 4 base, then 8 base (Zhang: 64 ... 512).
    No skip connections and no heads."""
    init = blocks.kernel_initializers(seed)
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
    x = blocks.primary_output(x, config, init)
    x = blocks.BilinearUpsample(4, dtype="float32", name=f"{config.primary_output}_upsample")(x)
    return keras.Model(luma, x, name="zhang_small")


FAMILY = families.register(families.Family(
    NAME, build_zhang_small, pad_multiple=lambda config: 8,
    pad_reason=lambda config: "Zhang's network pools 3 times", heads=False, hints=False,
    global_context=False))
