r"""sha256 of what every shipped model makes of the example photos: the check that a
change meant to leave behaviour alone (a refactor, a re-export) did.

    python bench/example_hashes.py > before.txt   # on the old code
    python bench/example_hashes.py > after.txt    # on the new code
    diff before.txt after.txt                     # no output: the same PNGs

Each photo of examples/ (old_photos and kodak) goes through colorize_bytes of each
shipped model version (saved_models/*/N) at its default temperature; the hints model
gets two fixed hints. One line per (model, photo): the sha256 of the colorized PNG and
of the confidence PNG.
"""
import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench import common  # noqa: E402

HINTS = [{"point": (0.3, 0.4), "color": (200, 60, 40)},
         {"point": (0.7, 0.6), "color": (40, 90, 200)}]


def main():
    from colorize_tf.serving import inference
    examples = os.path.join(common.REPO, "examples")
    photos = [os.path.join(examples, folder, name) for folder in ("old_photos", "kodak")
              for name in sorted(os.listdir(os.path.join(examples, folder)))]
    models = os.path.join(common.REPO, "saved_models")
    families = [f for f in sorted(os.listdir(models)) if os.path.isdir(os.path.join(models, f))]
    for family in families:
        for version in sorted((v for v in os.listdir(os.path.join(models, family))
                               if v.isdigit()), key=int):
            colorizer = inference.Colorizer(os.path.join(models, family, version))
            for path in photos:
                with open(path, "rb") as f:
                    data = f.read()
                hints = [HINTS] if colorizer.takes_hints else None
                (colorized, confidence), = colorizer.colorize_bytes([data], hints=hints)
                print(f"{family}/{version} {os.path.relpath(path, examples)} "
                      f"{hashlib.sha256(colorized).hexdigest()[:24]} "
                      f"{hashlib.sha256(confidence).hexdigest()[:24]}", flush=True)


if __name__ == "__main__":
    main()
