"""colorize_tf: colorization of black-and-white photos and videos in TensorFlow, colour
as a class per pixel over chroma bins (an EfficientNet-Lite0 colorizer by default,
ColorUNets beside it), exported as SavedModels for TF Serving."""
from colorize_tf.errors import Error  # noqa: F401 (the base of every library error)

__version__ = "0.1.0"


def __getattr__(name):
    # Lazy, so `import colorize_tf` stays cheap and does not load TensorFlow.
    if name == "Colorizer":
        from colorize_tf.serving.inference import Colorizer
        return Colorizer
    raise AttributeError(f"module 'colorize_tf' has no attribute {name!r}")
