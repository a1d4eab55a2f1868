"""Colour hints: simulated from the truth, placed from a user's points, the hints model,
its signatures and its entry points."""
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from colorize_tf import serving_api
from colorize_tf.chroma import hints
from colorize_tf.data import input_pipeline
from colorize_tf.modeling.model import ModelConfig, build_model, warm_start
from colorize_tf.serving import inference
from colorize_tf.training.config import ConfigError
from tests.conftest import make_photo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Pure red in BT.601 YUV: the U and V rows of the published matrix, first column... of R=1.
RED_UV = (-0.14714119, 0.61497538)


def _seed(i, j=0):
    return tf.constant([i, j], tf.int64)


def _squares(mask):
    """Connected squares of a binary [H, W] map painted by one point each -> [(top,
    left, side)] (the test images keep them apart)."""
    count, labels = cv2.connectedComponents(mask.astype(np.uint8))
    out = []
    for k in range(1, count):
        ys, xs = np.nonzero(labels == k)
        out.append((ys.min(), xs.min(), ys.max() - ys.min() + 1, xs.max() - xs.min() + 1))
    return out


def test_a_simulated_hint_is_the_mean_colour_of_its_square():
    chroma = np.random.default_rng(0).uniform(-0.5, 0.5, (40, 50, 2)).astype(np.float32)
    for seed in range(20):
        hint_chroma, hint_mask = hints.simulate(chroma, np.ones((40, 50, 1), np.float32),
                                                _seed(seed), 1)
        hint_chroma, hint_mask = hint_chroma.numpy(), hint_mask.numpy()[..., 0]
        (top, left, height, width), = _squares(hint_mask)
        assert height == width and 1 <= height <= 9
        patch = chroma[top:top + height, left:left + width]
        np.testing.assert_allclose(hint_chroma[top, left], patch.mean(axis=(0, 1)),
                                   atol=1e-5)
        assert np.all(hint_chroma[hint_mask == 0] == 0)


def test_simulated_hints_count_and_seed():
    chroma = tf.random.uniform([64, 64, 2], seed=1)
    mask = tf.ones([64, 64, 1])
    assert hints.simulate(chroma, mask, _seed(1), 0)[1].numpy().sum() == 0
    a = hints.simulate(chroma, mask, _seed(1))
    b = hints.simulate(chroma, mask, _seed(1))
    c = hints.simulate(chroma, mask, _seed(2))
    assert np.array_equal(a[1], b[1]) and np.array_equal(a[0], b[0])
    assert not np.array_equal(a[1], c[1])


def test_number_of_hints_follows_zhangs_geometric_distribution():
    # Counted as points: one 1 px square each on a large image, so that none overlap much.
    counts = []
    for seed in range(400):
        uniform = tf.random.stateless_uniform([], tf.random.experimental.stateless_fold_in(
            _seed(seed), 0), 1e-7, 1.0)
        counts.append(min(int(np.floor(np.log(uniform.numpy()) / np.log(7 / 8))), 32))
    counts = np.array(counts)
    # Geometric(1/8) from 0: P(0) = 1/8, mean (1 - p) / p = 7 (cut at 32: 6.77).
    assert abs(np.mean(counts == 0) - 0.125) < 0.05
    assert 5.8 < counts.mean() < 7.8
    # and simulate() draws that many: with no overlap and all inside, squares = count
    chroma = tf.zeros([512, 512, 2])
    drawn = hints.simulate(chroma, tf.ones([512, 512, 1]), _seed(7))[1].numpy()[..., 0]
    assert 0 <= len(_squares(drawn)) <= 32


def test_simulated_hints_stay_inside_the_mask():
    mask = np.zeros((40, 40, 1), np.float32)
    mask[10:30, 5:35] = 1.0
    for seed in range(20):
        hint_mask = hints.simulate(tf.ones([40, 40, 2]), mask, _seed(seed), 10)[1].numpy()
        assert np.all(hint_mask[mask == 0] == 0)


def test_user_points_become_squares_of_their_colour():
    points = tf.constant([[0.0, 0.0], [1.0, 1.0], [-1.0, -1.0], [0.5, 0.25]])
    colors = tf.constant([[255, 0, 0], [255, 0, 0], [0, 0, 0], [0, 0, 255]], tf.uint8)
    hint_chroma, hint_mask = hints.from_points(points, colors, 10, 12, "yuv")
    hint_chroma, hint_mask = hint_chroma.numpy(), hint_mask.numpy()[..., 0]
    assert sorted(_squares(hint_mask)) == [(0, 0, 3, 3), (4, 2, 3, 3), (7, 9, 3, 3)]
    np.testing.assert_allclose(hint_chroma[0, 0], RED_UV, atol=1e-6)
    np.testing.assert_allclose(hint_chroma[9, 11], RED_UV, atol=1e-6)
    np.testing.assert_allclose(hint_chroma[5, 3], (0.43601035, -0.10001026), atol=1e-6)


@pytest.mark.parametrize("points,message", [
    ([[[0.5, 1.5]]], "outside the image"), ([[[np.nan, 0.5]]], "outside the image")])
def test_bad_points_are_refused(points, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        hints.check_points(tf.constant(points, tf.float32), tf.zeros([1, 1, 3], tf.uint8))


def test_point_arrays_pad_and_refuse():
    points, colors = hints.point_arrays(
        [[{"point": [0.1, 0.2], "color": [1, 2, 3]}], None, []])
    assert points.shape == (3, 1, 2) and colors.shape == (3, 1, 3)
    assert points[0, 0].tolist() == pytest.approx([0.1, 0.2]) and colors[0, 0].tolist() == [1, 2, 3]
    assert np.all(points[1:] < 0)
    for bad, message in [({"point": [0.1, 1.2], "color": [1, 2, 3]}, "point"),
                         ({"point": [0.1, 0.2], "color": [1, 2, 300]}, "color"),
                         ({"point": [0.1, 0.2], "color": [1.5, 2, 3]}, "color"),
                         ({"point": [0.1, 0.2]}, "a hint is")]:
        with pytest.raises(ValueError, match=message):
            hints.point_arrays([[bad]])


def test_warm_started_hints_model_computes_what_its_source_does():
    source = build_model(ModelConfig(num_bins=6, base_filters=4), seed=3)
    config = ModelConfig(num_bins=6, base_filters=4, hints=True, hint_scale=2.0)
    hinted = build_model(config, seed=5)
    copied = warm_start(hinted, source)
    assert "down1_a_conv" in copied and "logits" in copied
    kernel = hinted.get_layer("down1_a_conv").get_weights()[0]
    assert kernel.shape[2] == 4 and np.all(kernel[:, :, 1:] == 0)
    luma = tf.random.uniform([2, 16, 16, 1], seed=2)
    no_hints = {serving_api.LUMA: luma, serving_api.HINT_CHROMA: tf.zeros([2, 16, 16, 2]),
                serving_api.HINT_MASK: tf.zeros([2, 16, 16, 1])}
    np.testing.assert_allclose(hinted(no_hints), source(luma), atol=1e-5)
    with pytest.raises(ValueError, match="cannot take"):
        warm_start(build_model(
            ModelConfig(num_bins=6, base_filters=8)), source)


def test_pipeline_gives_hints_with_the_luma(tiny_records):
    from colorize_tf.chroma.bins import Bins
    from colorize_tf.data import records
    bins = Bins.load(tiny_records)
    config = input_pipeline.PipelineConfig(crop_size=32, hints=True, shuffle_buffer=8)
    dataset = input_pipeline.make_dataset(records.shard_pattern(tiny_records, "train"), bins,
                                          2, True, config, epochs=1, steps_per_epoch=2)
    inputs, targets = next(iter(dataset))
    assert set(inputs) == {serving_api.LUMA, serving_api.HINT_CHROMA, serving_api.HINT_MASK}
    assert inputs[serving_api.HINT_CHROMA].shape == (2, 32, 32, 2)
    # A hint's chroma is the mean true chroma of its square: within the range of the
    # true chroma of the batch.
    truth = input_pipeline.unpack_targets(targets).chroma.numpy()
    hinted = inputs[serving_api.HINT_MASK].numpy()[..., 0] > 0
    values = inputs[serving_api.HINT_CHROMA].numpy()[hinted]
    assert np.all(values >= truth.min(axis=(0, 1, 2)) - 1e-5)
    assert np.all(values <= truth.max(axis=(0, 1, 2)) + 1e-5)
    again = next(iter(dataset))[0]
    assert np.array_equal(again[serving_api.HINT_MASK], inputs[serving_api.HINT_MASK])


def _png(rgb):
    return cv2.imencode(".png", rgb[..., ::-1].copy())[1].tobytes()


def _decode(png):
    return tf.io.decode_png(png, channels=3).numpy().astype(int)


def test_a_hint_colours_around_it_and_not_far_away(hints_saved_model):
    colorizer = inference.Colorizer(hints_saved_model)
    assert colorizer.takes_hints
    photo = np.full((64, 64, 3), 128, np.uint8)
    plain = colorizer.colorize(photo)
    red = colorizer.colorize(photo, hints=[{"point": (0.25, 0.25), "color": (230, 20, 20)}])
    near, far = red[16, 16].astype(int), red[56, 56]
    # redder where the hint is (the tiny model's 8 bins hold no pure red: its nearest)
    assert near[0] > max(near[1], near[2]) + 25
    assert near[0] - near[2] > int(plain[16, 16, 0]) - int(plain[16, 16, 2]) + 25
    assert np.abs(far.astype(int) - plain[56, 56]).max() <= 1  # untouched far away
    # no hints at all: the plain path's very bytes
    image = _png(make_photo(40, 56, seed=3))
    with_none = colorizer.colorize_bytes([image, image], 0.38, hints=[[], None])
    assert with_none == colorizer.colorize_bytes([image, image], 0.38)


def test_hints_signature_over_the_wire_form(hints_saved_model):
    loaded = tf.saved_model.load(hints_saved_model)
    signature = loaded.signatures[serving_api.HINTS_SIGNATURE]
    image = _png(np.full((48, 48, 3), 128, np.uint8))
    out = signature(image_bytes=tf.constant([image, image]), temperature=tf.constant([0.38]),
                    hint_points=tf.constant([[[0.5, 0.5]], [[-1.0, -1.0]]]),
                    hint_colors=tf.constant([[[20, 20, 230]], [[0, 0, 0]]], tf.uint8))
    blue, gray = (_decode(p) for p in out[serving_api.COLORIZED_PNG].numpy())
    assert blue[24, 24, 2] > blue[24, 24, 0] + 25
    assert np.abs(gray - _decode(loaded.signatures["serving_default"](
        image_bytes=tf.constant([image]), temperature=tf.constant([0.38]))[
            serving_api.COLORIZED_PNG].numpy()[0])).max() == 0
    for points, colors, message in [
            ([[[0.5, 1.5]], [[0.1, 0.1]]], [[[0, 0, 0]], [[0, 0, 0]]], "outside the image"),
            ([[[0.5, 0.5]]], [[[0, 0, 0]]], "for each image")]:
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            signature(image_bytes=tf.constant([image, image]), temperature=tf.constant([0.38]),
                      hint_points=tf.constant(points, tf.float32),
                      hint_colors=tf.constant(colors, tf.uint8))


def test_models_without_hints_say_so(tiny_saved_model):
    colorizer = inference.Colorizer(tiny_saved_model[0])
    assert not colorizer.takes_hints
    assert serving_api.HINTS_SIGNATURE not in tf.saved_model.load(
        tiny_saved_model[0]).signatures
    with pytest.raises(ValueError, match="takes no colour hints"):
        colorizer.colorize(np.zeros((8, 8), np.uint8),
                           hints=[{"point": (0.5, 0.5), "color": (1, 2, 3)}])


def test_colorize_cli_takes_a_hints_file(hints_saved_model, tiny_saved_model, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    gray = np.full((40, 40, 3), 128, np.uint8)
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(photos / name), gray)
    hints_file = tmp_path / "hints.json"
    hints_file.write_text(json.dumps({
        "a.png": [{"point": [0.5, 0.5], "color": [230, 20, 20]}],
        "missing.png": [{"point": [0.5, 0.5], "color": [230, 20, 20]}]}))

    def colorize(*args):
        return subprocess.run([sys.executable, "-m", "colorize_tf.colorize", *args],
                              cwd=REPO, capture_output=True, text=True, timeout=300)
    result = colorize(f"--saved_model={hints_saved_model}", f"--hints={hints_file}",
                      f"--output_dir={tmp_path / 'out'}", str(photos))
    assert result.returncode == 0, result.stderr
    assert "missing.png: --hints names a file that is not among the inputs" in result.stdout
    a = cv2.imread(str(tmp_path / "out" / "photos" / "a.png"))[..., ::-1].astype(int)
    b = cv2.imread(str(tmp_path / "out" / "photos" / "b.png"))[..., ::-1].astype(int)
    assert a[20, 20, 0] - a[20, 20, 2] > b[20, 20, 0] - b[20, 20, 2] + 25
    bad = tmp_path / "bad.json"
    for content, message in [("{", "cannot be read as JSON"),
                             ('{"a.png": [{"point": [2, 0], "color": [1, 2, 3]}]}',
                              "a.png: a hint's point")]:
        bad.write_text(content)
        result = colorize(f"--saved_model={hints_saved_model}", f"--hints={bad}",
                          f"--output_dir={tmp_path / 'out2'}", str(photos))
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    result = colorize(f"--saved_model={tiny_saved_model[0]}", f"--hints={hints_file}",
                      f"--output_dir={tmp_path / 'out3'}", str(photos))
    assert result.returncode == 2 and "takes no colour hints" in result.stderr
    # Two entries for one photo: which one was meant cannot be told.
    hints_file.write_text(json.dumps({
        "a.png": [{"point": [0.5, 0.5], "color": [230, 20, 20]}],
        "photos/a.png": [{"point": [0.5, 0.5], "color": [20, 20, 230]}]}))
    result = colorize(f"--saved_model={hints_saved_model}", f"--hints={hints_file}",
                      f"--output_dir={tmp_path / 'out4'}", str(photos))
    assert result.returncode == 2 and "'a.png' and 'photos/a.png' both name" in result.stderr
    assert not os.path.exists(tmp_path / "out4" / "photos" / "a.png")
    # evaluate --hints: no more hints than the working size has points (32 x 32 here).
    evaluated = subprocess.run(
        [sys.executable, "-m", "colorize_tf.evaluate", f"--saved_model={hints_saved_model}",
         f"--images_dir={photos}", "--hints=0,100000", f"--output_dir={tmp_path / 'ev'}"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert evaluated.returncode == 2 and "100000 hints are more than the 1024 points" in \
        evaluated.stderr, evaluated.stderr
    assert not os.path.exists(tmp_path / "out2") or not os.listdir(tmp_path / "out2")


def test_train_a_hints_model_from_one_without(tiny_records, tiny_saved_model, tmp_path):
    from colorize_tf import cli
    from colorize_tf import train
    from colorize_tf.training import exporter
    from colorize_tf.training import trainer
    from colorize_tf.training.config import TrainConfig

    def config(model_dir, *extra):
        values, _ = cli.parse(train.define_flags, [
            "train", f"--flagfile={REPO}/colorize_tf/configs/smoke.flags",
            f"--records_dir={tiny_records}", f"--model_dir={model_dir}", "--epochs=1",
            "--verbose=0", "--num_log_images=1", "--hints", *extra])
        return TrainConfig.from_flags(values)
    trainer.run(config(tmp_path / "run", f"--warm_start={tiny_saved_model[0]}"))
    with open(tmp_path / "run" / "model_config.json") as f:
        model_config = json.load(f)["model"]
    assert model_config["hints"] and model_config["hint_scale"] > 1.0
    path = exporter.export(str(tmp_path / "run"), str(tmp_path / "exported"), work_size=32)
    assert inference.Colorizer(path).takes_hints
    with pytest.raises(ConfigError, match="not a folder"):
        config(tmp_path / "b", f"--warm_start={tmp_path / 'none'}").check()
    with pytest.raises(inference.ModelNotFound, match="no SavedModel"):
        trainer.run(config(tmp_path / "c", f"--warm_start={tmp_path}"))
    # Issue 41: variables cut short escaped as IndexError("Read less bytes ...").
    shutil.copytree(tiny_saved_model[0], tmp_path / "cut")
    (data,) = (tmp_path / "cut" / "variables").glob("variables.data-*")
    data.write_bytes(data.read_bytes()[:data.stat().st_size // 2])
    with pytest.raises(inference.ModelError, match=r"cannot read the weights of .*cut': its "
                       r"variables/ are damaged or cut short \(IndexError"):
        trainer.run(config(tmp_path / "e", f"--warm_start={tmp_path / 'cut'}"))
    with pytest.raises(ConfigError, match="no heads, no hints"):
        config(tmp_path / "d", "--architecture=zhang_small").check()


def test_hints_over_tf_servings_rest_api(hints_saved_model):
    """The row format the issue gives, through the local TF Serving REST server; a bad
    colour is InvalidArgument (400), as TF Serving's JSON parser answers it."""
    import base64
    import urllib.error
    import urllib.request
    from colorize_tf.serving import server
    image = base64.b64encode(_png(np.full((48, 48, 3), 128, np.uint8))).decode()

    def post(url, body):
        request = urllib.request.Request(f"{url}/v1/models/hints:predict",
                                         json.dumps(body).encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)

    def instance(color):
        return {"image_bytes": {"b64": image}, "temperature": 0.38,
                "hint_points": [[0.5, 0.5]], "hint_colors": [color]}
    with server.running_server(os.path.dirname(hints_saved_model), "hints") as (url, _):
        status, body = post(url, {"signature_name": serving_api.HINTS_SIGNATURE,
                                  "instances": [instance([20, 20, 230])]})
        assert status == 200, body
        png = base64.b64decode(body["predictions"][0][serving_api.COLORIZED_PNG]["b64"])
        blue = _decode(png)
        assert blue[24, 24, 2] > blue[24, 24, 0] + 25
        status, body = post(url, {"signature_name": serving_api.HINTS_SIGNATURE,
                                  "instances": [instance([20, 20, 300])]})
        assert status == 400 and "300" in body["error"], body


def test_hints_for_a_different_number_of_photos_are_one_clear_error(hints_saved_model):
    # Issue 41: colorize() given two photos' hints said "a hint is ..., got [{...}]", and
    # colorize_bytes given one photo's hints unwrapped said "got 'point'".
    colorizer = inference.Colorizer(hints_saved_model)
    hint = {"point": (0.5, 0.5), "color": (200, 10, 10)}
    gray = np.full((40, 40), 128, np.uint8)
    png = _png(np.full((40, 40, 3), 128, np.uint8))
    for call, message in [
            (lambda: colorizer.colorize(gray, hints=[[hint], [hint]]),
             r"colorize\(\) takes one photo's hints.* got a list of 2 holding lists"),
            (lambda: colorizer.colorize_bytes([png], hints=[[hint], [hint]]),
             "one list per image, got 2 for 1 image$"),
            (lambda: colorizer.colorize_bytes([png], hints=hint),
             "one list per image, got a dict for 1 image$"),
            (lambda: colorizer.colorize_bytes([png], hints=[hint]),
             r"the hints of image 0 must be a list of hints \(or None\), got dict: .* "
             r"a batch of one is \[\[hint, ...\]\]")]:
        with pytest.raises(ValueError, match=message):
            call()
    assert len(colorizer.colorize_bytes([png], hints=[[hint]])) == 1
