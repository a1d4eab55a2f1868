"""Statistics over the photos of evaluations: the PSNR spread between groups (e.g.
skin-tone groups) and how often chance alone gives a spread that large; the difference
between two evaluations of the same photos, photo by photo, and its standard error,
from the per-photo scores each evaluation writes (per_photo.csv). numpy only: the
scripts that compare evaluations do not load TensorFlow."""
import csv
import io
import os

import numpy as np

from colorize_tf import safe_write


CHANCE_SHUFFLES = 2000  # permutations behind a group spread's chance figures


def group_spreads(scores, shuffles=CHANCE_SHUFFLES, seed=0):
    """Per kind of group, the gap between the best and the worst group's mean score, and
    how large that gap is by chance alone.

    scores: {"race: Black": [per-photo PSNR dB, ...], ...}; the text before ": " is the
    kind (groups of one kind are disjoint: one race per photo). -> {"race": {"spread",
    "best", "worst", "chance_median", "chance_95", "p_value", "shuffles"}} for each kind
    with at least two groups. The chance figures are a permutation test: the kind's
    photos dealt out again at random to groups of the same sizes, shuffles times (the
    means of groups that are served equally well still differ on a finite test set;
    these say by how much). p_value: the share of shuffles with a gap at least the
    observed one, (1 + count) / (1 + shuffles) (Phipson and Smyth 2010: never 0).
    """
    kinds = {}
    for name, values in scores.items():
        if len(values):
            kind = name.partition(": ")[0] if ": " in name else "group"
            kinds.setdefault(kind, []).append((name, np.asarray(values, np.float64)))
    rng = np.random.default_rng(seed)
    out = {}
    for kind, groups in sorted(kinds.items()):
        if len(groups) < 2:
            continue
        means = {name: float(values.mean()) for name, values in groups}
        best, worst = max(means, key=means.get), min(means, key=means.get)
        spread = means[best] - means[worst]
        pooled = np.concatenate([values for _, values in groups])
        sizes = np.array([len(values) for _, values in groups])
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        chance = []  # the gap of each shuffle; dealt in chunks of ~8M values (64 MB)
        per_chunk = max(1, 8_000_000 // len(pooled))
        for done in range(0, shuffles, per_chunk):
            dealt = rng.permuted(np.broadcast_to(
                pooled, (min(per_chunk, shuffles - done), len(pooled))), axis=1)
            chance_means = np.add.reduceat(dealt, starts, axis=1) / sizes  # [n, groups]
            chance.append(chance_means.max(axis=1) - chance_means.min(axis=1))
        chance = np.concatenate(chance)
        # A shuffle that reproduces the observed grouping gives the same gap up to
        # float summation order: 1e-9 dB keeps it counted as "at least as large".
        count = int(np.sum(chance >= spread - 1e-9))
        out[kind] = {"spread": spread, "best": best, "worst": worst,
                     "chance_median": float(np.median(chance)),
                     "chance_95": float(np.percentile(chance, 95)),
                     "p_value": (1 + count) / (1 + shuffles), "shuffles": shuffles}
    return out


PER_PHOTO_NAME = "per_photo.csv"
PER_PHOTO_SCORES = ("psnr", "ssim", "mse_ab", "colourfulness", "colour_cast", "recognised")


def write_per_photo(path, rows):
    """rows: scoring.Totals.per_photo_rows() -> a CSV, one line per photo and method
    (file, method, then PER_PHOTO_SCORES; recognised empty without a judge): what two
    evaluations of the same photos are compared by, photo by photo (read_per_photo,
    paired_difference)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, ["file", "method", *PER_PHOTO_SCORES], restval="",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    safe_write.write_bytes(path, text.getvalue().encode())


def read_per_photo(path):
    """An evaluation's per_photo.csv (or its output folder) -> {method: {file: {score:
    float}}}; empty scores left out. A file named twice under one method (two names
    that differ only in bytes that are not UTF-8 print alike) is left out of that
    method: it cannot be paired."""
    if os.path.isdir(path):
        path = os.path.join(path, PER_PHOTO_NAME)
    out, twice = {}, set()
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            method, file = row.pop("method"), row.pop("file")
            scores = {k: float(v) for k, v in row.items() if v not in ("", None)}
            if file in out.setdefault(method, {}):
                twice.add((method, file))
            out[method][file] = scores
    for method, file in twice:
        del out[method][file]
    return out


def paired_difference(a, b):
    """The mean of a - b over photos scored by both, and its standard error.

    a, b: {file: value} (e.g. each photo's PSNR under two models). -> {"mean",
    "standard_error", "n"} over the files in both: the differences' mean and their
    sample standard deviation (n - 1) over sqrt(n), NaN below two photos. Pairing
    removes what the photos share (a hard photo is hard for both), so the error is
    that of the difference, far smaller than either mean's on photos this varied."""
    files = sorted(set(a) & set(b))
    d = np.array([a[f] - b[f] for f in files], np.float64)
    n = len(d)
    return {"mean": float(d.mean()) if n else float("nan"),
            "standard_error": float(d.std(ddof=1) / np.sqrt(n)) if n >= 2 else float("nan"),
            "n": n}
