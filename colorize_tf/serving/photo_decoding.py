"""Photos decoded inside the exported graph, in core TF ops: their size from the header
(checked against the pixel limit before decoding), animated WebPs refused (TF's decoder
aborts the process on them), EXIF orientation applied, alpha composited over white.
serving/graph.py calls decode_rgb for every photo a signature takes.
"""
import tensorflow as tf

from colorize_tf.data import image_files


def header_size(data):
    """(height, width) from a JPEG/PNG/GIF/BMP header without decoding; (0, 0) if unknown."""
    def be32(offset):
        return _int_from_bytes(data, offset, 4, big_endian=True)

    def le(offset, n):
        return _int_from_bytes(data, offset, n, big_endian=False)

    length = tf.strings.length(data)
    magic = tf.strings.substr(data, 0, tf.minimum(4, length))
    is_png = tf.equal(magic, b"\x89PNG") & (length >= 24)
    is_gif = tf.equal(tf.strings.substr(data, 0, tf.minimum(3, length)), b"GIF") & (length >= 10)
    is_bmp = tf.equal(tf.strings.substr(data, 0, tf.minimum(2, length)), b"BM") & (length >= 26)
    is_jpeg = tf.equal(tf.strings.substr(data, 0, tf.minimum(2, length)), b"\xff\xd8")
    return tf.case([
        (is_png, lambda: tf.stack([be32(20), be32(16)])),
        (is_gif, lambda: tf.stack([le(8, 2), le(6, 2)])),
        (is_bmp, lambda: tf.abs(tf.stack([le(22, 4), le(18, 4)]))),
        (is_jpeg, lambda: tf.cast(tf.image.extract_jpeg_shape(data)[:2], tf.int32)),
    ], default=lambda: tf.zeros([2], tf.int32))


def _int_from_bytes(data, offset, n, big_endian):
    raw = tf.cast(tf.io.decode_raw(tf.strings.substr(data, offset, n), tf.uint8), tf.int64)
    powers = tf.constant([256 ** i for i in range(n)], tf.int64)
    if big_endian:
        powers = tf.reverse(powers, [0])
    value = tf.reduce_sum(raw * powers)
    if n == 4 and not big_endian:  # BMP sizes are signed (negative height: top-down)
        value = tf.where(value >= 2 ** 31, value - 2 ** 32, value)
    return tf.cast(tf.minimum(tf.abs(value), 2 ** 31 - 1), tf.int32)


def is_animated_webp(data):
    """image_files.is_animated_webp in graph ops: a WebP whose VP8X flags byte has the
    animation bit."""
    length = tf.strings.length(data)
    part = lambda start, n: tf.strings.substr(  # noqa: E731 (clamped: any bytes are fine)
        data, tf.minimum(start, length), tf.minimum(n, tf.maximum(length - start, 0)))
    is_vp8x = (tf.equal(part(0, 4), b"RIFF") & tf.equal(part(8, 4), b"WEBP")
               & tf.equal(part(12, 4), b"VP8X"))
    flags = tf.io.decode_raw(part(image_files.WEBP_FLAGS_OFFSET, 1), tf.uint8)
    animated = tf.reduce_any(tf.bitwise.bitwise_and(
        flags, image_files.WEBP_ANIMATION_FLAG) > 0)
    return is_vp8x & animated


def _exif_orientation(data):
    """JPEG bytes -> its EXIF orientation 1..8 (int32 scalar; 1 when absent or unreadable).

    Finds the APP1 "Exif\\0\\0" header in the first 64 KiB, reads the TIFF byte order
    and IFD0, and looks for tag 0x0112 among its first 32 entries. Positions are
    clamped, so any bytes give an answer, never an error.
    """
    head = tf.strings.substr(data, 0, tf.minimum(tf.strings.length(data), 1 << 16))
    length = tf.strings.length(head)
    parts = tf.strings.split(head, sep="Exif\x00\x00", maxsplit=1)
    tiff = tf.strings.length(parts[0]) + 6
    little = tf.equal(tf.strings.substr(head, tf.minimum(tiff, length), 2), b"II")

    def read(offset, n):
        raw = tf.io.decode_raw(tf.strings.substr(head, tf.clip_by_value(offset, 0, length), n),
                               tf.uint8)
        raw = tf.cast(tf.pad(raw, [[0, n - tf.size(raw)]]), tf.int64)
        return raw

    def value(raw, axis_bytes):
        powers = tf.constant([256 ** i for i in range(axis_bytes)], tf.int64)
        little_value = tf.reduce_sum(raw * powers, axis=-1)
        big_value = tf.reduce_sum(raw * tf.reverse(powers, [0]), axis=-1)
        return tf.where(little, little_value, big_value)

    ifd = tiff + tf.cast(tf.minimum(value(read(tiff + 4, 4), 4), 1 << 20), tf.int32)
    count = value(read(ifd, 2), 2)
    entries = tf.reshape(read(ifd + 2, 12 * 32), [32, 12])
    tags = value(entries[:, 0:2], 2)
    values = value(entries[:, 8:10], 2)
    wanted = (tf.range(32, dtype=tf.int64) < count) & tf.equal(tags, 0x0112)
    orientation = tf.reduce_max(tf.where(wanted, values, 0))
    valid = (tf.size(parts) > 1) & (orientation >= 1) & (orientation <= 8)
    return tf.where(valid, tf.cast(orientation, tf.int32), 1)


def apply_orientation(image, orientation):
    """image [H, W, C] as stored, EXIF orientation 1..8 -> the image as it is meant to be
    seen (what OpenCV's IMREAD_COLOR and PIL's exif_transpose give)."""
    transpose = lambda: tf.transpose(image, [1, 0, 2])  # noqa: E731
    branches = [
        lambda: image,
        lambda: image,
        lambda: tf.image.flip_left_right(image),
        lambda: tf.image.rot90(image, 2),
        lambda: tf.image.flip_up_down(image),
        transpose,
        lambda: tf.image.rot90(image, 3),  # 90 degrees clockwise
        lambda: tf.image.rot90(transpose(), 2),  # transverse
        lambda: tf.image.rot90(image, 1),  # 90 degrees counter-clockwise
    ]
    return tf.switch_case(orientation, branches)


# What transparent pixels become, here and in data prep's default (PrepConfig): the
# colour of paper, so that a logo or a scan with a transparent margin stays light.
ALPHA_BACKGROUND = 1.0


def decode_rgb(data):
    """Encoded bytes -> RGB uint8 [H, W, 3] as meant to be seen: EXIF orientation
    applied (JPEG), alpha composited over white (rounded to 8 bits), gray expanded,
    16-bit scaled to 8, the first frame of a GIF. Stays in 8 bits throughout: at
    3000x2000 a float copy of the photo costs more than decoding it."""
    image = tf.io.decode_image(data, channels=0, expand_animations=False)
    channels = tf.shape(image)[-1]

    def over_white():
        pixels = tf.cast(image, tf.float32) / 255.0
        alpha = pixels[..., -1:]
        colour = pixels[..., :-1] * alpha + ALPHA_BACKGROUND * (1.0 - alpha)
        return tf.cast(tf.round(colour * 255.0), tf.uint8)

    opaque = tf.cond(tf.equal(channels % 2, 0), over_white, lambda: image)
    rgb = tf.cond(tf.shape(opaque)[-1] >= 3, lambda: opaque[..., :3],
                  lambda: tf.tile(opaque[..., :1], [1, 1, 3]))
    is_jpeg = tf.equal(tf.strings.substr(data, 0, tf.minimum(2, tf.strings.length(data))),
                       b"\xff\xd8")
    orientation = tf.where(is_jpeg, _exif_orientation(data), 1)
    return apply_orientation(rgb, orientation)
