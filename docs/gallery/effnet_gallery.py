"""docs/gallery/effnet/*.jpg: old photos with people, input | colorunet_general |
effnet_general (the shipped versions, each at its default temperature), panels about
240 px wide.

    python docs/gallery/effnet_gallery.py
"""
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

import cv2  # noqa: E402

from colorize_tf.evaluation import figures  # noqa: E402
from colorize_tf.serving import inference  # noqa: E402

PHOTOS = ["Killarney1910.jpg", "1900sDaytonaBeach.png", "JerseyShore1905.jpg",
          "OregonTrail1870s.jpg", "1890CliffHouseSF.jpg", "Scotland1919.jpg"]
FOLDERS = [os.path.join(REPO, "examples", "old_photos"),
           os.path.join(REPO, "..", "shared", "data", "old_photos")]
MODELS = ["colorunet_general", "effnet_general"]
PANEL_WIDTH = 240  # px


def write_strips(photos, colorizers, labels, out_dir, panel_width=PANEL_WIDTH):
    """For each old photo name found in FOLDERS: input | each colorizer's result (at its
    default temperature, labelled "LABEL, T=..."), panels panel_width px wide, as
    out_dir/STEM.jpg (world_gallery.py uses it too)."""
    os.makedirs(out_dir, exist_ok=True)
    for name in photos:
        path = next((os.path.join(f, name) for f in FOLDERS
                     if os.path.exists(os.path.join(f, name))), None)
        if path is None:
            print(f"skipped {name}: not in examples/old_photos or ../shared/data/old_photos")
            continue
        gray = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        results = [c.colorize(gray) for c in colorizers]
        height = round(panel_width * gray.shape[0] / gray.shape[1])
        strip = figures.labelled_strip([gray] + results, ["input"] + [
            f"{label}, T={c.export_info.default_temperature:g}"
            for label, c in zip(labels, colorizers)], height=height)
        out = os.path.join(out_dir, os.path.splitext(name)[0] + ".jpg")
        cv2.imwrite(out, cv2.cvtColor(strip, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
        print(f"wrote {out}")


def main():
    write_strips(PHOTOS, [inference.Colorizer(name) for name in MODELS], MODELS,
                 os.path.join(REPO, "docs", "gallery", "effnet"))


if __name__ == "__main__":
    main()
