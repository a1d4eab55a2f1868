"""The chroma grid and the pixel histogram over it, in numpy (no TensorFlow).

A grid of equal square cells covers the chroma plane (UV or ab); chroma/bins.py keeps the
most frequent cells as the bins. Data prep's worker processes count pixels per cell
without loading TensorFlow (see color_numpy), so the grid and its histogram live here;
chroma/bins.py holds the TF lookups used in training and in the SavedModel.
"""
import dataclasses

import numpy as np

from colorize_tf import errors
from colorize_tf.chroma import color_numpy


@dataclasses.dataclass(frozen=True)
class Grid:
    """Equal cells over the chroma plane: cells[0] along chroma 0, cells[1] along chroma 1."""
    color_space: str
    low: tuple
    high: tuple
    cells: tuple

    @property
    def cell_size(self):
        return tuple((h - l) / c for l, h, c in zip(self.low, self.high, self.cells))

    @property
    def num_cells(self):
        return self.cells[0] * self.cells[1]

    def cell_centres(self):
        """[num_cells, 2] float64 centres, cell index = i0 * cells[1] + i1."""
        axes = self.channel_centres()
        c0, c1 = np.meshgrid(axes[0], axes[1], indexing="ij")
        return np.stack([c0.ravel(), c1.ravel()], axis=-1)

    def channel_centres(self):
        """(centres along chroma 0 [cells[0]], along chroma 1 [cells[1]]), float64: the
        bins of each channel on its own (Sun and Shen, eq. 1)."""
        return tuple(l + (np.arange(c) + 0.5) * s
                     for l, c, s in zip(self.low, self.cells, self.cell_size))

    def cells_of(self, chroma):
        """chroma [..., 2] -> int32 [...]: each value's cell (off the grid: the edge's),
        computed in float32 as bins.cell_index does in TF, so both give the same cells.
        Channel by channel: numpy is ~7x slower on a last axis of 2."""
        index = 0
        for k in range(2):
            x = np.array(chroma[..., k], np.float32)  # a contiguous copy
            x -= np.float32(self.low[k])
            x /= np.float32(self.cell_size[k])
            # Truncation, not floor: the two differ only below 0, which clips to 0.
            ij = np.clip(x.astype(np.int32), 0, self.cells[k] - 1)
            index = index * self.cells[1] + ij
        return index


# ColorUNet code: 10 x 10 cells over U in [-0.45, 0.45], V in [-0.65, 0.65].
# Zhang et al.: grid step 10 over a, b in [-110, 110].
DEFAULT_GRIDS = {
    color_numpy.YUV: Grid(color_numpy.YUV, (-0.45, -0.65), (0.45, 0.65), (10, 10)),
    color_numpy.LAB: Grid(color_numpy.LAB, (-110.0, -110.0), (110.0, 110.0), (22, 22)),
}


def channel_grid(color_space, bins_per_channel):
    """The default grid's range split into bins_per_channel bins along each chroma
    channel (Sun and Shen: 20 per channel), for per-channel classification."""
    grid = DEFAULT_GRIDS[color_space]
    return Grid(color_space, grid.low, grid.high, (bins_per_channel, bins_per_channel))


class ChromaHistogram:
    """Pixel counts and chroma sums per grid cell, accumulated over many images."""

    def __init__(self, grid):
        self.grid = grid
        self.counts = np.zeros(grid.num_cells, np.float64)
        self.sums = np.zeros((grid.num_cells, 2), np.float64)

    def add(self, chroma, mask=None):
        """chroma [H, W, 2] (numpy or tf), mask [H, W] of valid pixels (None: all)."""
        chroma = np.asarray(chroma, np.float64).reshape(-1, 2)
        cells = self.grid.cells_of(chroma)
        if mask is not None:
            keep = np.asarray(mask).reshape(-1).astype(bool)
            chroma, cells = chroma[keep], cells[keep]
        self.add_cells(cells, chroma)

    def add_cells(self, cells, chroma):
        """cells [N] (Grid.cells_of each pixel), chroma [N, 2] or [H, W, 2]: for callers
        that computed the cells already."""
        cells = np.asarray(cells).reshape(-1)
        chroma = np.asarray(chroma, np.float64).reshape(-1, 2)
        n = self.grid.num_cells
        self.counts += np.bincount(cells, minlength=n)
        self.sums[:, 0] += np.bincount(cells, weights=chroma[:, 0], minlength=n)
        self.sums[:, 1] += np.bincount(cells, weights=chroma[:, 1], minlength=n)

    def merge(self, other):
        if other.grid != self.grid:
            raise errors.Error("cannot merge histograms over different grids")
        self.counts += other.counts
        self.sums += other.sums
        return self
