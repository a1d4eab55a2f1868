"""docs/gallery/guided_upsampling.jpg: a full-size crop of an old photo, bilinear chroma
upsampling (left) | guided (right), from the default model's weights exported both ways.

    python docs/gallery/guided_figure.py
"""
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from colorize_tf.serving import inference  # noqa: E402
from colorize_tf.training import exporter  # noqa: E402

PHOTO = os.path.join(REPO, "examples", "old_photos", "JerseyShore1905.jpg")
CROP = (slice(430, 692), slice(190, 500))  # rows, columns: umbrellas and white dresses


def main():
    photo = cv2.imread(PHOTO)[..., ::-1].copy()
    shipped = os.path.join(REPO, "saved_models", "effnet_general")
    crops = []
    with tempfile.TemporaryDirectory() as tmp:
        for radius in (0, None):  # bilinear, then the shipped export's own
            path = shipped if radius is None else exporter.export_from_saved_model(
                shipped, os.path.join(tmp, "bilinear"), guided_radius=radius)
            rgb = inference.Colorizer(path).colorize(photo)
            crops.append(rgb[CROP][..., ::-1])
    gap = np.full((crops[0].shape[0], 6, 3), 255, np.uint8)
    figure = cv2.resize(np.concatenate([crops[0], gap, crops[1]], 1), None, fx=1.5, fy=1.5,
                        interpolation=cv2.INTER_CUBIC)
    out = os.path.join(REPO, "docs", "gallery", "guided_upsampling.jpg")
    cv2.imwrite(out, figure, [cv2.IMWRITE_JPEG_QUALITY, 80])
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
