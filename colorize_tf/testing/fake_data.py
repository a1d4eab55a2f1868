"""Generated stand-ins for real data, used by the tests and the benchmarks alike:
colourful photos, JPEGs with an EXIF orientation, and a hand-set model whose output
clearly follows its input. Nothing here is downloaded."""
import os
import struct

import cv2
import keras
import numpy as np

from colorize_tf import serving_api


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
    luma = keras.Input((None, None, 1), name="luma")
    logits = keras.layers.Conv2D(num_bins, 1, name="logits")(luma)
    model = keras.Model(luma, logits, name="luma_following")
    b = np.arange(num_bins, dtype=np.float32)
    kernel = (sharpness * b * (num_bins - 1)).reshape(1, 1, 1, num_bins)
    model.get_layer("logits").set_weights([kernel, -sharpness * b ** 2 / 2])
    return model


def hint_following_model(centres, sharpness=2000.0):
    """A hand-set hints model (the inputs of model.ModelConfig.hints): where a hint is
    given, logits_k = s (2 c_k . h - |c_k|^2) = s |h|^2 - s |h - c_k|^2, so the
    softmax picks the bins nearest the hint chroma h; elsewhere all logits are 0 (the
    mean of the centres). The luma is an input with zero weight. centres: [n, 2]."""
    centres = np.asarray(centres, np.float32)
    luma = keras.Input((None, None, 1), name=serving_api.LUMA)
    hint_chroma = keras.Input((None, None, 2), name=serving_api.HINT_CHROMA)
    hint_mask = keras.Input((None, None, 1), name=serving_api.HINT_MASK)
    x = keras.layers.Concatenate(name="with_hints")([luma, hint_chroma, hint_mask])
    logits = keras.layers.Conv2D(len(centres), 1, name="logits")(x)
    model = keras.Model({serving_api.LUMA: luma, serving_api.HINT_CHROMA: hint_chroma,
                         serving_api.HINT_MASK: hint_mask}, logits, name="hint_following")
    kernel = np.concatenate([np.zeros((1, len(centres)), np.float32),
                             2.0 * sharpness * centres.T,
                             -sharpness * np.sum(centres ** 2, axis=1)[None]], axis=0)
    model.get_layer("logits").set_weights([kernel.reshape(1, 1, 4, len(centres)),
                                           np.zeros(len(centres), np.float32)])
    return model
