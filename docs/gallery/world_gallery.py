"""docs/gallery/world/*.jpg: old photos, input | effnet_general/3 (trained on five narrow
domains) | the model trained on the wild corpus (README, "Photos from anywhere"), each at
its default temperature, panels about 200 px wide.

    python docs/gallery/world_gallery.py [NEW_SAVED_MODEL]

NEW_SAVED_MODEL defaults to saved_models/effnet_general (its newest version).
"""
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from colorize_tf.serving import inference  # noqa: E402
from effnet_gallery import write_strips  # noqa: E402 (beside this file)

# Three, to keep docs/ galleries near 1 MB in all (../shared/data/SOURCES.md).
PHOTOS = ["1900sDaytonaBeach.jpg", "JerseyShore1905.jpg", "Killarney1910.jpg"]
OLD = os.path.join(REPO, "saved_models", "effnet_general", "3")
PANEL_WIDTH = 200  # px


def main(argv):
    new = argv[1] if len(argv) > 1 else os.path.join(REPO, "saved_models", "effnet_general")
    colorizers = [inference.Colorizer(OLD), inference.Colorizer(new)]
    labels = ["effnet_general/3", inference.model_name(colorizers[1].path) + "/"
              + os.path.basename(colorizers[1].path)]
    write_strips(PHOTOS, colorizers, labels, os.path.join(REPO, "docs", "gallery", "world"),
                 PANEL_WIDTH)


if __name__ == "__main__":
    main(sys.argv)
