"""The contract of the exported SavedModel, shared by export, colorize, the REST client
and tests: signature and tensor names, and the default temperature. No TensorFlow
import, so a client can use it without loading TF.

serving_default(image_bytes: string [B], temperature: float [B] or [1])
    -> colorized_png_bytes: string [B], confidence_png_bytes: string [B]
colorize_luma(luma: float [B, H, W, 1] in [0, 1], temperature: float [B] or [1])
    -> chroma [B, H, W, 2], probabilities [B, H, W, n], confidence [B, H, W]
"""
SERVING_SIGNATURE = "serving_default"
LUMA_SIGNATURE = "colorize_luma"
IMAGE_BYTES = "image_bytes"
TEMPERATURE = "temperature"
COLORIZED_PNG = "colorized_png_bytes"
CONFIDENCE_PNG = "confidence_png_bytes"
DEFAULT_TEMPERATURE = 0.38  # Zhang et al. 2016, section 3.3
