"""The SavedModel: signatures, reload and compare with in-process decoding, errors."""
import json
import os
import shutil
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from colorize_tf import cli
from colorize_tf import export
from colorize_tf.chroma.bins import Bins
from colorize_tf.chroma import color
from colorize_tf.serving import graph
from colorize_tf.serving import photo_decoding
from colorize_tf.serving import inference
from colorize_tf.training import exporter
from tests.conftest import make_photo, numpy_oracle, with_exif_orientation


def _png(rgb):
    return cv2.imencode(".png", rgb[..., ::-1].copy())[1].tobytes()


def _jpeg(rgb):
    return cv2.imencode(".jpg", rgb[..., ::-1].copy(), [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


def _serve(path, images, temperature=(0.38,)):
    loaded = tf.saved_model.load(path)
    out = loaded.signatures["serving_default"](image_bytes=tf.constant(images),
                                               temperature=tf.constant(temperature, tf.float32))
    return [tf.io.decode_png(p, channels=3).numpy() for p in out["colorized_png_bytes"].numpy()], \
        [tf.io.decode_png(p).numpy() for p in out["confidence_png_bytes"].numpy()]


def test_layout_signatures_assets(tiny_saved_model):
    path, base = tiny_saved_model
    assert os.path.basename(path) == "1" and not [n for n in os.listdir(base) if "tmp" in n]
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {"serving_default", "colorize_image", "colorize_luma",
                                      "luma_probabilities"}
    by_format = loaded.signatures["colorize_image"]
    assert set(by_format.structured_input_signature[1]) == {"image_bytes", "temperature",
                                                            "output_format"}
    assert set(by_format.structured_outputs) == {"colorized_bytes", "confidence_bytes"}
    signature = loaded.signatures["serving_default"]
    assert set(signature.structured_input_signature[1]) == {"image_bytes", "temperature"}
    assert set(signature.structured_outputs) == {"colorized_png_bytes", "confidence_png_bytes"}
    assets = os.path.join(path, "assets")
    assert {"bins.json", "flags.json", "model_config.json", "export.json"} <= set(
        os.listdir(assets))
    info = json.load(open(os.path.join(assets, "export.json")))
    assert info["bins_fingerprint"] == Bins.load(assets).fingerprint


def test_saved_model_cli_shows_signatures(tiny_saved_model):
    cli_path = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    if not os.path.exists(cli_path):
        pytest.skip("saved_model_cli is not installed beside this python")
    shown = subprocess.run([cli_path, "show", "--dir", tiny_saved_model[0], "--all"],
                           capture_output=True, text=True, timeout=120).stdout
    for name in ["serving_default", "colorize_luma", "image_bytes", "colorized_png_bytes"]:
        assert name in shown


@pytest.mark.parametrize("encode", [_png, _jpeg])
@pytest.mark.parametrize("temperature", [0.2, 1.0])
def test_matches_an_independent_oracle(luma_saved_model, encode, temperature):
    rgb = make_photo(27, 21, seed=4)  # odd size, under the 32 px working size
    data = encode(rgb)
    decoded = tf.io.decode_image(data, channels=3).numpy()
    (served,), (confidence,) = _serve(luma_saved_model, [data], (temperature,))
    assert served.shape == (27, 21, 3) and confidence.shape == (27, 21, 1)
    centres = Bins.load(os.path.join(luma_saved_model, "assets")).centres
    expected = numpy_oracle(decoded, centres, temperature)
    assert np.abs(served - expected).max() <= 2


def test_temperature_is_per_image_and_changes_the_result(luma_saved_model):
    photo = _png(make_photo(16, 24, seed=1))
    other = _png(make_photo(16, 24, seed=2))
    cold, _ = _serve(luma_saved_model, [photo], (0.2,))
    warm, _ = _serve(luma_saved_model, [photo], (1.0,))
    assert np.abs(cold[0].astype(int) - warm[0].astype(int)).mean() > 2.0
    mixed, _ = _serve(luma_saved_model, [other, photo], (1.0, 0.2))
    np.testing.assert_array_equal(mixed[1], cold[0])
    mixed, _ = _serve(luma_saved_model, [photo, other], (0.2, 1.0))
    np.testing.assert_array_equal(mixed[0], cold[0])


def test_large_input_keeps_size_and_luma(tiny_saved_model):
    # A gray photo with pixel-level texture: luma upsampled from the 32 px working
    # size would lose it all (mean error ~0.2), the original luma keeps it.
    noise = np.random.default_rng(5).integers(0, 256, (90, 130, 1), dtype=np.uint8)
    rgb = np.repeat(noise, 3, axis=2)
    (served,), _ = _serve(tiny_saved_model[0], [_png(rgb)])
    assert served.shape == (90, 130, 3)
    space = Bins.load(os.path.join(tiny_saved_model[0], "assets")).grid.color_space
    luma_in = color.rgb_to_luma(rgb / 255.0, space).numpy()
    luma_out = color.rgb_to_luma(served / 255.0, space).numpy()
    # Full-resolution luma is kept (up to 8-bit rounding and gamut clipping).
    assert np.mean(np.abs(luma_in - luma_out)) < 0.01


def test_batch_and_per_image_temperature(tiny_saved_model):
    images = [_png(make_photo(16, 24, seed=i)) for i in range(3)]
    batch, _ = _serve(tiny_saved_model[0], images, (0.38,))
    single, _ = _serve(tiny_saved_model[0], images[1:2], (0.38,))
    np.testing.assert_array_equal(batch[1], single[0])
    per_image, _ = _serve(tiny_saved_model[0], images, (0.38, 1.0, 0.38))
    np.testing.assert_array_equal(per_image[0], batch[0])


@pytest.mark.parametrize("data,temperature,message", [
    (b"", 0.38, "image_bytes is empty"),
    (b"definitely not an image", 0.38, "Unknown image file format"),
    (None, 0.0, "temperature must be a finite number > 0"),
    (None, float("inf"), "temperature must be a finite number > 0"),
    (None, float("nan"), "temperature must be a finite number > 0"),
])
def test_bad_requests_are_invalid_argument(tiny_saved_model, data, temperature, message):
    data = _png(make_photo(8, 8)) if data is None else data
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        _serve(tiny_saved_model[0], [data], (temperature,))


def test_pixel_limit(tiny_run, tmp_path):
    path = exporter.export(tiny_run, str(tmp_path / "limited"), work_size=32, max_pixels=1000)
    with pytest.raises(tf.errors.InvalidArgumentError, match="larger than the limit"):
        _serve(path, [_png(make_photo(40, 40))])
    _serve(path, [_png(make_photo(20, 20))])


def test_colorize_luma_signature(tiny_saved_model):
    loaded = tf.saved_model.load(tiny_saved_model[0])
    luma = tf.random.uniform([2, 13, 17, 1], seed=1)
    out = loaded.signatures["colorize_luma"](luma=luma, temperature=tf.constant([0.38, 1.0]))
    assert set(out) == {"chroma", "confidence"}  # no probabilities unless asked for
    assert out["chroma"].shape == (2, 13, 17, 2)
    assert out["confidence"].shape == (2, 13, 17)
    p = loaded.signatures["luma_probabilities"](luma=luma)["probabilities"].numpy()
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)
    # Oracle in numpy: Zhang et al. 2016 eq. 5 on the probabilities, and their max.
    centres = np.array(json.load(open(os.path.join(tiny_saved_model[0], "assets",
                                                   "bins.json")))["centres"])
    for image, t in enumerate([0.38, 1.0]):
        annealed = p[image].astype(np.float64) ** (1 / t)
        annealed /= annealed.sum(-1, keepdims=True)
        np.testing.assert_allclose(out["chroma"][image], annealed @ centres, atol=1e-5)
    np.testing.assert_allclose(out["confidence"], p.max(-1), atol=1e-6)


def test_colorize_image_signature_formats(tiny_saved_model):
    loaded = tf.saved_model.load(tiny_saved_model[0])
    photos = [_png(make_photo(40, 56, seed=3)), _jpeg(make_photo(30, 20, seed=4))]
    by_format = loaded.signatures["colorize_image"]
    png = loaded.signatures["serving_default"](image_bytes=tf.constant(photos),
                                               temperature=tf.constant([0.38]))
    out = by_format(image_bytes=tf.constant(photos), temperature=tf.constant([0.38]),
                    output_format=tf.constant(["png", "jpeg"]))
    # PNG: byte for byte what serving_default gives; JPEG: the same picture, lossy.
    assert out["colorized_bytes"][0].numpy() == png["colorized_png_bytes"][0].numpy()
    assert out["confidence_bytes"][0].numpy() == png["confidence_png_bytes"][0].numpy()
    for name, png_name in [("colorized_bytes", "colorized_png_bytes"),
                           ("confidence_bytes", "confidence_png_bytes")]:
        jpeg = out[name][1].numpy()
        assert jpeg[:2] == b"\xff\xd8"
        lossless = tf.io.decode_png(png[png_name][1]).numpy().astype(float)
        lossy = tf.io.decode_jpeg(jpeg).numpy().astype(float)
        assert lossy.shape == lossless.shape and np.abs(lossy - lossless).mean() < 3.0
    with pytest.raises(tf.errors.InvalidArgumentError, match="output_format must be one of"):
        by_format(image_bytes=tf.constant(photos), temperature=tf.constant([0.38]),
                  output_format=tf.constant(["gif"]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="one output_format, or one"):
        by_format(image_bytes=tf.constant(photos), temperature=tf.constant([0.38]),
                  output_format=tf.constant(["png", "png", "png"]))


@pytest.mark.parametrize("luma,message", [
    (np.full([1, 4, 4, 1], np.nan), "finite and in"),
    (np.full([1, 4, 4, 1], np.inf), "finite and in"),
    (np.full([1, 4, 4, 1], 1.5), "finite and in"),
    (np.full([1, 4, 4, 1], -0.1), "finite and in"),
    (np.zeros([1, 0, 4, 1]), "luma is empty"),
])
def test_colorize_luma_refuses_bad_luma(tiny_saved_model, luma, message):
    loaded = tf.saved_model.load(tiny_saved_model[0])
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        loaded.signatures["colorize_luma"](luma=tf.constant(luma, tf.float32),
                                           temperature=tf.constant([0.38]))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_as_opencv_shows_it(orientation):
    # OpenCV's IMREAD_COLOR applies the EXIF orientation (it is the oracle here).
    data = with_exif_orientation(_jpeg(make_photo(24, 40, seed=orientation)), orientation)
    expected = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    eager = photo_decoding.decode_rgb(tf.constant(data)).numpy()
    traced = tf.function(photo_decoding.decode_rgb)(tf.constant(data)).numpy()
    for rgb in (eager, traced):
        assert rgb.shape == expected.shape
        # libjpeg builds differ by a few levels; a wrong turn differs by ~50 on average.
        assert np.abs(rgb.astype(float) - expected).mean() < 3.0


def test_orientation_of_odd_bytes_is_one():
    for data in [b"\xff\xd8Exif\x00\x00", b"\xff\xd8Exif\x00\x00II*\x00\xff\xff\xff\xff",
                 b"\xff\xd8", b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12"]:
        assert int(photo_decoding._exif_orientation(tf.constant(data))) == 1


def test_alpha_is_composited_over_white_as_in_data_prep():
    from data_prep import prepare
    rgba = np.zeros((6, 6, 4), np.uint8)
    rgba[..., 0] = 200  # red, with alpha 0 (left half) and 255 (right half)
    rgba[:, 3:, 3] = 255
    png = cv2.imencode(".png", rgba[..., [2, 1, 0, 3]])[1].tobytes()
    served = photo_decoding.decode_rgb(tf.constant(png)).numpy()
    prepared, _ = prepare.decode_image(png)
    np.testing.assert_array_equal(served[:, :3], 255)  # transparent -> white
    np.testing.assert_array_equal(served[:, 3:], np.tile([200, 0, 0], (6, 3, 1)))
    np.testing.assert_array_equal(served, prepared)


def test_served_phone_photo_is_upright(tiny_saved_model):
    data = with_exif_orientation(_jpeg(make_photo(24, 40, seed=3)), 6)  # stored sideways
    (out,), _ = _serve(tiny_saved_model[0], [data])
    assert out.shape == (40, 24, 3)


def test_tfsm_layer(tiny_saved_model):
    # Keras calls endpoints positionally, so it uses the module's functions (serve,
    # luma_to_chroma); the signatures of the same functions take keywords only.
    luma = keras.layers.TFSMLayer(tiny_saved_model[0], call_endpoint="luma_to_chroma")
    out = luma(tf.zeros([1, 8, 8, 1]), temperature=tf.constant([0.38]))
    assert out["chroma"].shape == (1, 8, 8, 2)
    serve = keras.layers.TFSMLayer(tiny_saved_model[0], call_endpoint="serve")
    out = serve(tf.constant([_png(make_photo(9, 11))]), temperature=tf.constant([0.38]))
    assert tf.io.decode_png(out["colorized_png_bytes"][0]).shape == (9, 11, 3)


def test_versions_and_refusals(tiny_run, tmp_path):
    base = str(tmp_path / "m")
    assert exporter.export(tiny_run, base, work_size=32).endswith("/1")
    assert exporter.export(tiny_run, base, work_size=32).endswith("/2")
    with pytest.raises(exporter.ExportError, match="never overwritten"):
        exporter.export(tiny_run, base, version=2)
    with pytest.raises(exporter.ExportError, match="no checkpoint"):
        exporter.export(str(tmp_path), base)
    for kwargs, message in [({"version": -1}, "version must be a positive"),
                            ({"work_size": 5}, "work_size must be >= 16")]:
        with pytest.raises(exporter.ExportError, match=message):
            exporter.export(tiny_run, base, **kwargs)
    # A killed export's temp dir is removed by the next export; none is left after one.
    os.makedirs(os.path.join(base, ".3.tmp-999999999"))
    assert exporter.export(tiny_run, base, work_size=32).endswith("/3")
    assert sorted(os.listdir(base)) == ["1", "2", "3"]


def test_damaged_checkpoint_is_a_clear_refusal(tiny_run, tmp_path):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    best = run / "checkpoints" / "best.keras"
    best.write_bytes(best.read_bytes()[:500])
    with pytest.raises(exporter.ExportError,
                       match="cannot load .*damaged: try checkpoint=last .export "
                             "--checkpoint=last."):
        exporter.export(str(run), str(tmp_path / "m"))


def test_warmup_requests(tiny_saved_model):
    prediction_log_pb2 = pytest.importorskip("tensorflow_serving.apis.prediction_log_pb2")
    path = os.path.join(tiny_saved_model[0], "assets.extra", exporter.WARMUP_FILE)
    (record,) = list(tf.data.TFRecordDataset(path).as_numpy_iterator())
    request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
    assert request.model_spec.signature_name == "serving_default"
    assert request.model_spec.name == "tiny"
    images = tf.make_ndarray(request.inputs["image_bytes"])
    served, _ = _serve(tiny_saved_model[0], list(images),
                       tf.make_ndarray(request.inputs["temperature"]))
    assert served[0].shape == (48, 64, 3)


def test_a_depth_4_model_exports_and_serves_odd_sizes(tiny_records, tmp_path):
    # Four poolings: the graph must pad to a multiple of 16 (2^depth), not 8.
    from colorize_tf import train
    from colorize_tf.training import trainer
    from colorize_tf.training.config import TrainConfig
    values, _ = cli.parse(train.define_flags, [
        "train", f"--flagfile={os.path.dirname(os.path.dirname(__file__))}/colorize_tf/"
        "configs/smoke.flags", f"--records_dir={tiny_records}",
        f"--model_dir={tmp_path}/run", "--depth=4", "--epochs=1", "--num_log_images=0"])
    trainer.run(TrainConfig.from_flags(values))
    path = exporter.export(str(tmp_path / "run"), str(tmp_path / "m"), work_size=40)
    info = json.load(open(os.path.join(path, "assets", "export.json")))
    assert info["pad_log2"] == 4 and "depth" not in info  # depth: the model's cells
    # Exports from before the split named it depth: still read as the pad multiple.
    before = {**{k: v for k, v in info.items() if k != "pad_log2"}, "depth": 2}
    assert graph.ExportInfo.from_dict(before).pad_log2 == 2
    (out,), _ = _serve(path, [_png(make_photo(27, 37, seed=1))])
    assert out.shape == (27, 37, 3)


def test_reexport_from_a_saved_model_keeps_weights_and_settings(tiny_saved_model, tmp_path):
    # The run is not needed: the weights, bins and decoder come from the SavedModel.
    path = exporter.export_from_saved_model(tiny_saved_model[0], str(tmp_path / "again"))
    assert os.path.basename(path) == "1"
    old_info = graph.ExportInfo.load(tiny_saved_model[0])
    assert graph.ExportInfo.load(path) == old_info
    photos = [_png(make_photo(33, 47, seed=5)), _jpeg(make_photo(20, 30, seed=6))]
    for before, after in zip(_serve(tiny_saved_model[0], photos), _serve(path, photos)):
        for a, b in zip(before, after):
            np.testing.assert_array_equal(a, b)


def test_tint_correction_reaches_the_graph_and_the_python_render(tiny_saved_model, tmp_path):
    # Re-exported with tint correction 1: decoder.json carries it with the bins'
    # weights, a later re-export keeps it, and the served photo is the Python render's
    # (the same decoding) and differs from the uncorrected one's.
    path = exporter.export_from_saved_model(tiny_saved_model[0], str(tmp_path / "t"),
                                            tint_correction=1.0)
    decoder = json.load(open(os.path.join(path, "assets", "decoder.json")))
    bins = Bins.load(os.path.join(path, "assets", "bins.json"))
    assert decoder["tint_correction"] == 1.0
    np.testing.assert_allclose(decoder["weights"], bins.weights)
    again = exporter.export_from_saved_model(path, str(tmp_path / "again"))
    assert inference.Colorizer(again).decoder.tint_correction == 1.0
    photo = make_photo(29, 41, seed=2)
    (served,), _ = _serve(path, [_png(photo)])
    colorizer = inference.Colorizer(path)
    luma, probabilities = colorizer.predict_probabilities(photo)
    rendered = colorizer.render(luma, probabilities, 0.38)[0]
    assert np.abs(served.astype(int) - rendered).max() <= 1
    # Exports of the same weights serve bit-identical photos (the test above), so
    # every changed value is the correction's (this untrained model's is small).
    (plain,), _ = _serve(tiny_saved_model[0], [_png(photo)])
    assert (served != plain).mean() > 0.2
    with pytest.raises(exporter.ExportError, match=r"tint_correction must be in \[0, 1\]"):
        exporter.export_from_saved_model(path, str(tmp_path / "bad"), tint_correction=-0.5)


def test_tint_correction_of_a_model_without_joint_bins_is_refused_before_its_weights_load(
        tiny_run, tmp_path, monkeypatch):
    # The run's model config names its decoding: a per-channel run is refused from it,
    # before the (slow, for a real model) load of its weights.
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    config = json.load(open(run / "model_config.json"))
    config["model"]["decoding"] = "per_channel"
    json.dump(config, open(run / "model_config.json", "w"))

    def load_trained_model(*args, **kwargs):
        raise AssertionError("the weights were loaded first")
    monkeypatch.setattr(exporter, "load_trained_model", load_trained_model)
    with pytest.raises(exporter.ExportError,
                       match="tint_correction needs a model over joint bins; this one's "
                             "decoding is 'per_channel'"):
        exporter.export(str(run), str(tmp_path / "out"), tint_correction=0.5)


def test_reexport_refuses_what_is_not_a_saved_model(tmp_path):
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "saved_model.pb").write_bytes(b"")
    with pytest.raises(inference.ModelError, match="not a SavedModel of colorize_tf"):
        exporter.export_from_saved_model(str(tmp_path), str(tmp_path / "out"))


@pytest.mark.parametrize("args,message", [
    (["--export_dir=out"], "one of --model_dir or --from_saved_model"),
    (["--model_dir=a", "--from_saved_model=b", "--export_dir=out"],
     "one of --model_dir or --from_saved_model"),
    (["--from_saved_model=/nonexistent", "--export_dir=out"], "is not a folder"),
    (["--model_dir=.", "--export_dir=out", "--max_pixels=-1"], "must be >= 0"),
    (["--model_dir=.", "--export_dir=out", "--tint_correction=2"], "must be at most 1"),
    (["--model_dir=.", "--export_dir=out", "--interpolate_from=/nonexistent"],
     "--interpolate_from '/nonexistent' is not a folder"),
    (["--model_dir=.", "--export_dir=out", "--interpolate_from=.", "--interpolation=1.5"],
     "--interpolation must be in [0, 1]"),
])
def test_cli_refuses_bad_flags_in_one_line(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        export.main(["export", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def _coherent_rgb_oracle(rgb_uint8, centres, temperature, sigma, strength, sharpness=0.5):
    """numpy only: the luma-following model's logits (conftest.numpy_oracle's formula),
    the coherent decoding's oracle (tests/test_decoding.py), BT.601 YUV back to RGB."""
    from tests.test_decoding import _coherent_oracle
    y = rgb_uint8.astype(np.float64) / 255.0 @ np.array([0.299, 0.587, 0.114])
    n = len(centres)
    b = np.arange(n)
    logits = sharpness * (b * (y[..., None] * (n - 1)) - b ** 2 / 2)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    u, v = np.moveaxis(_coherent_oracle(p / p.sum(-1, keepdims=True), centres, temperature,
                                        sigma, strength), -1, 0)
    out = np.stack([y + 1.13983 * v, y - 0.39465 * u - 0.58060 * v, y + 2.03211 * u], -1)
    return np.clip(np.round(out * 255.0), 0, 255)


def test_coherent_decoding_in_every_signature_and_the_python_path(luma_run, tmp_path):
    # Smoothing and a flat-raised temperature, exported: the served photo (graph), the
    # luma signature's chroma (graph) and the Python path (probabilities, then
    # decoder.chroma, as evaluate and video do) all equal the numpy oracle.
    sigma, strength, temperature = 1.5, 0.6, 0.38
    path = exporter.export(luma_run, str(tmp_path / "coherent"), work_size=32,
                           guided_radius=0, coherence=(sigma, strength))
    decoder = json.load(open(os.path.join(path, "assets", "decoder.json")))
    assert (decoder["smoothing_sigma"], decoder["flat_temperature"]) == (sigma, strength)
    rgb = make_photo(20, 26, seed=7)
    centres = Bins.load(os.path.join(path, "assets")).centres
    expected = _coherent_rgb_oracle(rgb, centres, temperature, sigma, strength)
    plain = numpy_oracle(rgb, centres, temperature)
    assert np.abs(expected - plain).max() > 8  # the setting changes the colours
    (served,), _ = _serve(path, [_png(rgb)], (temperature,))
    assert np.abs(served.astype(int) - expected).max() <= 2
    colorizer = inference.Colorizer(path)
    luma, probabilities = colorizer.predict_probabilities(rgb)
    rendered, _ = colorizer.render(luma, probabilities, temperature)
    assert np.abs(rendered.astype(int) - expected).max() <= 2
    chroma = tf.saved_model.load(path).signatures["colorize_luma"](
        luma=tf.constant(luma[None], tf.float32),
        temperature=tf.constant([temperature]))["chroma"].numpy()[0]
    from tests.test_decoding import _coherent_oracle
    y = rgb.astype(np.float64) / 255.0 @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(chroma, _coherent_oracle(
        probabilities, centres, temperature, sigma, strength), atol=2e-3)
    assert y.shape == chroma.shape[:2]


def test_export_refuses_impossible_coherence_settings(tiny_run, tmp_path):
    with pytest.raises(exporter.ExportError, match="smoothing_sigma must be a finite"):
        exporter.export(tiny_run, str(tmp_path / "x"), coherence=(float("nan"), 0.0))
    with pytest.raises(exporter.ExportError, match=r"flat_temperature must be in \[0, 1\]"):
        exporter.export(tiny_run, str(tmp_path / "x"), coherence=(0.0, 2.0))


def test_interpolated_export_mixes_the_weights_and_says_so(tiny_run, tiny_saved_model,
                                                            tmp_path):
    # A "fine-tuned" run: tiny_run's checkpoints with every weight moved by noise. Its
    # export interpolated with tiny_saved_model (the same architecture and bins) holds
    # numpy's 0.7 x base + 0.3 x tuned in every variable, says where its weights came
    # from, serves, and a re-export of it keeps its weights and their provenance.
    run = tmp_path / "tuned"
    shutil.copytree(tiny_run, run)
    model = keras.models.load_model(run / "checkpoints" / "best.keras", compile=False)
    rng = np.random.default_rng(4)
    model.set_weights([w + rng.normal(scale=0.1, size=w.shape).astype(np.float32)
                       for w in model.get_weights()])
    for name in ("best.keras", "last.keras"):
        model.save(run / "checkpoints" / name)
    tuned = exporter.export(str(run), str(tmp_path / "plain"), work_size=32)
    mixed = exporter.export(str(run), str(tmp_path / "mixed"), work_size=32,
                            interpolation=(tiny_saved_model[0], 0.3))
    weights = [inference.load_keras_model(p)[0].get_weights()
               for p in (tiny_saved_model[0], tuned, mixed)]
    assert len(weights[2]) > 20
    for b, t, m in zip(*weights):
        np.testing.assert_allclose(m, 0.7 * b + 0.3 * t, rtol=1e-5, atol=1e-6)
    assert not np.allclose(weights[2][0], weights[1][0])
    info = graph.ExportInfo.load(mixed)
    assert info.weights.startswith("0.3 x this model's + 0.7 x those of ")
    assert graph.ExportInfo.load(tuned).weights == ""
    (out,), _ = _serve(mixed, [_png(make_photo(20, 28, seed=3))])
    assert out.shape == (20, 28, 3)
    again = exporter.export_from_saved_model(mixed, str(tmp_path / "again"))
    assert graph.ExportInfo.load(again).weights == info.weights
    for a, b in zip(inference.load_keras_model(again)[0].get_weights(), weights[2]):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(exporter.ExportError, match=r"share must be in \[0, 1\]"):
        exporter.export_from_saved_model(tuned, str(tmp_path / "bad"),
                                         interpolation=(tiny_saved_model[0], 2.0))


def test_a_damaged_decoder_file_is_refused_in_one_line(tiny_run, tmp_path):
    # Issue 41: a garbage decoder.json in the run reached the user as a KeyError.
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "decoder.json").write_text('{"kind": "bins", "centres": [[0, 0]]}')
    result = subprocess.run([sys.executable, "-m", "colorize_tf.export", f"--model_dir={run}",
                             f"--export_dir={tmp_path / 'm'}"],
                            capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert result.returncode == 2, result.stderr
    assert f"export: error: {str(run / 'decoder.json')!r} is not a decoder file: it has 1 " \
           "bin centres where the model's bins have" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list((tmp_path / "m").glob("*"))  # no version, no temp folder
