r"""Side-by-side gallery (input | colorized) of photos, downsized for the docs.

    python docs/make_gallery.py ../shared/data/old_photos/*.jpg --output_dir=docs/gallery
    python docs/make_gallery.py PHOTOS --output_dir=docs/gallery/compare \
        --saved_model=saved_models/colorunet_landscapes --saved_model=saved_models/colorunet_general

    python docs/make_gallery.py PHOTOS --output_dir=docs/gallery/hints \
        --saved_model=saved_models/colorunet_landscapes_hints --hints=docs/gallery/hints.json

Each photo is colorized with the default model (or each --saved_model, side by side)
at its default temperature and written as NAME.jpg, at most --width px wide. With
--hints (a colorize --hints file; a hints model), each photo with hints also gets a
column colorized with them, the hints drawn as dots of their colour.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # noqa: E402

from colorize_tf import colorize  # noqa: E402
from colorize_tf.evaluation import figures  # noqa: E402
from colorize_tf.serving import inference  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("photos", nargs="+")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--saved_model", action="append",
                        help="SavedModel (repeat to compare; default: the shipped one)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="default: each model's own")
    parser.add_argument("--width", type=int, default=720)
    parser.add_argument("--hints", help="a colorize --hints JSON file")
    args = parser.parse_args()
    hints = colorize.read_hints(args.hints) if args.hints else {}
    models = args.saved_model or [inference.default_saved_model()]
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
        photo_hints = colorize.hints_of(path, hints)
        if photo_hints:
            hinted = colorizers[0].colorize(gray, temperature=args.temperature,
                                            hints=photo_hints)
            results.append(_with_dots(hinted, photo_hints))
            labels.append(f"{len(photo_hints)} hints")
        height = max(1, round(args.width / (1 + len(results)) * gray.shape[0] / gray.shape[1]))
        strip = figures.labelled_strip([gray] + results, ["input"] + labels, height=height)
        out = os.path.join(args.output_dir, os.path.splitext(os.path.basename(path))[0] + ".jpg")
        cv2.imwrite(out, strip[..., ::-1].copy(), [cv2.IMWRITE_JPEG_QUALITY, 85])
        print(out)


def _with_dots(rgb, hints):
    """rgb with each hint drawn as a ring of its colour in a white ring, hollow so that
    the colour it gave shows inside."""
    out = rgb.copy()
    radius = max(4, round(0.03 * max(rgb.shape[:2])))
    thickness = max(2, radius // 4)
    for hint in hints:
        centre = (round(hint["point"][1] * (rgb.shape[1] - 1)),
                  round(hint["point"][0] * (rgb.shape[0] - 1)))
        cv2.circle(out, centre, radius + thickness, (255, 255, 255), thickness, cv2.LINE_AA)
        cv2.circle(out, centre, radius, tuple(int(v) for v in hint["color"]), thickness,
                   cv2.LINE_AA)
    return out


if __name__ == "__main__":
    main()
