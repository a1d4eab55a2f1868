"""The contract of the exported SavedModel, shared by export, colorize, the REST client
and tests: signature and tensor names, and the default temperature. No TensorFlow
import, so a client can use it without loading TF.

serving_default(image_bytes: string [B], temperature: float [B] or [1])
    -> colorized_png_bytes: string [B], confidence_png_bytes: string [B]
colorize_image(image_bytes, temperature, output_format: string [B] or [1], "png" or
    "jpeg") -> colorized_bytes: string [B], confidence_bytes: string [B]
colorize_luma(luma: float [B, H, W, 1] in [0, 1], temperature: float [B] or [1])
    -> chroma [B, H, W, 2], confidence [B, H, W]
luma_probabilities(luma) -> probabilities [B, H', W', n] on the model's logits' grid:
    H' = ceil(H / s) for its output stride s (export.json's probabilities_stride: 4 for
    the pretrained colorizer, 1 for the ColorUNet; exports from before 2026-12-05
    upsampled them to [B, H, W, n] and have no probabilities_stride)

A hints model (trained with --hints) also has:
colorize_with_hints(image_bytes, temperature, hint_points: float [B, K, 2] (row,
    column relative to the photo, 0-1; a row with a negative coordinate is padding),
    hint_colors: uint8 [B, K, 3] RGB) -> colorized_png_bytes, confidence_png_bytes
luma_hints_probabilities(luma, hint_chroma [B, H, W, 2] in the bins' colour space,
    hint_mask [B, H, W, 1]) -> probabilities [B, H, W, n]
and its other signatures colorize without hints.

A new input cannot be added to serving_default: TF Serving's REST API wants every
input of a signature in each request (json_tensor.cc: "keys must be equal to", and
"Missing named input"), whatever defaults the SignatureDef holds, so older clients
would break. Exports before colorize_luma lost its probabilities output have no
colorize_image and luma_probabilities signatures.
"""
import numbers

SERVING_SIGNATURE = "serving_default"
LUMA_SIGNATURE = "colorize_luma"
IMAGE_SIGNATURE = "colorize_image"
PROBABILITIES_SIGNATURE = "luma_probabilities"
HINTS_SIGNATURE = "colorize_with_hints"
LUMA_HINTS_SIGNATURE = "luma_hints_probabilities"
IMAGE_BYTES = "image_bytes"
TEMPERATURE = "temperature"
COLORIZED_PNG = "colorized_png_bytes"
CONFIDENCE_PNG = "confidence_png_bytes"
OUTPUT_FORMAT = "output_format"
PNG = "png"
JPEG = "jpeg"
OUTPUT_FORMATS = (PNG, JPEG)
COLORIZED_BYTES = "colorized_bytes"
CONFIDENCE_BYTES = "confidence_bytes"
LUMA = "luma"
HINT_CHROMA = "hint_chroma"  # the hints model's inputs beside the luma (modeling/model.py)
HINT_MASK = "hint_mask"
HINT_POINTS = "hint_points"
HINT_COLORS = "hint_colors"
CHROMA = "chroma"
PROBABILITIES = "probabilities"
CONFIDENCE = "confidence"
DEFAULT_TEMPERATURE = 0.38  # Zhang et al. 2016, section 3.3
# The annealed mean's temperatures: the graph divides the logits by T in float32, so T
# must be finite there (3.4e38 at most); below 0.001 the annealed mean is the mode
# (Zhang et al.: T -> 0) to within 8 bits for any two logits that differ by 0.02, and
# a tiny T (1e-38) would overflow the scaled logits or be flushed to 0 by the CPU.
MIN_TEMPERATURE = 1e-3
MAX_TEMPERATURE = 3.4028234663852886e38  # float32's largest finite number


def temperature_problem(value):
    """None where value is an annealed-mean temperature this package takes (a real
    number, MIN_TEMPERATURE <= value <= MAX_TEMPERATURE), else the one-line reason."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return f"temperature must be a number, got {type(value).__name__}"
    if not MIN_TEMPERATURE <= value <= MAX_TEMPERATURE:
        return (f"temperature must be a finite number of at least {MIN_TEMPERATURE:g} "
                f"(e.g. {DEFAULT_TEMPERATURE}), got {value:g}")
    return None


def version_number(name):
    """A model version folder's name -> its version (int), or None where the name is
    not one: ASCII digits without leading zeros, as TF Serving writes them ("²" and
    "٣" are digits to str.isdigit, not version numbers; "07" is not "7")."""
    if not (name.isascii() and name.isdigit()) or (name.startswith("0") and name != "0"):
        return None
    return int(name)


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
