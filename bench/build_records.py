r"""Data prep throughput vs its limit, measured in the same run.

    python bench/build_records.py [--images=1200] [--frame_size=128] [--rounds=3]

The limit, per core: bare decode (OpenCV) + antialiased Lanczos (data prep's own,
prepare.lanczos_resize) + PNG encoding at data prep's level of the same files, in one
worker process as data prep starts them (processes.worker_pool: one thread for OpenCV
and BLAS, prepare.tune_malloc). Full data prep adds hashing, the gray check, the
chroma histogram, making the examples and writing the shards, and counts its
start-up; its per-photo work alone (prepare.prepare_chunk in the same kind of process,
nothing else) and the limit in two processes at once (the slower one's rate) are
timed too: what bounds the per-worker ratio. Goals (issue 13): 2 workers >= 1.7x of
1 worker, and each worker >= 0.8 of the per-core limit. Uses
../shared/data/landscapes/train.
"""
import argparse
import glob
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench import common  # noqa: E402


def _decode_resize_encode(paths, frame_size, png_compression):
    """-> seconds to decode, fit (Lanczos) and PNG-encode each photo of paths."""
    import cv2
    import numpy as np
    from data_prep import prepare
    start = time.perf_counter()
    for path in paths:
        image = cv2.imread(path, cv2.IMREAD_COLOR)[..., ::-1]
        frame, _ = prepare.fit_into_frame(np.ascontiguousarray(image), frame_size)
        cv2.imencode(".png", np.ascontiguousarray(frame[..., ::-1]),
                     [cv2.IMWRITE_PNG_COMPRESSION, png_compression])
    return time.perf_counter() - start


def _prepare_all(sources, config):
    """-> seconds of data prep's own per-photo work (prepare.prepare_chunk: read, decode,
    fit, gray check, chroma cells and histogram, PNG, the example) on every source."""
    from data_prep import prepare
    start = time.perf_counter()
    prepare.prepare_chunk(([(source, True, 0) for source in sources], config))
    return time.perf_counter() - start


def per_core_rates(paths, sources, config):
    """(limit, limit in each of 2 processes at once, per-photo work) photos/s:
    _decode_resize_encode and _prepare_all in single-threaded worker processes, as
    data prep starts them."""
    from data_prep import processes
    args = (config.frame_size, config.png_compression)
    with processes.worker_pool(1) as pool:
        limit = pool.apply(_decode_resize_encode, (paths, *args))
        work = pool.apply(_prepare_all, (sources, config))
    with processes.worker_pool(2) as pool:
        pool.starmap(_decode_resize_encode, [(paths[:20], *args)] * 2)  # both warm
        halves = pool.starmap(_decode_resize_encode, [(paths[i::2], *args) for i in (0, 1)])
    return len(paths) / limit, len(paths) / 2 / max(halves), len(paths) / work


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=1200)
    parser.add_argument("--frame_size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    paths = sorted(glob.glob(os.path.join(common.LANDSCAPES, "*", "*.jpg")))[:args.images]
    if not paths:
        sys.exit(f"no photos under {common.LANDSCAPES}")
    from data_prep import builder
    from data_prep import prepare
    prepare.tune_malloc()  # as the entry point does with --workers=1 (run here)
    sources = [builder.Source(os.path.relpath(p, common.LANDSCAPES), p) for p in paths]
    config = prepare.PrepConfig(frame_size=args.frame_size)
    print(f"{len(paths)} landscape photos, frame {args.frame_size}, PNG level "
          f"{config.png_compression}", flush=True)
    # Three rounds, each measuring the limit and both builds back to back, so that all
    # three meet the same machine; the medians are compared (one round's limit moved
    # by up to 15% from run to run).
    limits, pairs, works, rates = [], [], [], {1: [], 2: []}
    for round_ in range(args.rounds):
        limit, pair, work = per_core_rates(paths, sources, config)
        limits.append(limit)
        pairs.append(pair)
        works.append(work)
        for workers in (1, 2):
            with tempfile.TemporaryDirectory() as out:
                start = time.perf_counter()
                builder.build_records(sources, out, config, workers=workers,
                                      log=lambda *_: None)
                rates[workers].append(len(paths) / (time.perf_counter() - start))
        print(f"round {round_ + 1}: limit {limits[-1]:.1f}, 1 worker {rates[1][-1]:.1f}, "
              f"2 workers {rates[2][-1]:.1f} photos/s", flush=True)
    limit = statistics.median(limits)
    rate = {workers: statistics.median(r) for workers, r in rates.items()}
    common.line("limit: decode+Lanczos+PNG, 1 core (median)", limit, "photos/s")
    # What bounds the per-worker ratio: two processes at once share the machine (memory,
    # caches, clocks), and the per-photo work alone has no start-up, hashing, shard
    # writing or results to hand over: a build's per-worker ratio is below both.
    common.line("limit, each of 2 processes at once (median)", statistics.median(pairs),
                "photos/s", "limit", limit)
    common.line("per-photo work alone, 1 core (median)", statistics.median(works),
                "photos/s", "limit", limit)
    for workers in (1, 2):
        common.line(f"build_records, {workers} worker(s), start-up included (median)",
                    rate[workers], "photos/s", f"{workers} x limit", workers * limit)
    print(f"2 workers / 1 worker: {rate[2] / rate[1]:.2f}x (goal >= 1.7x); per worker "
          f"{rate[2] / 2 / limit:.2f} of the per-core limit (goal >= 0.8)", flush=True)

if __name__ == "__main__":
    main()
