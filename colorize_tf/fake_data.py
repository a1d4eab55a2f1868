"""Generated stand-ins for real data, used by the tests and the benchmarks alike:
colourful photos, JPEGs with an EXIF orientation, and a hand-set model whose output
clearly follows its input. Nothing here is downloaded."""
import os
import struct

import cv2
import numpy as np


def make_photo(height, width, seed=0):
    """A colourful RGB uint8 photo: smooth random colour blobs, so chroma varies."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(4, 4, 3)).astype(np.float32)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 255) \
        .astype(np.uint8)


def write_png(path, rgb):
    """RGB uint8 [H, W, 3] -> a PNG file at path (folders created); returns path."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, rgb[..., ::-1].copy()):
        raise OSError(f"cannot write {path}")
    return path


def with_exif_orientation(jpeg, orientation):
    """Inserts an APP1 EXIF segment with the given orientation tag after SOI."""
    tiff = b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 1) + \
        struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def luma_following_model(num_bins, sharpness=0.5):
    """A hand-set model whose bin follows the luma: logits_b = k (b L - b^2 / 2) with
    L = luma (n - 1), i.e. softmax over b proportional to exp(-k (b - L)^2 / 2), a
    Gaussian over the bins centred at L (the b-independent term cancels). Its output
    clearly depends on the input and on the temperature, unlike a barely trained net."""
    import keras
    luma = keras.Input((None, None, 1), name="luma")
    logits = keras.layers.Conv2D(num_bins, 1, name="logits")(luma)
    model = keras.Model(luma, logits, name="luma_following")
    b = np.arange(num_bins, dtype=np.float32)
    kernel = (sharpness * b * (num_bins - 1)).reshape(1, 1, 1, num_bins)
    model.get_layer("logits").set_weights([kernel, -sharpness * b ** 2 / 2])
    return model
