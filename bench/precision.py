r"""bfloat16 against float32 inference on this CPU, in the same run: the rate and the
PSNR of the shipped model's results on real test photos.

    python bench/precision.py [--photos=120] [--saved_model=saved_models/colorunet_general]

Each precision runs in a process of its own (the choice is process-wide and made
before any graph runs, serving/precision.py): the `colorize_luma` signature on batches of 4
lumas of 256 px, and `serving_default` on an even spread of general/test and
landscapes/test photos, each result's PSNR against its colour original (numpy).
Goal (issue 12): bfloat16 is offered only if its mean PSNR is within 0.1 dB of float32.
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench import common  # noqa: E402

TEST_DIRS = [os.path.join(common.SHARED_DATA, "general", "test", d)
             for d in ("faces", "objects", "clothing", "street")] + [
    os.path.join(common.SHARED_DATA, "landscapes", "test")]


def photo_list(count):
    """An even spread of count photos over TEST_DIRS (sorted, every k-th)."""
    per_dir = max(1, count // len(TEST_DIRS))
    chosen = []
    for folder in TEST_DIRS:
        files = sorted(os.path.join(root, name) for root, _, names in os.walk(folder)
                       for name in names)
        chosen += files[::max(1, len(files) // per_dir)][:per_dir]
    return chosen


def measure(precision, saved_model, photos):
    """In this process: -> {"precision", "model_rate", "photo_rate", "psnr"}."""
    import numpy as np
    import tensorflow as tf

    from colorize_tf.serving.precision import use
    use(precision)  # process-wide: before any graph runs
    signatures = tf.saved_model.load(saved_model).signatures
    luma = tf.random.uniform([4, 256, 256, 1], seed=1)
    colorize_luma = signatures["colorize_luma"]
    model_rate = common.rate(lambda: [colorize_luma(luma=luma, temperature=tf.constant(
        [0.7]))["chroma"].numpy() for _ in range(3)], 12)
    serve = signatures["serving_default"]
    psnrs, seconds = [], 0.0
    for path in photos:
        data = open(path, "rb").read()
        truth = tf.io.decode_image(data, channels=3, expand_animations=False).numpy()
        start = time.perf_counter()
        png = serve(image_bytes=tf.constant([data]), temperature=tf.constant([0.7]))[
            "colorized_png_bytes"][0].numpy()
        seconds += time.perf_counter() - start
        result = tf.io.decode_png(png, channels=3).numpy()
        mse = np.mean((result.astype(np.float64) - truth) ** 2)
        psnrs.append(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))
    return {"precision": precision, "model_rate": model_rate,
            "photo_rate": len(photos) / seconds, "psnr": float(np.mean(psnrs))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=120)
    parser.add_argument("--saved_model", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from colorize_tf.serving import inference
    from colorize_tf.serving.precision import BFLOAT16, FLOAT32, cpu_bfloat16_flags
    saved_model = inference.resolve_saved_model(args.saved_model or
                                                inference.default_saved_model())
    photos = photo_list(args.photos)
    if args.child:
        print(json.dumps(measure(args.child, saved_model, photos)))
        return
    flags = cpu_bfloat16_flags()
    if not flags:
        print("this CPU has no native bfloat16: nothing to compare")
        return
    print(f"{saved_model}, {len(photos)} test photos; CPU flags {', '.join(flags)}",
          flush=True)
    results = {}
    for precision in (FLOAT32, BFLOAT16):
        out = subprocess.run([sys.executable, __file__, f"--photos={args.photos}",
                              f"--saved_model={saved_model}", f"--child={precision}"],
                             capture_output=True, text=True, check=True).stdout
        results[precision] = json.loads(out.strip().splitlines()[-1])
    fp32, bf16 = results[FLOAT32], results[BFLOAT16]
    common.line("bfloat16 colorize_luma, batch 4 of 256 px", bf16["model_rate"], "images/s",
                "float32", fp32["model_rate"])
    common.line("bfloat16 serving_default, test photos", bf16["photo_rate"], "photos/s",
                "float32", fp32["photo_rate"])
    difference = bf16["psnr"] - fp32["psnr"]
    print(f"PSNR: float32 {fp32['psnr']:.3f} dB, bfloat16 {bf16['psnr']:.3f} dB, "
          f"difference {difference:+.3f} dB (goal: within 0.1 dB)", flush=True)


if __name__ == "__main__":
    main()
