"""The model families, registered by name: what `--architecture` (ModelConfig.architecture)
names. Each family's module (colorunet.py, zhang_small.py, effnet_colorizer.py) builds
its network and registers a Family saying what the rest of the package needs to know
of it: how inputs must be padded, the logits' stride, whether it starts from a
pretrained encoder, and which heads, inputs and decodings it takes. A new family is a
module that registers one; tests/test_model_families.py gives every registered family
the same battery of checks.
"""
import dataclasses
import typing

from colorize_tf import errors
from colorize_tf.chroma import decoding


@dataclasses.dataclass(frozen=True)
class Family:
    """name: the architecture's name; build(config, seed) -> keras.Model returning the
    output the decoder reads (modeling/model.py's ModelConfig; seed None: Keras' global
    seed); pad_multiple(config) -> int: input sides must be multiples of it, and
    pad_reason(config) says why; output_stride: the logits have 1 / output_stride of
    the input's sides; pretrained: an ImageNet-pretrained encoder (its weights loaded
    and its training mode set by effnet_colorizer); heads, hints, global_context: takes
    the regression and scene heads, the hint inputs, the global context; decodings:
    the decodings (chroma/decoding.py) it can output; pretrained_layers(model) -> the
    layers whose weights come from the pretrained encoder, not from the run's seed;
    load_pretrained(model, skip) -> the names of the layers it set from the pretrained
    weights (all but those named in skip; ImportError where the weights' package is
    missing), pretrained_source says whose weights; set_training(model, mode) sets which
    of the pretrained layers train (mode: one of training_modes)."""
    name: str
    build: typing.Callable
    pad_multiple: typing.Callable
    pad_reason: typing.Callable
    output_stride: int = 1
    pretrained: bool = False
    heads: bool = True
    hints: bool = True
    global_context: bool = True
    decodings: tuple = decoding.DECODINGS
    pretrained_layers: typing.Callable = lambda model: []
    load_pretrained: typing.Optional[typing.Callable] = None
    pretrained_source: str = ""
    set_training: typing.Optional[typing.Callable] = None
    training_modes: tuple = ("full",)

    def limits(self):
        """What it does not take, in words ([]: everything)."""
        found = [f"no {what}" for what, takes in (
            ("heads", self.heads), ("hints", self.hints),
            ("global context", self.global_context)) if not takes]
        if tuple(self.decodings) != tuple(decoding.DECODINGS):
            found.append(f"decoding={' or '.join(self.decodings)} only")
        return found


_FAMILIES = {}


def register(family):
    """Adds family under its name (again with the same Family: a no-op); -> family."""
    if _FAMILIES.get(family.name, family) != family:
        raise errors.Error(f"a model family named {family.name!r} is registered already")
    _FAMILIES[family.name] = family
    return family


def get(name):
    """The registered Family called name; colorize_tf.Error naming the known ones."""
    try:
        return _FAMILIES[name]
    except (KeyError, TypeError):
        raise errors.Error(f"no model family {name!r}; known: {', '.join(names())}") from None


def names():
    """The registered families' names, in registration order."""
    return tuple(_FAMILIES)
