"""One photo's tf.train.Example, serialized without TensorFlow: the record schema's keys
and its writer.

data/records.py is the TFRecord schema and re-exports these names. They live here so that
data prep's worker processes, which do not load TensorFlow, make the examples
themselves (issue 13: making them in the main process cost ~60 us a photo there, a
fifth of its work, and the workers waited on it). The bytes are protobuf's wire format
of tensorflow/core/example/example.proto (Example.features = 1, Features.feature = 1
as map entries (key = 1, value = 2), Feature.bytes_list = 1 and .int64_list = 3, each
list's value = 1, int64s packed), exactly as SerializeToString(deterministic=True)
gives them, features sorted by key (tests/test_records.py compares the two).
"""

ENCODED = "image/encoded"
FORMAT = "image/format"
HEIGHT = "image/height"
WIDTH = "image/width"
MASK_BOX = "image/mask/box"  # [ymin, xmin, ymax, xmax), pixels, end exclusive
ORIGINAL_HEIGHT = "image/original/height"
ORIGINAL_WIDTH = "image/original/width"
SOURCE_ID = "image/source_id"
LABEL = "image/class/label"  # -1 when the photo has no class
LABEL_TEXT = "image/class/text"

PNG = b"png"
NO_LABEL = -1

_UINT64 = (1 << 64) - 1


def _varint(value):
    """Protobuf's base-128 varint of an int in [0, 2**64)."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number, payload):
    """A length-delimited field (wire type 2): tag, length, payload."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def bytes_feature(value):
    """A Feature holding bytes_list [value]."""
    return _field(1, _field(1, value))


def int64_feature(values):
    """A Feature holding int64_list values (packed; a negative one as its 64-bit two's
    complement, ten bytes, as protobuf writes it)."""
    return _field(3, _field(1, b"".join(_varint(v & _UINT64) for v in values))
                  if values else b"")


def serialize_example(features):
    """{key: Feature bytes} -> a serialized Example, its map entries sorted by key."""
    return _field(1, b"".join(_field(1, _field(1, key.encode("utf-8")) + _field(2, value))
                              for key, value in sorted(features.items())))


def make_example(png_bytes, frame_shape, mask_box, original_shape, source_id,
                 label=NO_LABEL, label_text=""):
    """Serialized tf.train.Example for one framed photo.

    png_bytes: PNG of the RGB frame; frame_shape: (height, width); mask_box:
    (ymin, xmin, ymax, xmax) of the photo inside the frame; original_shape:
    (height, width) of the file as decoded. Re-runs give identical bytes.
    """
    return serialize_example({
        ENCODED: bytes_feature(png_bytes),
        FORMAT: bytes_feature(PNG),
        HEIGHT: int64_feature([int(frame_shape[0])]),
        WIDTH: int64_feature([int(frame_shape[1])]),
        MASK_BOX: int64_feature([int(v) for v in mask_box]),
        ORIGINAL_HEIGHT: int64_feature([int(original_shape[0])]),
        ORIGINAL_WIDTH: int64_feature([int(original_shape[1])]),
        # surrogateescape keeps a file name that is not valid UTF-8 as its exact bytes
        SOURCE_ID: bytes_feature(source_id.encode("utf-8", "surrogateescape")),
        LABEL: int64_feature([int(label)]),
        LABEL_TEXT: bytes_feature(label_text.encode("utf-8")),
    })
