"""The colorizer's model: ModelConfig (what a run or a SavedModel's model_config.json
holds), build_model (through the family registry, modeling/families.py: colorunet.py,
zhang_small.py, effnet_colorizer.py), and what is done with any family's weights:
checkpoints, warm starts, interpolation.

ModelConfig.decoding picks the output (chroma/decoding.py): logits over the joint bins
("bins"), logits over each chroma channel's bins ("per_channel", num_bins = n0 + n1),
or the chroma itself ("regression", 2 channels, named "chroma").

ModelConfig.hints adds two inputs beside the luma, as in Zhang et al. 2017 (Real-Time
User-Guided Image Colorization, section 3.1): a sparse chroma map hint_chroma
[B, H, W, 2] (in the bins' colour space, 0 where no hint) and hint_mask [B, H, W, 1]
(1 where a hint is given); the three are concatenated before the first cell.
"""
import dataclasses
import json
import os

import keras
import numpy as np
from keras import layers

from colorize_tf import errors
from colorize_tf.chroma import color
from colorize_tf.chroma import decoding
from colorize_tf.modeling import colorunet
from colorize_tf.modeling import effnet_colorizer
from colorize_tf.modeling import families
from colorize_tf.modeling import zhang_small

# The built-in families, registered by their modules (imported above).
ARCHITECTURES = (colorunet.NAME, zhang_small.NAME, *effnet_colorizer.EFFNET_VARIANTS)
MODEL_CONFIG_NAME = "model_config.json"  # a run's or a SavedModel's ModelConfig (read_config)


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
    architecture: str = colorunet.NAME
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
    def family(self):
        """Its families.Family (colorize_tf.Error for an unknown architecture)."""
        return families.get(self.architecture)

    @property
    def is_pretrained(self):
        """Whether the architecture starts from a pretrained encoder."""
        return self.family.pretrained

    @property
    def pad_multiple(self):
        """Input sides must be multiples of this (its family's poolings or stride)."""
        return self.family.pad_multiple(self)

    @property
    def output_stride(self):
        """The logits have 1 / output_stride of the input's height and width (4 for the
        pretrained colorizer, as Zhang et al. 2016; 1 for the others)."""
        return self.family.output_stride


def build_model(config, seed=None):
    """ModelConfig -> keras.Model of its architecture's family (families.get)."""
    return config.family.build(config, seed)


def read_config(folder):
    """The ModelConfig of a run or a SavedModel's assets (model_config.json; OSError,
    ValueError, KeyError or TypeError when it is missing or not one)."""
    with open(os.path.join(folder, MODEL_CONFIG_NAME)) as f:
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


def synchronize_batch_norm(model):
    """Makes every BatchNormalization layer of model compute its batch statistics over
    all replicas of the distribution strategy (Keras' `synchronized`; TensorFlow
    backend), as one process with the global batch would. Read when the train step is
    traced: call it before training."""
    for layer in model.layers:  # functional and flat: no nested models
        if isinstance(layer, layers.BatchNormalization):
            layer.synchronized = True
