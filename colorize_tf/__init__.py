"""colorize_tf: ColorUNet colorization of grayscale photos and videos in TensorFlow."""
__version__ = "0.1.0"


def __getattr__(name):
    # Lazy, so `import colorize_tf` stays cheap and does not load TensorFlow.
    if name == "Colorizer":
        from colorize_tf.serving.inference import Colorizer
        return Colorizer
    raise AttributeError(f"module 'colorize_tf' has no attribute {name!r}")
