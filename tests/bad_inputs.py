"""A corpus of bad and awkward input files, generated (nothing downloaded, nothing
committed): what users point the tools at. make_corpus(folder) writes it and returns
{name: what it is}. Used by test_bad_inputs.py against every entry point.
"""
import io
import os
import struct
import zlib

import cv2
import numpy as np

from tests.conftest import make_photo, with_exif_orientation


def _png(rgb_or_gray):
    array = np.asarray(rgb_or_gray)
    if array.ndim == 3 and array.shape[2] in (3, 4):
        array = array[..., [2, 1, 0, 3][:array.shape[2]]]
    return cv2.imencode(".png", array)[1].tobytes()


def _jpeg(rgb):
    return cv2.imencode(".jpg", rgb[..., ::-1].copy())[1].tobytes()


def _png_header(width, height):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr +
            struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF))


def _pil(fmt, array, **kwargs):
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def corpus_bytes():
    """{file name: (bytes, what it is)}."""
    photo = make_photo(48, 64, seed=7)
    jpeg = _jpeg(photo)
    rgba = np.dstack([photo, np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (48, 1))])
    gray_alpha = np.dstack([photo[..., 0], np.full((48, 64), 128, np.uint8)])
    sixteen = (photo.astype(np.uint16) * 257)[..., ::-1]
    files = {
        "good.png": (_png(photo), "a plain colour photo"),
        "good.jpg": (jpeg, "a plain JPEG"),
        "empty.jpg": (b"", "0 bytes"),
        "text.jpg": (b"this is not an image\n" * 10, "text named .jpg"),
        "random.png": (np.random.default_rng(0).bytes(3000), "random bytes"),
        "truncated.jpg": (jpeg[:len(jpeg) // 2], "JPEG cut in half"),
        "truncated.png": (_png(photo)[:200], "PNG cut short"),
        "header_only.jpg": (jpeg[:300], "JPEG with only its headers"),
        "bomb.png": (_png_header(100000, 100000) + b"\x00" * 30,
                     "74-byte PNG claiming 100000 x 100000"),
        "bomb.gif": (b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\x00" * 20,
                     "GIF claiming 65535 x 65535"),
        "bomb.bmp": (b"BM" + b"\x00" * 16 + struct.pack("<ii", 60000, -60000) + b"\x00" * 30,
                     "BMP claiming 60000 x 60000 (top-down)"),
        "bomb.jpg": (jpeg.replace(b"\xff\xc0\x00\x11\x08\x00\x30\x00\x40",
                                  b"\xff\xc0\x00\x11\x08\xff\xdc\xff\xdc"),
                     "JPEG whose frame header claims 65500 x 65500"),
        "zero_size.png": (_png_header(0, 0) + b"\x00" * 30, "PNG claiming 0 x 0"),
        "trailer.jpg": (jpeg + b"\x00" * 2000 + b"MotionPhoto" * 50,
                        "JPEG with data after its end (phones)"),
        "rotated.jpg": (with_exif_orientation(jpeg, 6), "EXIF orientation 6 (phone portrait)"),
        "bad_exif.jpg": (with_exif_orientation(jpeg, 77), "EXIF orientation 77 (invalid)"),
        "rgba.png": (_png(rgba), "RGBA with transparency"),
        "gray_alpha.png": (_pil("PNG", gray_alpha), "gray + alpha"),
        "sixteen.png": (cv2.imencode(".png", sixteen)[1].tobytes(), "16-bit RGB PNG"),
        "one_pixel.png": (_png(photo[:1, :1]), "1 x 1 pixel"),
        "thin.png": (_png(np.tile(photo[:1], (1, 40, 1))[:, :2000]), "1 x 2560 strip"),
        "gray.png": (_png(np.full((40, 40, 3), 120, np.uint8)), "a gray photo"),
        "png_named.jpg": (_png(make_photo(48, 64, seed=8)), "PNG data named .jpg"),
        "gif_named.jpg": (_pil("GIF", photo), "GIF data named .jpg"),
        "photo.webp": (_pil("WEBP", photo, quality=80), "WebP"),
        "photo.tif": (_pil("TIFF", photo), "TIFF"),
        "cmyk.jpg": (_cmyk_jpeg(photo), "CMYK JPEG"),
        "animated.webp": (_animated_webp(photo), "animated WebP (TF's decoder aborts on it)"),
    }
    assert files["bomb.jpg"][0] != jpeg, "the frame header to enlarge was not found"
    return files


def _animated_webp(rgb):
    from PIL import Image
    frames = [Image.fromarray(np.roll(rgb, 8 * i, axis=1)) for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "WEBP", save_all=True, append_images=frames[1:], duration=100)
    return buffer.getvalue()


def _cmyk_jpeg(rgb):
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(buffer, format="JPEG")
    return buffer.getvalue()


def make_corpus(folder):
    """Writes the corpus into folder; returns {name: what it is} (names as str)."""
    os.makedirs(folder, exist_ok=True)
    described = {}
    for name, (data, what) in corpus_bytes().items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
        described[name] = what
    with open(os.path.join(os.fsencode(folder), b"caf\xe9.jpg"), "wb") as f:
        f.write(_jpeg(make_photo(40, 56, seed=9)))  # a name that is not valid UTF-8
    described[os.fsdecode(b"caf\xe9.jpg")] = "file name not valid UTF-8"
    os.makedirs(os.path.join(folder, "folder.jpg"))
    described["folder.jpg"] = "a directory named like a photo"
    with open(os.path.join(folder, ".hidden.jpg"), "wb") as f:
        f.write(b"")
    described[".hidden.jpg"] = "hidden file"
    described.update(make_special_files(folder))
    return described


# Files that are not regular files: reading them blocks forever (a FIFO with no
# writer) or never ends (/dev/zero, /dev/urandom).
SPECIAL = {"pipe.jpg": "a FIFO", "zero.jpg": "a link to /dev/zero",
           "urandom.png": "a link to /dev/urandom"}


def make_special_files(folder):
    """Writes SPECIAL into folder; returns {name: what it is}."""
    os.mkfifo(os.path.join(folder, "pipe.jpg"))
    os.symlink("/dev/zero", os.path.join(folder, "zero.jpg"))
    os.symlink("/dev/urandom", os.path.join(folder, "urandom.png"))
    return dict(SPECIAL)
