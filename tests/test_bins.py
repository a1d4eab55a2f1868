import numpy as np
import pytest
import tensorflow as tf

from colorize_tf.chroma.bins import (
    Bins,
    ChromaHistogram,
    DEFAULT_GRIDS,
    Grid,
    cell_index,
    default_soft_sigma,
    encode_hard,
    encode_soft,
    fit_bins,
    recount_bins,
    soft_candidates,
)
from colorize_tf.chroma import color

# 2 x 2 cells of side 1 over [0, 2]^2: cell = i0 * 2 + i1.
GRID = Grid(color.YUV, (0.0, 0.0), (2.0, 2.0), (2, 2))


def _histogram():
    hist = ChromaHistogram(GRID)
    chroma = np.array([[[0.5, 0.5], [0.25, 0.25]], [[0.75, 0.75], [1.9, 1.9]]])
    hist.add(chroma)
    return hist


def test_counting_and_top_n():
    hist = _histogram()
    np.testing.assert_array_equal(hist.counts, [3, 0, 0, 1])
    one = fit_bins(hist, num_bins=1, rebalance_lambda=0.5)
    assert one.kept_cells == (0,)
    assert one.cell_to_bin == (0, 0, 0, 0)
    np.testing.assert_allclose(one.centres, [[0.5, 0.5]])


def test_centres_prior_and_weights_by_hand():
    fitted = fit_bins(_histogram(), num_bins=0, rebalance_lambda=0.5)
    assert fitted.kept_cells == (0, 3)
    np.testing.assert_allclose(fitted.centres, [[0.5, 0.5], [1.9, 1.9]])
    np.testing.assert_allclose(fitted.prior, [0.75, 0.25])
    # raw w = 1 / (0.5 P + 0.5 / 2) = [1.6, 2.6667]; sum P w = 1.8667.
    np.testing.assert_allclose(fitted.weights, [0.857142857, 1.428571429], rtol=1e-6)
    assert np.sum(fitted.prior * fitted.weights) == pytest.approx(1.0)
    # Empty cells 1 (centre 0.5, 1.5) and 2 (1.5, 0.5) are nearer to bin 0.
    assert fitted.cell_to_bin == (0, 0, 0, 1)


def test_lambda_one_gives_uniform_weights():
    fitted = fit_bins(_histogram(), num_bins=0, rebalance_lambda=1.0)
    np.testing.assert_allclose(fitted.weights, [1.0, 1.0])


def test_recount_keeps_the_earlier_classes_and_counts_new_colours_for_their_bin():
    earlier = fit_bins(_histogram(), num_bins=0, rebalance_lambda=0.5)
    # New photos: 1 pixel in cell 0, 2 in cell 2 (never seen before: its nearest bin is
    # 0, by the earlier lookup table), none in cell 3.
    new = ChromaHistogram(GRID)
    new.add(np.array([[[0.5, 0.5], [1.5, 0.5], [1.6, 0.4]]]))
    recounted = recount_bins(new, earlier, rebalance_lambda=1.0)
    assert (recounted.kept_cells, recounted.centres, recounted.cell_to_bin) == (
        earlier.kept_cells, earlier.centres, earlier.cell_to_bin)
    np.testing.assert_allclose(recounted.counts, [3.0, 0.0])
    np.testing.assert_allclose(recounted.prior, [1.0, 0.0])
    np.testing.assert_allclose(recounted.weights, [1.0, 1.0])  # lambda 1: uniform
    assert recounted.fingerprint != earlier.fingerprint
    # lambda 0.5: raw w = 1 / (0.5 P + 0.25) = [1.3333, 4]; sum P w = 1.3333.
    half = recount_bins(new, earlier, rebalance_lambda=0.5)
    np.testing.assert_allclose(half.weights, [1.0, 3.0], rtol=1e-6)
    with pytest.raises(ValueError, match="1 of the earlier bins hold no pixel"):
        recount_bins(new, earlier, rebalance_lambda=0.0)
    other = ChromaHistogram(Grid(color.YUV, (0.0, 0.0), (2.0, 2.0), (4, 4)))
    with pytest.raises(ValueError, match="another grid"):
        recount_bins(other, earlier)


def test_mask_excludes_pixels():
    hist = ChromaHistogram(GRID)
    hist.add(np.array([[[0.5, 0.5], [1.5, 1.5]]]), mask=np.array([[1, 0]]))
    np.testing.assert_array_equal(hist.counts, [1, 0, 0, 0])


def _random_bins(space, seed=0):
    grid = DEFAULT_GRIDS[space]
    rng = np.random.default_rng(seed)
    hist = ChromaHistogram(grid)
    scale = np.array(grid.high) * 0.5
    hist.add(rng.normal(0, 1, (200, 200, 2)) * scale * 0.4)
    return fit_bins(hist, num_bins=32), rng, scale


@pytest.mark.parametrize("space", color.COLOR_SPACES)
def test_lookup_equals_brute_force(space):
    fitted, rng, scale = _random_bins(space)
    chroma = rng.uniform(-1.2, 1.2, (5000, 2)) * scale * 2
    got = encode_hard(chroma, fitted).numpy()
    cells = cell_index(chroma, fitted.grid).numpy()
    centres = np.array(fitted.centres)
    cell_centres = fitted.grid.cell_centres()
    kept = {c: b for b, c in enumerate(fitted.kept_cells)}
    for chroma_i, cell, bin_i in zip(chroma, cells, got):
        if cell in kept:
            expected = kept[cell]
        else:
            expected = int(np.argmin(np.sum((centres - cell_centres[cell]) ** 2, axis=1)))
        assert bin_i == expected


@pytest.mark.parametrize("space", color.COLOR_SPACES)
def test_soft_encoding_is_gaussian_on_k_nearest(space):
    fitted, rng, scale = _random_bins(space)
    sigma = default_soft_sigma(fitted.grid)
    cell = np.array(fitted.grid.cell_size)
    # Spread over the grid, plus points on cell edges and corners (where a cell's
    # candidate list is tightest).
    spread = rng.normal(0, 1, (3000, 2)) * scale * 0.4
    edges = np.array(fitted.grid.low) + rng.integers(1, 9, (1000, 2)) * cell
    edges[:500, 1] += rng.uniform(0, 1, 500) * cell[1]
    chroma = np.concatenate([spread, edges]).astype(np.float32)
    nearest, probability = encode_soft(chroma, fitted, k=5, sigma=sigma)
    centres = np.array(fitted.centres, np.float32)
    d2 = np.sum((centres[None] - chroma[:, None]) ** 2, axis=2)
    expected = np.argsort(d2, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(nearest.numpy(), expected)
    d2_nearest = np.take_along_axis(d2, expected, 1).astype(np.float64)
    # Relative to the nearest (the normalisation cancels it): no underflow far off.
    gauss = np.exp(-(d2_nearest - d2_nearest[:, :1]) / (2 * sigma ** 2))
    np.testing.assert_allclose(probability.numpy(), gauss / gauss.sum(1, keepdims=True),
                               atol=1e-5)


def test_soft_candidates_are_a_few_per_cell():
    grid = DEFAULT_GRIDS[color.LAB]
    hist = ChromaHistogram(grid)
    hist.add(np.random.default_rng(0).uniform(-80, 80, (300, 300, 2)))
    fitted = fit_bins(hist, num_bins=0)  # every occupied cell: 256 bins
    table = soft_candidates(fitted, k=5)
    assert table.shape[0] == fitted.grid.num_cells
    assert 5 <= table.shape[1] < fitted.num_bins / 2
    assert ((table >= 0) & (table <= fitted.num_bins)).all()


def test_artifact_round_trip_and_fingerprint(tmp_path):
    fitted, _, _ = _random_bins(color.YUV)
    path = str(tmp_path / "bins.json")
    fitted.save(path)
    loaded = Bins.load(path)
    assert loaded == fitted and loaded.fingerprint == fitted.fingerprint
    other = fit_bins(_histogram(), num_bins=0, rebalance_lambda=0.2)
    assert other.fingerprint != fitted.fingerprint


def test_edited_artifact_is_refused(tmp_path):
    import json
    fitted, _, _ = _random_bins(color.YUV)
    data = fitted.to_dict()
    data["counts"][0] += 1
    with pytest.raises(ValueError, match="fingerprint"):
        Bins.from_dict(json.loads(json.dumps(data)))


def test_a_hand_edited_lookup_table_is_refused():
    # Every cell mapped to class 0 (records of class 0 only: the case of issue 41), and
    # one cell moved to a farther bin. By hand on the 2 x 2 grid: bin 0 at cell 0
    # (centre (0.5, 0.5)), bin 1 at cell 3 ((1.9, 1.9)); cell 1's centre (0.5, 1.5) is
    # 1.0 from bin 0 and sqrt(2.12) from bin 1, and so is cell 2's (1.5, 0.5): bin 0.
    fitted = fit_bins(_histogram(), num_bins=0, rebalance_lambda=0.5)
    assert fitted.cell_to_bin == (0, 0, 0, 1)
    for table in ([0, 0, 0, 0], [0, 1, 0, 1]):
        data = {**fitted.to_dict(), "cell_to_bin": table}
        with pytest.raises(ValueError, match="cell_to_bin is not the table its bins give"):
            Bins.from_dict(data)
    assert Bins.from_dict(fitted.to_dict()) == fitted


@pytest.mark.parametrize("edit,message", [
    (lambda d: [], "a JSON object, not list"),
    (lambda d: None, "a JSON object, not NoneType"),
    (lambda d: {**d, "cell_to_bin": d["cell_to_bin"][:-1]}, "cell_to_bin must be a list of 4"),
    (lambda d: {**d, "centres": "ab"}, "centres must be a list of 2"),
    (lambda d: {**d, "counts": [1, "x"]}, "counts must hold finite numbers"),
    (lambda d: {**d, "kept_cells": [0, 7]}, "kept_cells must be 4 grid cells"),
    (lambda d: {**d, "kept_cells": [0, 2.5]}, "kept_cells must hold finite integers"),
    (lambda d: {k: v for k, v in d.items() if k != "grid"}, "missing or mistypes 'grid'"),
])
def test_a_malformed_artifact_is_one_clear_value_error(edit, message):
    fitted = fit_bins(_histogram(), num_bins=0, rebalance_lambda=0.5)
    with pytest.raises(ValueError, match=message):
        Bins.from_dict(edit(fitted.to_dict()))


def test_encode_inside_tf_data_equals_eager():
    fitted, rng, scale = _random_bins(color.YUV)
    chroma = (rng.normal(0, 1, (3, 8, 8, 2)) * scale).astype(np.float32)
    eager = encode_hard(chroma, fitted).numpy()
    mapped = tf.data.Dataset.from_tensor_slices(chroma).map(
        lambda c: encode_hard(c, fitted))
    np.testing.assert_array_equal(np.stack(list(mapped.as_numpy_iterator())), eager)


def test_cell_index_by_hand_on_a_non_square_grid():
    # 2 cells along the first chroma axis (side 1 over [0, 2]), 3 along the second
    # (side 1 over [0, 3]): cell = i0 * 3 + i1.
    grid = Grid(color.YUV, (0.0, 0.0), (2.0, 3.0), (2, 3))
    chroma = [[0.5, 2.5], [1.5, 0.5], [1.5, 1.5], [0.2, 1.2], [-5.0, 9.0]]
    np.testing.assert_array_equal(cell_index(chroma, grid).numpy(), [2, 3, 4, 1, 2])


@pytest.mark.parametrize("space", ["yuv", "lab"])
def test_numpy_cells_equal_the_tf_cell_index(space):
    # Grid.cells_of (data prep's workers, numpy) and cell_index (TF) must give the same
    # cell to every value: random chroma over and beyond the grid, every cell edge.
    grid = DEFAULT_GRIDS[space]
    rng = np.random.default_rng(4)
    span = np.subtract(grid.high, grid.low)
    random = rng.uniform(np.subtract(grid.low, span / 4), np.add(grid.high, span / 4),
                         (20000, 2))
    edges = [np.linspace(l, h, c + 1) for l, h, c in zip(grid.low, grid.high, grid.cells)]
    on_edges = np.stack(np.meshgrid(*edges, indexing="ij"), -1).reshape(-1, 2)
    chroma = np.concatenate([random, on_edges]).astype(np.float32).reshape(-1, 1, 2)
    np.testing.assert_array_equal(grid.cells_of(chroma),
                                  cell_index(chroma, grid).numpy())


def test_numpy_cells_by_hand_on_a_non_square_grid():
    grid = Grid(color.YUV, (0.0, 0.0), (2.0, 3.0), (2, 3))
    chroma = np.array([[0.5, 2.5], [1.5, 0.5], [1.5, 1.5], [0.2, 1.2], [-5.0, 9.0],
                       [-0.5, -0.5]])
    np.testing.assert_array_equal(grid.cells_of(chroma), [2, 3, 4, 1, 2, 0])
