"""Guided chroma upsampling (chroma/guided.py) against a numpy oracle written from He et
al. 2010's equations, and against pictures whose right answer is known by hand."""
import json
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

from colorize_tf import serving_api
from colorize_tf.chroma import guided
from colorize_tf.serving import graph
from colorize_tf.serving import inference
from colorize_tf.training import exporter

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The default window on the chroma's own grid (subsample 1).
GUIDED = guided.ChromaUpsampling(guided.DEFAULT_RADIUS, guided.DEFAULT_EPSILON)


def window_mean(x, radius):
    """numpy: x [h, w, C] -> the mean over each (2r+1)^2 window clipped to the image."""
    h, w = x.shape[:2]
    out = np.zeros_like(x, dtype=np.float64)
    for i in range(h):
        for j in range(w):
            window = x[max(0, i - radius):i + radius + 1, max(0, j - radius):j + radius + 1]
            out[i, j] = window.reshape(-1, x.shape[2]).mean(axis=0)
    return out


def guided_oracle(chroma, guide, radius, epsilon):
    """numpy, He et al. 2010 eq. 5-8 with explicit windows: -> (mean a, mean b)."""
    chroma, guide = chroma.astype(np.float64), guide.astype(np.float64)
    a = np.zeros_like(chroma)
    b = np.zeros_like(chroma)
    h, w = guide.shape[:2]
    for i in range(h):
        for j in range(w):
            rows = slice(max(0, i - radius), i + radius + 1)
            cols = slice(max(0, j - radius), j + radius + 1)
            g = guide[rows, cols, 0].ravel()
            for c in range(chroma.shape[2]):
                p = chroma[rows, cols, c].ravel()
                # the ridge regression p ~ a g + b of eq. 5
                a[i, j, c] = (np.mean(g * p) - g.mean() * p.mean()) / (g.var() + epsilon)
                b[i, j, c] = p.mean() - a[i, j, c] * g.mean()
    return window_mean(a, radius), window_mean(b, radius)


def test_coefficients_match_the_equations():
    rng = np.random.default_rng(3)
    chroma = rng.uniform(-60, 60, (9, 13, 2)).astype(np.float32)
    guide = rng.uniform(0, 1, (9, 13, 1)).astype(np.float32)
    for radius, epsilon in [(1, 1e-3), (2, 1e-2), (4, 1e-3)]:
        a, b = guided.guided_coefficients(chroma[None], guide[None], radius, epsilon)
        want_a, want_b = guided_oracle(chroma, guide, radius, epsilon)
        np.testing.assert_allclose(a[0], want_a, rtol=1e-3, atol=1e-2)
        np.testing.assert_allclose(b[0], want_b, rtol=1e-3, atol=1e-2)


def test_at_the_same_size_it_is_the_guided_filter():
    # No resizing when chroma and luma have one size: a * luma + b exactly.
    rng = np.random.default_rng(4)
    chroma = rng.uniform(-60, 60, (11, 8, 2)).astype(np.float32)
    luma = rng.uniform(0, 1, (11, 8, 1)).astype(np.float32)
    out = guided.ChromaUpsampling(2, 1e-3)(tf.constant(chroma), tf.constant(luma))
    a, b = guided_oracle(chroma, luma, 2, 1e-3)
    np.testing.assert_allclose(out, a * luma + b, rtol=1e-3, atol=1e-2)


def test_a_chroma_linear_in_the_luma_is_rebuilt_at_full_size():
    # chroma = 40 L - 7 on the coarse grid (L averaged over each 4 x 4 cell): the fit
    # gives a = 40, b = -7 everywhere, so every full-size pixel gets 40 L - 7 exactly,
    # texture finer than the grid included; bilinear upsampling would smear it.
    rng = np.random.default_rng(5)
    luma = rng.uniform(0.1, 0.9, (32, 48, 1)).astype(np.float32)
    coarse = luma.reshape(8, 4, 12, 4, 1).mean(axis=(1, 3))
    chroma = np.concatenate([40 * coarse - 7, -25 * coarse + 3], -1)
    out = guided.ChromaUpsampling(2, 1e-9)(tf.constant(chroma), tf.constant(luma)).numpy()
    want = np.concatenate([40 * luma - 7, -25 * luma + 3], -1)
    np.testing.assert_allclose(out, want, atol=0.05)
    bilinear = guided.BILINEAR(tf.constant(chroma), tf.constant(luma)).numpy()
    assert np.abs(bilinear - want).mean() > 20 * np.abs(out - want).mean()


def step_photo():
    """A 96 x 96 photo: left dark (luma 0.25) blue-ish, right bright (0.8) orange-ish,
    the edge at column 37 (not on a coarse cell's border); its chroma known per pixel,
    and the model's view of it: the chroma averaged over 8 x 8 cells, then blurred over
    the neighbouring cells as a network's coarse output is."""
    luma = np.full((96, 96, 1), 0.25, np.float32)
    luma[:, 37:] = 0.8
    truth = np.zeros((96, 96, 2), np.float32)
    truth[:, :37] = (-10, -40)
    truth[:, 37:] = (25, 55)
    coarse = truth.reshape(12, 8, 12, 8, 2).mean(axis=(1, 3))
    blurred = window_mean(coarse, 1).astype(np.float32)
    return luma, truth, blurred


def test_colour_edges_follow_the_luma_edge():
    luma, truth, blurred = step_photo()
    out = GUIDED(tf.constant(blurred), tf.constant(luma)).numpy()
    bilinear = guided.BILINEAR(tf.constant(blurred), tf.constant(luma)).numpy()
    # The step of 35 and 95 units lies on the luma's edge: every pixel on the right
    # side of it (bilinear puts the wrong colour on a few pixels each side).
    assert np.all(np.sign(out[..., 1]) == np.sign(truth[..., 1]))
    assert not np.all(np.sign(bilinear[..., 1]) == np.sign(truth[..., 1]))
    # Within 8 px of the edge, bilinear is 21 units off on average, guided 4.5
    # (measured); the worst pixel 45.5 against 8.5.
    band = slice(29, 46)
    guided_error = np.abs(out - truth)[:, band].mean()
    bilinear_error = np.abs(bilinear - truth)[:, band].mean()
    assert guided_error < 0.3 * bilinear_error, (guided_error, bilinear_error)
    assert np.abs(out - truth).max() < 12.0
    # Away from the edge the flat colours stay near theirs (the fit over 9-cell
    # windows pulls them a few units towards the blurred ones).
    np.testing.assert_allclose(out[:, :20], truth[:, :20], atol=6.0)
    np.testing.assert_allclose(out[:, 56:], truth[:, 56:], atol=6.0)


def test_the_shipped_setting_puts_the_edge_in_place():
    # As the default model's export does it: chroma at a working size of half the
    # photo, already upsampled from a grid 4x coarser (here 12 x 12 -> 48 x 48), the fit
    # back on that grid (subsample 4, radius 4 -> 1 cell). Measured: within 8 px of the
    # edge 9.1 units off against bilinear's 21.1, every pixel on the right side.
    luma, truth, blurred = step_photo()
    work = tf.image.resize(blurred, [48, 48], method="bilinear")
    out = guided.ChromaUpsampling(guided.DEFAULT_RADIUS, guided.DEFAULT_EPSILON, 4)(
        work, tf.constant(luma)).numpy()
    bilinear = guided.BILINEAR(work, tf.constant(luma)).numpy()
    assert np.all(np.sign(out[..., 1]) == np.sign(truth[..., 1]))
    band = slice(29, 46)
    assert (np.abs(out - truth)[:, band].mean()
            < 0.5 * np.abs(bilinear - truth)[:, band].mean())
    np.testing.assert_allclose(out[:, :20], truth[:, :20], atol=6.0)
    np.testing.assert_allclose(out[:, 56:], truth[:, 56:], atol=6.0)


def test_radius_zero_is_bilinear_and_batches_are_per_photo():
    rng = np.random.default_rng(6)
    chroma = tf.constant(rng.uniform(-50, 50, (2, 5, 7, 2)), tf.float32)
    luma = tf.constant(rng.uniform(0, 1, (2, 19, 23, 1)), tf.float32)
    np.testing.assert_array_equal(guided.BILINEAR(chroma, luma),
                                  tf.image.resize(chroma, [19, 23], method="bilinear"))
    batched = GUIDED(chroma, luma).numpy()
    assert batched.shape == (2, 19, 23, 2)
    for i in range(2):
        np.testing.assert_allclose(batched[i], GUIDED(chroma[i], luma[i]), atol=1e-4)


def test_tiny_and_flat_photos():
    # A 1 x 1 photo, and a flat luma (variance 0: the ridge keeps a at 0, chroma kept).
    one = GUIDED(tf.constant([[[12.0, -3.0]]]), tf.constant([[[0.5]]])).numpy()
    np.testing.assert_allclose(one, [[[12.0, -3.0]]], atol=1e-4)
    chroma = tf.fill([6, 6, 2], 17.0)
    flat = GUIDED(chroma, tf.fill([30, 30, 1], 0.0)).numpy()
    np.testing.assert_allclose(flat, 17.0, atol=1e-3)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="radius >= 0"):
        guided.ChromaUpsampling(-1)
    with pytest.raises(ValueError, match="epsilon > 0"):
        guided.ChromaUpsampling(2, 0.0)
    with pytest.raises(ValueError, match="subsample >= 1"):
        guided.ChromaUpsampling(2, 1e-3, 0)


def test_exports_record_their_upsampling(tiny_run, tiny_saved_model, tmp_path):
    # tiny_saved_model is a default export: guided, as export.json says.
    info = graph.ExportInfo.load(tiny_saved_model[0])
    assert (info.guided_radius, info.guided_epsilon, info.guided_subsample) == (
        guided.DEFAULT_RADIUS, guided.DEFAULT_EPSILON, info.output_stride)
    path = exporter.export(tiny_run, str(tmp_path / "m"), work_size=32, guided_radius=0)
    assert graph.ExportInfo.load(path).upsampling == guided.BILINEAR
    with pytest.raises(exporter.ExportError, match="guided_radius must be >= 0"):
        exporter.export(tiny_run, str(tmp_path / "m"), work_size=32, guided_radius=-2)
    # An export.json from before guided upsampling: bilinear, as it was exported.
    data = json.load(open(os.path.join(path, "assets", graph.EXPORT_INFO_NAME)))
    for key in ("guided_radius", "guided_epsilon", "guided_subsample"):
        data.pop(key)
    assert graph.ExportInfo.from_dict(data).upsampling == guided.BILINEAR


def test_served_photos_use_the_exported_upsampling(tmp_path):
    # The shipped default model re-exported both ways (at a small working size, to be
    # quick): the serving graph and the Python render agree for each, and the two
    # differ where the photo has edges: the setting reaches the graph.
    shipped = os.path.join(REPO, "saved_models", "effnet_general")
    photo = cv2.imread(os.path.join(REPO, "examples", "old_photos", "JerseyShore1905.jpg"))
    photo = cv2.resize(photo, (101, 140), interpolation=cv2.INTER_AREA)[..., ::-1].copy()
    results = {}
    for radius in (0, guided.DEFAULT_RADIUS):
        path = exporter.export_from_saved_model(shipped, str(tmp_path / f"r{radius}"),
                                                work_size=64, guided_radius=radius)
        colorizer = inference.Colorizer(path)
        # The fit runs on the model's own chroma grid (output stride 4).
        assert colorizer.export_info.guided_subsample == 4
        served = colorizer.colorize(photo, temperature=0.7)
        luma, probabilities = colorizer.predict_probabilities(photo)
        # 140 x 101 at 64 px: a 64 x 46 working size, logits on ceil(/ 4) cells.
        assert probabilities.shape == (16, 12, colorizer.bins.num_bins)
        rendered = colorizer.render(luma, probabilities, 0.7)[0]
        assert served.shape == photo.shape
        # Both decode on the logits' grid, then take the same steps: the same photo
        # but for float rounding in the annealed mean.
        difference = np.abs(served.astype(int) - rendered)
        assert difference.max() <= 1 and difference.mean() < 0.01, difference.mean()
        results[radius] = served.astype(int)
    assert np.abs(results[0] - results[guided.DEFAULT_RADIUS]).mean() > 0.5
    # An export from before probabilities on the logits' grid (effnet_general/2)
    # handed them out at the working size (its export.json has no
    # probabilities_stride: 1), and the Python render decodes them there: about one
    # 8-bit step from its served photos.
    info = colorizer.export_info
    coarse = colorizer._probabilities

    def old_signature(luma):
        p = coarse(luma=luma)[serving_api.PROBABILITIES]
        return {serving_api.PROBABILITIES: graph.to_work_grid(p, tf.shape(luma)[1:3], 4)}

    data = info.to_dict()
    data.pop("probabilities_stride")
    colorizer.export_info = graph.ExportInfo.from_dict(data)
    colorizer._probabilities = old_signature
    luma, probabilities = colorizer.predict_probabilities(photo)
    assert probabilities.shape == (64, 46, colorizer.bins.num_bins)
    assert np.abs(served.astype(int) - colorizer.render(luma, probabilities, 0.7)[0]
                  ).mean() < 1.5


def test_subsampled_fit_is_the_fit_on_the_coarser_grid():
    # subsample s: the chroma and the guide averaged over s x s cells, the fit there
    # with radius / s cells, its coefficients applied to the full-size luma.
    rng = np.random.default_rng(8)
    chroma = rng.uniform(-60, 60, (16, 24, 2)).astype(np.float32)
    luma = rng.uniform(0, 1, (64, 96, 1)).astype(np.float32)
    upsampling = guided.ChromaUpsampling(4, 1e-3, subsample=4)
    assert upsampling.grid_radius == 1
    out = upsampling(tf.constant(chroma), tf.constant(luma)).numpy()
    coarse = chroma.reshape(4, 4, 6, 4, 2).mean(axis=(1, 3))
    guide = luma.reshape(4, 16, 6, 16, 1).mean(axis=(1, 3))
    a, b = guided_oracle(coarse, guide, 1, 1e-3)
    def up(x):
        return tf.image.resize(x.astype(np.float32), [64, 96], method="bilinear").numpy()
    np.testing.assert_allclose(out, up(a) * luma + up(b), rtol=1e-3, atol=1e-2)
    # A linear relation survives the subsampling as well.
    fine = luma.reshape(16, 4, 24, 4, 1).mean(axis=(1, 3))
    linear = np.concatenate([30 * fine - 5, -20 * fine + 8], -1)
    rebuilt = guided.ChromaUpsampling(4, 1e-9, 4)(tf.constant(linear), tf.constant(luma))
    np.testing.assert_allclose(rebuilt, np.concatenate([30 * luma - 5, -20 * luma + 8], -1),
                               atol=0.05)
    # Odd sizes: the coarse grid rounds up and never vanishes.
    odd = guided.ChromaUpsampling(4, 1e-3, 4)(tf.constant(chroma[:5, :3]),
                                              tf.constant(luma[:7, :5]))
    assert odd.shape == (7, 5, 2) and np.all(np.isfinite(odd))
