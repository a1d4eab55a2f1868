"""Image files before decoding: which names count as photos, what size a file says it
is (read from its header, so a decompression bomb is refused before it costs memory),
whether a JPEG is complete, and PNG text chunks that mark colorize_tf's own results.

Pure Python on bytes: usable by data prep, the CLIs and the REST client alike. The
serving graph has its own core-TF header check (export.py), tested against this one.
"""
import errno
import os
import stat
import struct
import zlib

from colorize_tf import errors

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv")
# 8660 x 5773. A 16000 x 16000 scan (256 Mpx) costs ~6 GB to decode and frame; such
# inputs are refused with a reason unless the limit is raised.
DEFAULT_MAX_PIXELS = 50_000_000
HEADER_BYTES = 1 << 16  # enough for every header this module reads (JPEG: see below)
# The most read from one file: the server's default limit on a request body (serving/app.py),
# so a file is refused where its upload would be. A 50 Mpx JPEG is 10-25 MB.
MAX_FILE_BYTES = 64 << 20


class ImageRejected(errors.Error):
    """A file that is not processed, with a one-line reason."""


def is_hidden(name):
    return os.path.basename(name).startswith(".")


def has_image_extension(name):
    return name.lower().endswith(IMAGE_EXTENSIONS)


def has_video_extension(name):
    return name.lower().endswith(VIDEO_EXTENSIONS)


def list_files(paths, extensions):
    """Files and folders (recursive, sorted) -> (files [(path, root folder or None)],
    hidden [path]). Hidden files and folders (".name") are returned apart, never read."""
    found, hidden = [], []
    for path in paths:
        if not os.path.isdir(path):
            found.append((path, None))
            continue
        for root, dirs, files in os.walk(path):
            hidden += [os.path.join(root, d) for d in sorted(dirs) if is_hidden(d)]
            dirs[:] = sorted(d for d in dirs if not is_hidden(d))
            for name in sorted(files):
                full = os.path.join(root, name)
                if is_hidden(name):
                    hidden.append(full)
                elif name.lower().endswith(extensions):
                    found.append((full, path))
    return found, hidden


def _file_kind(mode):
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a folder")):
        if test(mode):
            return kind
    return "not a regular file"


def _open_regular(path):
    """-> (an open descriptor of the regular file at path, links followed; its size).
    Opened without blocking and checked on the descriptor, so a FIFO cannot hang the
    caller; OSError (strerror: a one-line reason) for a FIFO, a device (a link to
    /dev/zero), a socket or a folder."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    mode = os.fstat(fd)
    if not stat.S_ISREG(mode.st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, f"{_file_kind(mode.st_mode)}, not a regular file: "
                      "not read", path)
    return fd, mode.st_size


def read_file(path, limit=MAX_FILE_BYTES, head=False):
    """The bytes of the regular file at path (links followed): all of them, or with
    head=True its first limit bytes. OSError, its strerror a one-line reason, for what
    is not read (_open_regular) and, unless head, for a file longer than limit bytes
    (checked before reading and while reading, for a file that grows)."""
    fd, size = _open_regular(path)
    try:
        if size > limit and not head:
            raise OSError(errno.EFBIG, f"{size:,} bytes, more than the {limit:,} read "
                          "from one file", path)
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if head:
        return data[:limit]
    if size > limit:
        raise OSError(errno.EFBIG, f"more than the {limit:,} bytes read from one file", path)
    return data


def check_regular_file(path):
    """OSError (as read_file's) unless path is a regular file, links followed: for
    readers that open the file themselves (videos)."""
    os.close(_open_regular(path)[0])


def _u16(data, offset, big_endian):
    return struct.unpack_from(">H" if big_endian else "<H", data, offset)[0]


def _u32(data, offset, big_endian):
    return struct.unpack_from(">I" if big_endian else "<I", data, offset)[0]


# JPEG start-of-frame markers (they carry the size): C0-CF except C4 (DHT), C8 (JPG)
# and CC (DAC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data):
    offset = 2
    while offset + 4 <= len(data):
        if data[offset] != 0xFF:
            return None
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            offset += 2
            continue
        length = _u16(data, offset + 2, True)
        if marker in _SOF_MARKERS:
            if offset + 9 > len(data):
                return None
            return _u16(data, offset + 5, True), _u16(data, offset + 7, True)
        if marker == 0xDA or length < 2:  # scan data before any frame header
            return None
        offset += 2 + length
    return None


def _webp_size(data):
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        width = 1 + int.from_bytes(data[24:27], "little")
        return 1 + int.from_bytes(data[27:30], "little"), width
    if chunk == b"VP8 " and len(data) >= 30:
        return _u16(data, 28, False) & 0x3FFF, _u16(data, 26, False) & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = _u32(data, 21, False)
        return ((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1
    return None


def _tiff_size(data):
    big = data[:2] == b"MM"
    try:
        ifd = _u32(data, 4, big)
        count = _u16(data, ifd, big)
        size = {}
        for i in range(count):
            entry = ifd + 2 + 12 * i
            tag, kind = _u16(data, entry, big), _u16(data, entry + 2, big)
            if tag in (256, 257):  # ImageWidth, ImageLength: SHORT (3) or LONG (4)
                size[tag] = _u16(data, entry + 8, big) if kind == 3 else _u32(data, entry + 8, big)
        return size[257], size[256]
    except (struct.error, KeyError):
        return None


def header_size(data):
    """Encoded image bytes (at least the first HEADER_BYTES) -> (height, width) read from
    the header, or None when the format is unknown or the header is cut short.
    JPEG, PNG, GIF, BMP, WebP and TIFF."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
            return _u32(data, 20, True), _u32(data, 16, True)
        if data[:3] == b"GIF" and len(data) >= 10:
            return _u16(data, 8, False), _u16(data, 6, False)
        if data[:2] == b"BM" and len(data) >= 26:
            return abs(struct.unpack_from("<i", data, 22)[0]), abs(
                struct.unpack_from("<i", data, 18)[0])
        if data[:2] == b"\xff\xd8":
            return _jpeg_size(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(data)
    except struct.error:
        return None
    return None


# WebP's extended header: "RIFF" size "WEBP" "VP8X" size, then a flags byte whose bit 1
# says the file is an animation (the WebP container specification).
WEBP_FLAGS_OFFSET = 20
WEBP_ANIMATION_FLAG = 0x02


def is_animated_webp(data):
    """True for a WebP whose extended header marks it as an animation."""
    return (data[:4] == b"RIFF" and data[8:12] == b"WEBP" and data[12:16] == b"VP8X"
            and len(data) > WEBP_FLAGS_OFFSET
            and bool(data[WEBP_FLAGS_OFFSET] & WEBP_ANIMATION_FLAG))


def check_decodable(data):
    """Raises ImageRejected for bytes that TensorFlow's decoder would abort the whole
    process on (a native crash, which no try/except catches): an animated WebP
    (TF 2.21's decode_image and decode_webp alike: "double free or corruption"). The
    same file with its animation flag cleared is refused by the decoder with an
    ordinary error, so the flag is what to check."""
    if is_animated_webp(data):
        raise ImageRejected("animated WebP is not supported (TensorFlow's WebP decoder "
                            "crashes on animations): save one frame as PNG or JPEG")


def check_pixels(data, max_pixels):
    """Raises ImageRejected when the header gives more than max_pixels pixels; returns
    (height, width) or None when the header cannot tell (the decoder then decides)."""
    size = header_size(data)
    if size is not None and size[0] * size[1] > max_pixels:
        raise ImageRejected(f"{size[1]}x{size[0]} px is larger than the limit of "
                            f"{max_pixels} pixels (raise --max_pixels to allow it)")
    return size


def jpeg_is_complete(data):
    """True when a JPEG's image data reaches its end-of-image marker (FFD9).

    Walks the marker segments up to the first scan, then looks for FFD9 in the
    entropy-coded data (where FF is always stuffed as FF00, so FFD9 is the real end).
    Data after the marker (phone trailers, a motion photo's video) is fine; an EXIF
    thumbnail's own FFD9 inside APP1 is not mistaken for the end.
    """
    offset = 2
    while offset + 4 <= len(data):
        if data[offset] != 0xFF:
            return False
        marker = data[offset + 1]
        if marker == 0xFF:
            offset += 1
            continue
        if marker == 0xD9:
            return True
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            offset += 2
            continue
        length = _u16(data, offset + 2, True)
        if marker == 0xDA:
            return data.find(b"\xff\xd9", offset + 2 + length) >= 0
        offset += 2 + length
    return False


# PNG text chunk that marks a result written by colorize_tf: --overwrite replaces only
# files that carry it, never a user's own photo.
PNG_MARK_KEYWORD = b"Software"
PNG_MARK_TEXT = b"colorize_tf"


def mark_png(png):
    """PNG bytes -> the same image with a tEXt chunk Software=colorize_tf after IHDR."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise errors.Error("not PNG data")
    body = PNG_MARK_KEYWORD + b"\x00" + PNG_MARK_TEXT
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(
        ">I", zlib.crc32(b"tEXt" + body) & 0xFFFFFFFF)
    end_of_ihdr = 8 + 8 + 13 + 4  # signature, IHDR length+type, IHDR data, CRC
    return png[:end_of_ihdr] + chunk + png[end_of_ihdr:]


def is_marked_png(path):
    """True when the file is a PNG written by colorize_tf (see mark_png)."""
    try:
        head = read_file(path, 256, head=True)
    except OSError:
        return False
    return head[:8] == b"\x89PNG\r\n\x1a\n" and b"tEXt" + PNG_MARK_KEYWORD + b"\x00" + \
        PNG_MARK_TEXT in head
