"""The colour discretizer: chroma grid, counting, top-n bins, lookup table, weights.

A grid of equal square cells covers the chroma plane (UV or ab). Over the training
set we count the pixels per cell, keep the n most frequent cells as the bins
(ColorUNet, n = 32 for YUV; Zhang et al. keep every in-gamut ab cell, 313 for step
10), and map every grid cell to its nearest kept bin, so a chroma -> bin lookup is
one gather (the grid and the counting: grid.py). A bin's colour (its centre)
is the mean chroma of the training pixels that fell in it. Rebalancing weights follow
Zhang et al. eq. 4: w ~ ((1 - lambda) P + lambda / n)^-1, scaled so that sum_b P(b) w_b = 1.

The fitted bins are one small JSON artifact (`bins.json`) with a fingerprint that
training and export use to check that records, bins and models belong together.
"""
import dataclasses
import hashlib
import json
import math
import os

import numpy as np
import tensorflow as tf

# The grid and its histogram are numpy (data prep's workers do without TF); their names
# are part of the discretizer's.
from colorize_tf import errors
from colorize_tf.chroma.grid import (  # noqa: F401
    DEFAULT_GRIDS, ChromaHistogram, Grid, channel_grid)

BINS_NAME = "bins.json"
ARTIFACT_VERSION = 1
DEFAULT_NUM_BINS = 32  # ColorUNet paper, YUV
DEFAULT_REBALANCE_LAMBDA = 0.2  # ColorUNet code; Zhang et al. use 0.5
DEFAULT_SOFT_K = 5  # Zhang et al. 2016, section 3.1


def default_soft_sigma(grid):
    """Half a cell: Zhang's sigma = 5 for Lab cells of 10; the same ratio for YUV."""
    return 0.5 * float(np.mean(grid.cell_size))


def channel_index(chroma, grid):
    """chroma [..., 2] -> int32 [..., 2]: each channel's own bin (clamped to the edge)."""
    chroma = tf.convert_to_tensor(chroma, tf.float32)
    ij = tf.cast(tf.floor((chroma - tf.constant(grid.low, tf.float32)) /
                          tf.constant(grid.cell_size, tf.float32)), tf.int32)
    return tf.clip_by_value(ij, 0, tf.constant(grid.cells, tf.int32) - 1)


def cell_index(chroma, grid):
    """chroma [..., 2] -> int32 grid cell index [...]; values off the grid clamp to the edge.

    Works on tf tensors and numpy arrays (returns a tf tensor); Grid.cells_of is its
    numpy twin.
    """
    ij = channel_index(chroma, grid)
    return ij[..., 0] * grid.cells[1] + ij[..., 1]


@dataclasses.dataclass(frozen=True)
class Bins:
    """The n kept chroma bins of a training set, most frequent first.

    kept_cells[b]: grid cell of bin b; centres[b]: its mean chroma; counts[b]:
    training pixels in it; cell_to_bin[c]: the bin that grid cell c maps to.
    """
    grid: Grid
    kept_cells: tuple
    centres: tuple
    counts: tuple
    cell_to_bin: tuple
    rebalance_lambda: float

    @property
    def num_bins(self):
        return len(self.kept_cells)

    @property
    def prior(self):
        """P(b), [n] float64, sums to 1."""
        counts = np.asarray(self.counts, np.float64)
        return counts / counts.sum()

    @property
    def weights(self):
        """Rebalancing weights [n]: ((1 - lambda) P + lambda / n)^-1 with sum P w = 1."""
        prior = self.prior
        lam = self.rebalance_lambda
        weights = 1.0 / ((1.0 - lam) * prior + lam / self.num_bins)
        return weights / np.sum(prior * weights)

    @property
    def fingerprint(self):
        """sha256 over everything that defines the classes and their weights."""
        identity = self._identity()
        identity["centres"] = [[round(v, 6) for v in c] for c in identity["centres"]]
        return hashlib.sha256(_canonical_json(identity).encode()).hexdigest()[:16]

    def _identity(self):
        return {
            "grid": dataclasses.asdict(self.grid),
            "kept_cells": list(self.kept_cells),
            "centres": [[float(v) for v in c] for c in self.centres],
            "counts": [float(c) for c in self.counts],
            "rebalance_lambda": float(self.rebalance_lambda),
        }

    def to_dict(self):
        return {
            "version": ARTIFACT_VERSION,
            "fingerprint": self.fingerprint,
            "color_space": self.grid.color_space,
            "num_bins": self.num_bins,
            **self._identity(),
            "cell_to_bin": list(self.cell_to_bin),
            "prior": self.prior.tolist(),
            "weights": self.weights.tolist(),
        }

    @classmethod
    def from_dict(cls, data):
        """The Bins of a bins.json's content; ValueError (one line, saying which field)
        where it is not one: another structure, a field of the wrong type or length,
        a fingerprint that does not match, or a cell_to_bin table that is not the one
        its bins give (each cell to the nearest centre, a kept cell to its own bin)."""
        if not isinstance(data, dict):
            raise errors.Error(f"a bins artifact is a JSON object, not "
                               f"{type(data).__name__}")
        if data.get("version") != ARTIFACT_VERSION:
            raise errors.Error(f"bins artifact version {data.get('version')!r} is not "
                               f"{ARTIFACT_VERSION}; rebuild it with data_prep.build_records")
        try:
            g = data["grid"]
            grid = Grid(str(g["color_space"]), _numbers(g["low"], 2, "grid.low"),
                        _numbers(g["high"], 2, "grid.high"),
                        _numbers(g["cells"], 2, "grid.cells", int))
            kept = _numbers(data["kept_cells"], None, "kept_cells", int)
            bins = cls(grid=grid, kept_cells=kept,
                       centres=tuple(_numbers(c, 2, "centres") for c in
                                     _sequence(data["centres"], len(kept), "centres")),
                       counts=_numbers(data["counts"], len(kept), "counts"),
                       cell_to_bin=_numbers(data["cell_to_bin"], grid.num_cells,
                                            "cell_to_bin", int),
                       rebalance_lambda=float(data["rebalance_lambda"]))
        except (KeyError, TypeError) as e:
            raise errors.Error(f"bins artifact is missing or mistypes {e}") from None
        if not kept or min(kept) < 0 or max(kept) >= grid.num_cells:
            raise errors.Error(f"bins artifact's kept_cells must be {grid.num_cells} grid "
                               f"cells' indices")
        if bins.fingerprint != data.get("fingerprint"):
            raise errors.Error("bins artifact fingerprint does not match its content "
                               "(edited by hand or corrupted)")
        if bins.cell_to_bin != nearest_bin_table(grid, kept, bins.centres):
            raise errors.Error("bins artifact's cell_to_bin is not the table its bins give "
                               "(edited by hand or corrupted)")
        return bins

    def save(self, path):
        """Writes the JSON artifact atomically (temp file, then rename)."""
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(self.to_dict(), f, indent=1)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path):
        if os.path.isdir(path):
            path = os.path.join(path, BINS_NAME)
        with open(path) as f:
            return cls.from_dict(json.load(f))


def _sequence(value, length, name):
    if not isinstance(value, (list, tuple)) or (length is not None and len(value) != length):
        raise errors.Error(f"bins artifact's {name} must be a list"
                           f"{'' if length is None else f' of {length}'}")
    return value


def _numbers(value, length, name, kind=float):
    """value as a tuple of numbers of kind; ValueError naming the field otherwise."""
    items = _sequence(value, length, name)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
               and (kind is float or float(v).is_integer()) for v in items):
        raise errors.Error(f"bins artifact's {name} must hold finite "
                           f"{'integers' if kind is int else 'numbers'}")
    return tuple(kind(v) for v in items)


def nearest_bin_table(grid, kept_cells, centres):
    """cell_to_bin: every grid cell -> the bin whose centre is nearest to the cell's
    centre (the first on a tie), a kept cell -> its own bin. -> tuple of num_cells ints."""
    centres = np.asarray(centres, np.float64)
    distances = np.sum((grid.cell_centres()[:, None, :] - centres[None, :, :]) ** 2, axis=-1)
    table = np.argmin(distances, axis=1)
    table[list(kept_cells)] = np.arange(len(kept_cells))
    return tuple(int(b) for b in table)


def _canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def fit_bins(histogram, num_bins=DEFAULT_NUM_BINS, rebalance_lambda=DEFAULT_REBALANCE_LAMBDA):
    """Keeps the num_bins most frequent occupied cells (0: all occupied) -> Bins."""
    if not 0.0 <= rebalance_lambda <= 1.0:
        raise errors.Error(f"rebalance_lambda must be in [0, 1], got {rebalance_lambda}")
    counts = histogram.counts
    occupied = int(np.count_nonzero(counts))
    if occupied == 0:
        raise errors.Error("the chroma histogram is empty: no training pixels were counted")
    keep = occupied if num_bins <= 0 else min(num_bins, occupied)
    order = np.argsort(-counts, kind="stable")[:keep]
    centres = tuple((float(a), float(b)) for a, b in histogram.sums[order] / counts[order, None])
    return Bins(grid=histogram.grid,
                kept_cells=tuple(int(c) for c in order),
                centres=centres,
                counts=tuple(float(c) for c in counts[order]),
                cell_to_bin=nearest_bin_table(histogram.grid, order, centres),
                rebalance_lambda=float(rebalance_lambda))


def recount_bins(histogram, earlier, rebalance_lambda=DEFAULT_REBALANCE_LAMBDA):
    """The classes of an earlier Bins (its cells, centres and cell lookup, in its order),
    counted again on histogram -> Bins.

    For new photos that must keep a model's classes (a fine-tuning warm-started from it):
    every pixel counts for the bin its cell maps to, so colours the earlier photos never
    had count for their nearest bin, as training will encode them. A bin these photos
    never reach counts 0 (its weight is then the largest, n / lambda).
    """
    if histogram.grid != earlier.grid:
        raise errors.Error(f"the earlier bins are over another grid ({earlier.grid}) than "
                           f"these photos' ({histogram.grid})")
    if not 0.0 <= rebalance_lambda <= 1.0:
        raise errors.Error(f"rebalance_lambda must be in [0, 1], got {rebalance_lambda}")
    if not np.any(histogram.counts):
        raise errors.Error("the chroma histogram is empty: no training pixels were counted")
    counts = np.bincount(np.asarray(earlier.cell_to_bin), weights=histogram.counts,
                         minlength=earlier.num_bins)
    if rebalance_lambda == 0.0 and not np.all(counts):
        raise errors.Error(f"{int(np.sum(counts == 0))} of the earlier bins hold no pixel of "
                           "these photos: their weight with rebalance_lambda 0 is infinite")
    return dataclasses.replace(earlier, counts=tuple(float(c) for c in counts),
                               rebalance_lambda=float(rebalance_lambda))


def encode_hard(chroma, bins):
    """chroma [..., 2] -> int32 bin index [...] through the cell lookup table (a gather)."""
    table = tf.constant(bins.cell_to_bin, tf.int32)
    return tf.gather(table, cell_index(chroma, bins.grid))


def bin_weights(bin_index, bins):
    """int bin index [...] -> float32 rebalancing weight [...]."""
    return tf.gather(tf.constant(bins.weights, tf.float32), bin_index)


def bin_centres(bins):
    """[n, 2] float32 constant of the bins' mean chroma."""
    return tf.constant(bins.centres, tf.float32)


def soft_candidates(bins, k=DEFAULT_SOFT_K):
    """int32 [num_cells, m]: per grid cell, every bin that can be among the k nearest
    bin centres of a chroma inside that cell, padded with num_bins (no bin).

    Exact by a bound: for x in cell R, d(x, b) <= maxdist(R, b), so x's k-th nearest
    centre is within D = the k-th smallest maxdist(R, .), and a bin with
    mindist(R, b) > D cannot be among the k nearest. Each cell keeps ~20 of Zhang's
    313 bins. Every sRGB colour lies inside the default grids; a chroma off the grid
    gets the k nearest among the candidates of the edge cell it is clamped to.
    """
    grid = bins.grid
    size = np.array(grid.cell_size)
    margin = 1e-3 * size  # float32 rounding at a cell's edge
    low = grid.cell_centres() - size / 2 - margin  # [cells, 2]
    high = grid.cell_centres() + size / 2 + margin
    centres = np.asarray(bins.centres, np.float64)[None]  # [1, n, 2]
    gap = np.maximum(np.maximum(low[:, None] - centres, centres - high[:, None]), 0)
    far = np.maximum(np.abs(centres - low[:, None]), np.abs(high[:, None] - centres))
    min_d2, max_d2 = np.sum(gap ** 2, -1), np.sum(far ** 2, -1)  # [cells, n]
    k = min(k, bins.num_bins)
    bound = np.sort(max_d2, axis=1)[:, k - 1:k]
    keep = min_d2 <= bound
    table = np.full((grid.num_cells, keep.sum(1).max()), bins.num_bins, np.int32)
    for cell, row in enumerate(keep):
        table[cell, :row.sum()] = np.flatnonzero(row)  # ascending: top_k's tie order
    return table


def encode_soft(chroma, bins, k=DEFAULT_SOFT_K, sigma=None):
    """chroma [..., 2] -> (nearest int32 [..., k], probability float32 [..., k]): the soft
    target as its k non-zero entries, nearest bin first.

    Zhang et al. 2016, section 3.1: weights exp(-d^2 / (2 sigma^2)) on the k nearest
    kept bin centres, normalised to sum 1. sigma defaults to half a grid cell
    (5 Lab units for Zhang's grid). Only the cell's soft_candidates are compared, and
    the target stays sparse (the dense [..., n] one is n / 2k times larger): both
    together took the training input pipeline from 52 to 326 images/s (96 px crops,
    255 bins, 2 cores), where it held training back.
    """
    sigma = default_soft_sigma(bins.grid) if sigma is None else sigma
    k = min(k, bins.num_bins)
    chroma = tf.convert_to_tensor(chroma, tf.float32)
    candidates = tf.gather(tf.constant(soft_candidates(bins, k)), cell_index(chroma, bins.grid))
    # One far-away row for the padding entries, which then are never among the k nearest.
    centres = tf.concat([bin_centres(bins), tf.constant([[1e9, 1e9]], tf.float32)], axis=0)
    d2 = tf.reduce_sum(tf.square(chroma[..., None, :] - tf.gather(centres, candidates)), -1)
    neg_d2, position = tf.math.top_k(-d2, k=k)
    nearest = tf.gather(candidates, position, batch_dims=len(position.shape) - 1)
    # Subtracting the nearest distance keeps exp() away from underflow far off the grid.
    gauss = tf.exp((neg_d2 - neg_d2[..., :1]) / (2.0 * sigma ** 2))
    return nearest, gauss / tf.reduce_sum(gauss, axis=-1, keepdims=True)
