r"""Data prep throughput vs its limit, measured in the same run.

    python bench/build_records.py [--images=1200] [--frame_size=128]

The limit is bare decode (OpenCV) + antialiased Lanczos resize (the same TF op) of
the same files, per process. Full data prep adds the gray check, PNG encoding,
histogram counting and writing. Goal: >= 90% of the limit per worker and
near-linear in workers. Uses ../shared/data/landscapes/train.
"""
import argparse
import glob
import multiprocessing
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench import common  # noqa: E402


def _decode_resize(paths, frame_size):
    import cv2
    import numpy as np
    from data_prep import prepare
    for path in paths:
        image = cv2.imread(path, cv2.IMREAD_COLOR)[..., ::-1]
        h, w = prepare.fitted_size(image.shape[0], image.shape[1], frame_size)
        if (h, w) != image.shape[:2]:
            prepare.lanczos_resize(np.ascontiguousarray(image), (h, w))
    return len(paths)


def _limit_rate(paths, frame_size, workers):
    chunks = [paths[i::workers] for i in range(workers)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers) as pool:
        pool.starmap(_decode_resize, [(c[:20], frame_size) for c in chunks])  # warm up TF
        import time
        start = time.perf_counter()
        pool.starmap(_decode_resize, [(c, frame_size) for c in chunks])
        return len(paths) / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=1200)
    parser.add_argument("--frame_size", type=int, default=128)
    args = parser.parse_args()
    paths = sorted(glob.glob(os.path.join(common.LANDSCAPES, "*", "*.jpg")))[:args.images]
    if not paths:
        sys.exit(f"no photos under {common.LANDSCAPES}")
    from data_prep import build_records
    from data_prep import prepare
    sources = [build_records.Source(os.path.relpath(p, common.LANDSCAPES), p) for p in paths]
    config = prepare.PrepConfig(frame_size=args.frame_size)
    print(f"{len(paths)} landscape photos, frame {args.frame_size}")
    for workers in (1, 2):
        limit = _limit_rate(paths, args.frame_size, workers)
        with tempfile.TemporaryDirectory() as out:
            report = build_records.build_records(sources, out, config, workers=workers,
                                                 log=lambda *_: None)
        common.line(f"build_records, {workers} worker(s)", report.photos_per_second,
                    "photos/s", "decode+resize", limit)


if __name__ == "__main__":
    main()
