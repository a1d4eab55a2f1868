"""Header sizes without decoding, complete-JPEG check, result marks, safe writes."""
import errno
import io
import os
import struct

import cv2
import numpy as np
import pytest
import tensorflow as tf

from colorize_tf import safe_write
from colorize_tf.data import image_files
from colorize_tf.serving import photo_decoding
from tests.conftest import make_photo


def _encoded(fmt, height, width, **kwargs):
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(make_photo(height, width)).save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt,kwargs", [
    ("JPEG", {}), ("JPEG", {"progressive": True}), ("PNG", {}), ("GIF", {}), ("BMP", {}),
    ("WEBP", {"lossless": True}), ("WEBP", {"quality": 80}), ("TIFF", {}),
])
def test_header_size_matches_the_decoded_size(fmt, kwargs):
    data = _encoded(fmt, 37, 53, **kwargs)
    assert image_files.header_size(data) == (37, 53)
    # The serving graph's own header reader agrees where it knows the format.
    if fmt in ("JPEG", "PNG", "GIF", "BMP"):
        assert tuple(photo_decoding.header_size(tf.constant(data)).numpy()) == (37, 53)


def test_header_of_odd_bytes_is_unknown_not_an_error():
    for data in [b"", b"\x89PNG", b"\xff\xd8\xff\xe0\x00", b"GIF8", b"RIFF\x00\x00\x00\x00WEBP",
                 b"II*\x00\xff\xff\xff\x7f", b"random bytes" * 10]:
        assert image_files.header_size(data) is None


def test_pixel_limit_from_the_header():
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(
        ">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    with pytest.raises(image_files.ImageRejected, match="100000x100000 px is larger"):
        image_files.check_pixels(header, 50_000_000)
    assert image_files.check_pixels(header, 10 ** 10) == (100000, 100000)


def test_jpeg_complete_with_trailer_and_thumbnail_but_not_cut():
    jpeg = cv2.imencode(".jpg", make_photo(64, 64))[1].tobytes()
    assert image_files.jpeg_is_complete(jpeg)
    assert image_files.jpeg_is_complete(jpeg + b"\x00" * 5000 + b"MotionPhoto_Data")
    for cut in (len(jpeg) // 2, len(jpeg) - 2, 10):
        assert not image_files.jpeg_is_complete(jpeg[:cut])
    # An EXIF thumbnail ends with its own FFD9 inside APP1: that is not the photo's end.
    thumbnail = cv2.imencode(".jpg", make_photo(8, 8))[1].tobytes()
    payload = b"Exif\x00\x00" + thumbnail
    with_thumbnail = jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + \
        jpeg[2:]
    assert image_files.jpeg_is_complete(with_thumbnail)
    assert not image_files.jpeg_is_complete(with_thumbnail[:len(with_thumbnail) // 2])


def test_marked_png_still_decodes_and_is_recognised(tmp_path):
    png = cv2.imencode(".png", make_photo(9, 7))[1].tobytes()
    marked = image_files.mark_png(png)
    np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(marked, np.uint8), 1),
                                  cv2.imdecode(np.frombuffer(png, np.uint8), 1))
    (tmp_path / "a.png").write_bytes(marked)
    (tmp_path / "b.png").write_bytes(png)
    assert image_files.is_marked_png(str(tmp_path / "a.png"))
    assert not image_files.is_marked_png(str(tmp_path / "b.png"))
    assert not image_files.is_marked_png(str(tmp_path / "missing.png"))


def test_failed_write_leaves_nothing_and_stale_temps_go(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with safe_write.replacing(str(target)) as tmp:
            open(tmp, "wb").write(b"half")
            raise RuntimeError("disk full")
    assert os.listdir(tmp_path) == ["out.bin"] and target.read_bytes() == b"old"
    # Keras' and h5py's writers raise OSError without a path on a full disk: the
    # target's is added, the temp file still removed.
    with pytest.raises(OSError) as caught:
        with safe_write.replacing(str(target)) as tmp:
            open(tmp, "wb").write(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert (caught.value.errno, caught.value.filename) == (errno.ENOSPC, str(target))
    assert os.listdir(tmp_path) == ["out.bin"] and target.read_bytes() == b"old"
    (tmp_path / ".x.keras.tmp-999999999.keras").write_bytes(b"")
    (tmp_path / f".y.tmp-{os.getpid()}").write_bytes(b"")  # a live writer's: kept
    assert safe_write.remove_stale_temps(str(tmp_path)) == [".x.keras.tmp-999999999.keras"]


def test_read_file_reads_regular_files_only_and_at_most_the_limit(tmp_path):
    import errno
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"x" * 1000)
    assert image_files.read_file(str(photo)) == b"x" * 1000
    assert image_files.read_file(str(photo), limit=1000) == b"x" * 1000
    assert image_files.read_file(str(photo), limit=10, head=True) == b"x" * 10
    with pytest.raises(OSError, match="1,000 bytes, more than the 999 read") as refused:
        image_files.read_file(str(photo), limit=999)
    assert refused.value.errno == errno.EFBIG
    os.mkfifo(tmp_path / "pipe.jpg")  # no writer: a blocking read would never return
    os.symlink("/dev/zero", tmp_path / "zero.jpg")  # a read that never ends
    os.symlink(str(photo), tmp_path / "link.jpg")  # a link to a regular file is read
    for name, kind in (("pipe.jpg", "a FIFO"), ("zero.jpg", "a character device"),
                       (".", "a folder")):
        with pytest.raises(OSError, match=f"{kind}, not a regular file: not read"):
            image_files.read_file(str(tmp_path / name))
        with pytest.raises(OSError, match=f"{kind}, not a regular file"):
            image_files.check_regular_file(str(tmp_path / name))
    assert image_files.read_file(str(tmp_path / "link.jpg")) == b"x" * 1000
    assert not image_files.is_marked_png(str(tmp_path / "pipe.jpg"))
