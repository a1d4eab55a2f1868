"""colorize_tf: ColorUNet colorization of grayscale photos and videos in TensorFlow."""
__version__ = "0.1.0"
