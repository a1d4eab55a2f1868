r"""Side-by-side gallery (input | colorized) of photos, downsized for the docs.

    python docs/make_gallery.py ../shared/data/old_photos/*.jpg --output_dir=docs/gallery
    python docs/make_gallery.py PHOTOS --output_dir=docs/gallery/compare \
        --saved_model=saved_models/colorunet_landscapes --saved_model=saved_models/colorunet_general

Each photo is colorized with the default model (or each --saved_model, side by side)
at its default temperature and written as NAME.jpg, at most --width px wide.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # noqa: E402

from colorize_tf import inference  # noqa: E402
from colorize_tf import figures  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("photos", nargs="+")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--saved_model", action="append",
                        help="SavedModel (repeat to compare; default: the shipped one)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="default: each model's own")
    parser.add_argument("--width", type=int, default=720)
    args = parser.parse_args()
    models = args.saved_model or [inference.DEFAULT_SAVED_MODEL]
    colorizers = [inference.Colorizer(m) for m in models]
    # One model: "colorized"; several: each model's name.
    names = [inference.model_name(m) for m in models] if len(models) > 1 else ["colorized"]
    os.makedirs(args.output_dir, exist_ok=True)
    for path in args.photos:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            print(f"skipped {path}: not readable")
            continue
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        results = [c.colorize(gray, temperature=args.temperature) for c in colorizers]
        labels = [f"{n}, T={args.temperature or c.export_info.default_temperature:g}"
                  for n, c in zip(names, colorizers)]
        height = max(1, round(args.width / (1 + len(models)) * gray.shape[0] / gray.shape[1]))
        strip = figures.labelled_strip([gray] + results, ["input"] + labels, height=height)
        out = os.path.join(args.output_dir, os.path.splitext(os.path.basename(path))[0] + ".jpg")
        cv2.imwrite(out, strip[..., ::-1].copy(), [cv2.IMWRITE_JPEG_QUALITY, 85])
        print(out)


if __name__ == "__main__":
    main()
