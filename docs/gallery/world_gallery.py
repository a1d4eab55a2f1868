"""docs/gallery/world/*.jpg: old photos, input | effnet_general/3 (trained on five narrow
domains) | the model trained on the wild corpus (README, "Colours of the world"), each at
its default temperature, panels about 200 px wide.

    python docs/gallery/world_gallery.py [NEW_SAVED_MODEL]

NEW_SAVED_MODEL defaults to saved_models/effnet_general (its newest version).
"""
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

import cv2  # noqa: E402

from colorize_tf.evaluation import figures  # noqa: E402
from colorize_tf.serving import inference  # noqa: E402

# Three, to keep docs/ galleries near 1 MB in all (../shared/data/SOURCES.md).
PHOTOS = ["1900sDaytonaBeach.jpg", "JerseyShore1905.jpg", "Killarney1910.jpg"]
FOLDERS = [os.path.join(REPO, "examples", "old_photos"),
           os.path.join(REPO, "..", "shared", "data", "old_photos")]
OLD = os.path.join(REPO, "saved_models", "effnet_general", "3")
PANEL_WIDTH = 200  # px


def main(argv):
    new = argv[1] if len(argv) > 1 else os.path.join(REPO, "saved_models", "effnet_general")
    colorizers = [inference.Colorizer(OLD), inference.Colorizer(new)]
    labels = ["effnet_general/3", inference.model_name(colorizers[1].path) + "/"
              + os.path.basename(colorizers[1].path)]
    out_dir = os.path.join(REPO, "docs", "gallery", "world")
    os.makedirs(out_dir, exist_ok=True)
    for name in PHOTOS:
        path = next((os.path.join(f, name) for f in FOLDERS
                     if os.path.exists(os.path.join(f, name))), None)
        if path is None:
            print(f"skipped {name}: not in examples/old_photos or ../shared/data/old_photos")
            continue
        gray = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        results = [c.colorize(gray) for c in colorizers]
        height = round(PANEL_WIDTH * gray.shape[0] / gray.shape[1])
        strip = figures.labelled_strip([gray] + results, ["input"] + [
            f"{label}, T={c.export_info.default_temperature:g}"
            for label, c in zip(labels, colorizers)], height=height)
        out = os.path.join(out_dir, os.path.splitext(name)[0] + ".jpg")
        cv2.imwrite(out, cv2.cvtColor(strip, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
        print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv)
