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
LUMA = "luma"
CHROMA = "chroma"
PROBABILITIES = "probabilities"
CONFIDENCE = "confidence"
DEFAULT_TEMPERATURE = 0.38  # Zhang et al. 2016, section 3.3


def error_line(message):
    """The useful line of a TF error message, without the Python wrapper's preamble
    ("Graph execution error", "Detected at node ...") and the node trailer; for an
    assert, its message only. E.g. "image is larger than the limit of 50000000 pixels"."""
    skip = ("Graph execution error", "Detected at node", "<stack traces", "[[")
    lines = [line.strip() for line in str(message).splitlines()]
    useful = [line for line in lines if line and not line.startswith(skip)]
    line = useful[0] if useful else str(message).strip()
    if line.startswith("assertion failed: ["):
        line = line[len("assertion failed: ["):].split("]")[0]
    return line.split("\t [[")[0].strip()[:300]
