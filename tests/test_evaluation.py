"""The batched evaluation graphs against the per-image definitions of modeling/metrics.py and
numpy oracles."""
import os

import cv2
import numpy as np
import pytest

from colorize_tf.chroma import color
from colorize_tf.evaluation import photos
from colorize_tf.evaluation import reports
from colorize_tf.evaluation import scoring
from colorize_tf.evaluation import statistics
from colorize_tf.modeling import metrics
from colorize_tf.serving import inference
from tests.conftest import make_photo, numpy_oracle, write_png


def test_error_histogram_gives_the_error_curve():
    rng = np.random.default_rng(0)
    error = np.concatenate([rng.uniform(0, 200, 500), [0.0, 1.0, 2.0, 150.0, 150.5, 0.5]])
    true_class = rng.integers(0, scoring.LAB_CLASSES.num_cells, len(error))
    direct = metrics.ErrorCurve(scoring.LAB_CLASSES.num_cells)
    direct.add(error, true_class)
    batched = metrics.ErrorCurve(scoring.LAB_CLASSES.num_cells)
    batched.add_histogram(scoring.error_histogram(
        error[None].astype(np.float32), true_class.astype(np.int32))[0].numpy().reshape(
        scoring.LAB_CLASSES.num_cells, -1))
    np.testing.assert_array_equal(batched.pixels, direct.pixels)
    np.testing.assert_array_equal(batched.within, direct.within)
    # By hand: an error of exactly 1 is within threshold 1, not 0; 150.5 within none.
    curve = metrics.ErrorCurve(1)
    curve.add([0.0, 1.0, 0.5, 150.5], [0, 0, 0, 0])
    assert list(curve.within[0, :3]) == [1, 3, 3] and curve.within[0, -1] == 3
    assert curve.pixels[0] == 4


def test_colourfulness_graph_equals_the_formula():
    images = np.stack([make_photo(20, 30, seed=i) for i in range(3)])
    expected = [metrics.colourfulness(image) for image in images]
    np.testing.assert_allclose(scoring.colourfulness(images).numpy(), expected, rtol=1e-5)


@pytest.mark.parametrize("size", [(24, 30), (8, 9)])  # the second below SSIM's window
def test_batch_scores_equal_the_per_image_metrics(luma_saved_model, size):
    colorizer = inference.Colorizer(luma_saved_model)
    truth = np.stack([make_photo(*size, seed=i) for i in range(3)])
    scorer = scoring.BatchScorer(colorizer, [0.3, 1.0])
    results, confidence, truth_stats, scores = scorer(truth)
    assert set(results) == {"gray", "mean chroma", "T=0.3", "T=1"}
    assert confidence.shape == truth.shape[:3] and 0 <= confidence.min() <= 1
    # The model's output, from the numpy oracle of the luma-following model.
    for j, image in enumerate(truth):
        oracle = numpy_oracle(image, colorizer.bins.centres, 0.3)
        assert np.abs(results["T=0.3"][j].astype(int) - oracle).max() <= 1
    truth_ab = color.rgb_to_lab(truth.astype(np.float32) / 255.0).numpy()[..., 1:]
    for name, result in results.items():
        s = scores[name]
        for j in range(len(truth)):
            ab = color.rgb_to_lab(result[j].astype(np.float32) / 255.0).numpy()[..., 1:]
            assert s["psnr"][j] == pytest.approx(metrics.psnr(result[j], truth[j]), abs=1e-3)
            assert s["ssim"][j] == pytest.approx(metrics.ssim(result[j], truth[j]), abs=1e-5)
            assert s["mse_ab"][j] == pytest.approx(np.mean((ab - truth_ab[j]) ** 2), rel=1e-4)
            assert s["colourfulness"][j] == pytest.approx(
                metrics.colourfulness(result[j]), rel=1e-4, abs=1e-4)
            # Colour cast: OpenCV's float Lab as the oracle of the mean chromas.
            lab = [cv2.cvtColor(x.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)[..., 1:]
                   for x in (result[j], truth[j])]
            assert s["colour_cast"][j] == pytest.approx(np.linalg.norm(
                lab[0].mean((0, 1)) - lab[1].mean((0, 1))), abs=0.05)
            if name == "gray":
                assert s["colour_cast"][j] == pytest.approx(
                    np.linalg.norm(lab[1].mean((0, 1))), abs=0.05)
        assert s["bin_counts"].sum() == truth[..., 0].size
    np.testing.assert_allclose(truth_stats["colourfulness"],
                               [metrics.colourfulness(t) for t in truth], rtol=1e-5)


def test_compiled_and_plain_scores_agree(luma_saved_model):
    # XLA scores full batches, plain kernels the rest: a photo's scores must not depend
    # on which, including the bin counts of gray, whose chroma lies on a cell edge.
    colorizer = inference.Colorizer(luma_saved_model)
    truth = np.stack([make_photo(24, 30, seed=i) for i in range(3)])
    compiled = scoring.BatchScorer(colorizer, [0.38], xla_batch=1)(truth)[3]
    plain = scoring.BatchScorer(colorizer, [0.38], xla_batch=4)(truth)[3]
    for name, scores in compiled.items():
        np.testing.assert_array_equal(scores["bin_counts"], plain[name]["bin_counts"])
        for key in ("psnr", "mse_ab", "colourfulness", "error_histogram"):
            np.testing.assert_allclose(scores[key], plain[name][key], rtol=1e-5, atol=1e-5)


def test_shape_batches_group_by_size_and_keep_every_item():
    shapes = [(4, 5), (6, 5), (4, 5), (4, 5), (6, 5), (4, 5), (7, 7)]
    items = [(i, np.zeros((*s, 3), np.uint8)) for i, s in enumerate(shapes)]
    batches = list(photos.shape_batches(items, batch_size=2, window=5))
    assert sorted(k for b in batches for k, _ in b) == list(range(len(shapes)))
    for batch in batches:
        assert 1 <= len(batch) <= 2 and len({image.shape for _, image in batch}) == 1
    assert [k for k, _ in batches[0]] == [0, 2]  # the first full batch comes out at once


def test_batched_evaluation_equals_one_photo_at_a_time(luma_saved_model, tmp_path):
    paths = [write_png(str(tmp_path / f"{i}.png"), make_photo(24, 30, seed=i))
             for i in range(5)]
    paths.append(write_png(str(tmp_path / "odd.png"), make_photo(20, 26, seed=9)))
    (tmp_path / "bad.png").write_bytes(b"nope")
    paths.append(str(tmp_path / "bad.png"))
    colorizer = inference.Colorizer(luma_saved_model)
    seen = []
    batched = scoring.evaluate(colorizer, paths, [0.38], batch_size=4,
                               on_figure=lambda i, *_: seen.append(i), num_figures=3)
    single = scoring.evaluate(colorizer, paths, [0.38], batch_size=1)
    assert batched.evaluated == single.evaluated == 6 and sorted(seen) == [0, 1, 2]
    assert [x["file"] for x in batched.left_out] == [paths[-1]]
    (a, _), (b, _) = batched.summary(), single.summary()
    for name in a:
        for key in a[name]:
            assert a[name][key] == pytest.approx(b[name][key], rel=1e-5, abs=1e-6), (name, key)


def test_list_domain_photos_names_domains_by_folder(tmp_path):
    for rel in ["general/faces/a.png", "general/faces/b.png", "general/street/c.png",
                "nature/forest/d.png", "nature/sea/e.png"]:
        write_png(str(tmp_path / rel), make_photo(8, 8))
    paths, groups = photos.list_domain_photos(
        [(None, str(tmp_path / "general")), ("landscapes", str(tmp_path / "nature"))])
    named = {os.path.relpath(p, tmp_path): g for p, g in groups.items()}
    assert named == {"general/faces/a.png": ("domain: faces",),
                     "general/faces/b.png": ("domain: faces",),
                     "general/street/c.png": ("domain: street",),
                     "nature/forest/d.png": ("domain: landscapes",),
                     "nature/sea/e.png": ("domain: landscapes",)}
    # One folder: its sub-folders are the domains; one domain only: no groups.
    assert set(photos.list_domain_photos([(None, str(tmp_path / "nature"))])[1].values()) \
        == {("domain: forest",), ("domain: sea",)}
    assert photos.list_domain_photos([(None, str(tmp_path / "general" / "faces"))])[1] == {}


def test_read_label_groups_resolves_paths_and_counts_what_it_leaves_out(tmp_path):
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        write_png(str(tmp_path / "test" / "faces" / name), make_photo(4, 4))
    (tmp_path / "labels.csv").write_text(
        "path,age,race\n"
        "test/faces/a.jpg,20-29,Black\n"
        "test/faces/b.jpg,,East Asian\n"
        "test/faces/missing.jpg,30-39,White\n"        # names no file
        "test/faces/c.jpg,40-49\n"                     # a cell short
        "test/faces/c.jpg,40-49,Indian,extra\n"        # a cell too many
        "./test/faces/a.jpg,20-29,Black\n"             # the same labels again: fine
        "test/faces/b.jpg,50-59,East Asian\n")         # other labels: left out
    labels = photos.read_label_groups(str(tmp_path / "labels.csv"))
    assert labels.groups == {str(tmp_path / "test/faces/a.jpg"): ("age: 20-29", "race: Black"),
                             str(tmp_path / "test/faces/b.jpg"): ("race: East Asian",)}
    assert labels.missing_files == ["test/faces/missing.jpg"]
    assert labels.ragged_rows == [5, 6] and labels.twice == ["test/faces/b.jpg"]
    notes = labels.notes("labels.csv", [str(tmp_path / "test/faces" / n)
                                        for n in ("a.jpg", "b.jpg", "c.jpg")])
    assert (notes["labelled"], notes["photos"]) == (2, 3)
    assert [notes[k]["count"] for k in ("missing_files", "ragged_rows", "twice")] == [1, 2, 1]
    (tmp_path / "bad.csv").write_text("file,age\nx.jpg,3\n")
    with pytest.raises(ValueError, match="no 'path' column"):
        photos.read_label_groups(str(tmp_path / "bad.csv"))
    (tmp_path / "paths_only.csv").write_text("path\ntest/faces/a.jpg\n")
    with pytest.raises(ValueError, match="no label column beside 'path'"):
        photos.read_label_groups(str(tmp_path / "paths_only.csv"))


def test_group_totals_equal_evaluating_the_group_alone(luma_saved_model, tmp_path):
    colorizer = inference.Colorizer(luma_saved_model)
    paths = [write_png(str(tmp_path / f"{i}.png"), make_photo(24, 30, seed=i))
             for i in range(6)]
    groups = {p: ("kind: odd",) if i % 2 else ("kind: even",) for i, p in enumerate(paths)}
    groups[paths[0]] += ("colour: red",)
    totals = scoring.evaluate(colorizer, paths, [0.38], num_figures=0, batch_size=4,
                              groups=groups)
    assert sorted(totals.groups) == ["colour: red", "kind: even", "kind: odd"]
    for name, members in [("kind: odd", paths[1::2]), ("colour: red", paths[:1])]:
        alone = scoring.evaluate(colorizer, members, [0.38], num_figures=0).summary()[0]
        grouped = totals.groups[name].summary()[0]
        assert totals.groups[name].evaluated == len(members)
        for method, values in alone.items():
            for metric, value in values.items():
                assert grouped[method][metric] == pytest.approx(value, rel=1e-6), metric


def test_group_spreads_by_hand():
    scores = {"race: A": [19.0, 21.0], "race: B": [21.5], "race: C": [20.7, 20.7, 20.7],
              "age: 3-9": [19.0], "domain: faces": [22.0, 23.0]}
    spreads = statistics.group_spreads(scores, shuffles=50)
    assert list(spreads) == ["race"]  # age and domain have one group each
    race = spreads["race"]
    assert (race["spread"], race["best"], race["worst"]) == \
        (pytest.approx(1.5), "race: B", "race: A")
    assert race["shuffles"] == 50


def test_group_spreads_chance_is_a_permutation_test():
    # Hand count: the four photos 0, 0, 10, 10 dealt to two groups of two give a gap
    # of 10 dB in 2 of the 6 deals ({0, 0 | 10, 10} and {10, 10 | 0, 0}), 0 dB in 4.
    spreads = statistics.group_spreads({"g: a": [0.0, 0.0], "g: b": [10.0, 10.0]},
                                       shuffles=20000)["g"]
    assert spreads["spread"] == 10.0
    assert spreads["p_value"] == pytest.approx(1 / 3, abs=0.01)
    assert spreads["chance_median"] == 0.0 and spreads["chance_95"] == 10.0
    # Groups of the same photos: every deal gives the same gap, p = 1.
    same = statistics.group_spreads({"g: a": [1.0, 2.0, 3.0], "g: b": [3.0, 1.0, 2.0]},
                                    shuffles=100)["g"]
    assert same["spread"] == 0.0 and same["p_value"] == 1.0
    # A real gap between large groups is far beyond chance (smallest p: 1 / (1 + 1000)).
    rng = np.random.default_rng(1)
    real = statistics.group_spreads({"g: a": rng.normal(20, 3, 200),
                                     "g: b": rng.normal(23, 3, 200)}, shuffles=1000)["g"]
    assert real["p_value"] == pytest.approx(1 / 1001)
    # Its chance 95th percentile: the gap of two means of 200 photos with the pooled
    # deviation (about sqrt(3^2 + 1.5^2) = 3.35 dB) is normal with sd 3.35 * sqrt(2 / 200);
    # its absolute value's 95th percentile is 1.96 of that: 0.66 dB.
    assert real["chance_95"] == pytest.approx(1.96 * 3.35 * np.sqrt(2 / 200), rel=0.15)


def test_tables_use_each_models_own_default_temperature():
    assert scoring.default_method([0.2, 0.38, 0.6], 0.6) == "T=0.6"
    assert scoring.default_method([0.2, 0.38, 0.6], 0.5) == "T=0.38"  # not evaluated
    assert scoring.default_method([0.2, 0.6]) == "T=0.2"  # closest to 0.38

    def result(default, psnr):
        m = {"psnr": psnr, "auc_rebalanced": 0.5, "colourfulness_ratio": 1.0}
        other = {"psnr": 1.0, "auc_rebalanced": 0.1, "colourfulness_ratio": 0.0}
        return {"images": 3, "temperatures": [0.38, 0.6], "default_temperature": default,
                "methods": {"gray": other, "mean chroma": other,
                            "T=0.38": other if default == 0.6 else m,
                            "T=0.6": m if default == 0.6 else other}, "groups": {}}
    table = reports.comparison_markdown({"a": result(0.6, 21.0), "b": result(0.38, 22.0)})
    assert "a T=0.6 PSNR" in table and "b T=0.38 PSNR" in table
    assert "| all | 3 | 1.00 / 0.1000 / - | 1.00 / 0.1000 | 21.00 / 0.5000 / 1.00 / - | " \
           "1.00 / 0.1000 | 22.00 / 0.5000 / 1.00 / - |" in table


def test_kl_bins_is_the_truths_divergence_from_the_predicted_bins():
    # A lopsided pair: the prediction spends half its pixels on a bin the truth never
    # has. By hand, KL(truth || pred) = 0.9 ln(0.9 / 0.45) + 0.1 ln(0.1 / 0.05) = ln 2;
    # the reverse, KL(pred || truth), is over 8 nats (0.5 ln(0.5 / ~1e-8) alone).
    totals = scoring.MethodTotals(num_bins=3)
    totals.bin_counts = np.array([45.0, 5.0, 50.0])
    out = totals.summary(truth_colourfulness=1.0, truth_bins=np.array([90.0, 10.0, 0.0]))
    assert out["kl_bins"] == pytest.approx(np.log(2.0), abs=1e-6)


def test_per_photo_csv_holds_each_photos_own_scores(luma_saved_model, tmp_path):
    # Two sizes, alternating: batches of two come out in size order (0, 2, 1, 3), not
    # path order, so a row given the wrong photo's scores shows in its gray cast.
    sizes = [(24, 30), (20, 26), (24, 30), (20, 26)]
    truths = [make_photo(*size, seed=i) for i, size in enumerate(sizes)]
    paths = [write_png(str(tmp_path / f"p{i}.png"), t) for i, t in enumerate(truths)]
    out = tmp_path / "eval"
    result = reports.evaluate_to(str(out), inference.Colorizer(luma_saved_model), paths,
                                 [0.38], num_figures=0, batch_size=2)
    scores = statistics.read_per_photo(str(out))
    assert sorted(scores) == ["T=0.38", "gray", "mean chroma"]
    for path, truth in zip(paths, truths):
        row = scores["gray"][path]
        # Gray's cast is the truth's mean chroma: OpenCV's float Lab as the oracle.
        ab = cv2.cvtColor(truth.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)[..., 1:]
        assert row["colour_cast"] == pytest.approx(np.linalg.norm(ab.mean((0, 1))), abs=0.05)
        assert "recognised" not in row  # no judge
    for method, files in scores.items():
        assert sorted(files) == sorted(paths)
        for key in ("psnr", "colour_cast", "colourfulness"):
            assert np.mean([s[key] for s in files.values()]) == pytest.approx(
                result["methods"][method][key], rel=1e-5)


def test_paired_difference_by_hand():
    a = {"w": 1.0, "x": 2.0, "y": 3.0, "z": 4.0, "only_a": 9.0}
    b = {"w": 0.0, "x": 0.0, "y": 0.0, "z": 0.0, "only_b": 5.0}
    d = statistics.paired_difference(a, b)
    # Differences 1, 2, 3, 4: mean 2.5, sample variance 5/3, standard error sqrt(5/3)/2.
    assert d["n"] == 4 and d["mean"] == 2.5
    assert d["standard_error"] == pytest.approx(np.sqrt(5 / 3) / 2)
    one = statistics.paired_difference({"w": 1.0}, {"w": 0.5})
    assert one["n"] == 1 and one["mean"] == 0.5 and np.isnan(one["standard_error"])
