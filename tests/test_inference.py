"""Where the default model is found: a checkout, a plain pip install, or the env."""
import os
import re
import sys

import numpy as np
import pytest

from colorize_tf import presets
from colorize_tf.serving import inference
from colorize_tf.testing.fake_data import make_photo


def test_default_model_location(tmp_path, monkeypatch):
    monkeypatch.delenv(inference.SAVED_MODEL_ENV, raising=False)
    # In a checkout (this one): its own saved_models/.
    assert inference.default_saved_model().endswith(
        os.path.join("saved_models", presets.default().folder))
    # Installed with `pip install .`: no checkout beside the package, the model under
    # <prefix>/share/colorize_tf/saved_models (setup.py's data files).
    monkeypatch.setattr(presets, "__file__", str(tmp_path / "site" / "colorize_tf" / "x.py"))
    installed = tmp_path / "prefix" / "share" / "colorize_tf" / "saved_models" / \
        presets.default().folder
    installed.mkdir(parents=True)
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "prefix"))
    assert inference.default_saved_model() == str(installed)
    # The environment variable wins.
    monkeypatch.setenv(inference.SAVED_MODEL_ENV, "/models/mine")
    assert inference.default_saved_model() == "/models/mine"


def test_the_default_model_is_looked_up_when_a_colorizer_is_built(luma_saved_model,
                                                                  monkeypatch, tmp_path):
    # Set after the import: a Colorizer built now uses it (the default is not frozen).
    monkeypatch.setenv(inference.SAVED_MODEL_ENV, luma_saved_model)
    assert inference.Colorizer().path == luma_saved_model
    monkeypatch.setenv(inference.SAVED_MODEL_ENV, str(tmp_path))
    with pytest.raises(inference.ModelNotFound, match="no SavedModel at .*general"):
        inference.Colorizer()
    # A library error, in the library's words: no command-line flag in it.
    with pytest.raises(inference.ModelNotFound) as refused:
        inference.Colorizer(str(tmp_path / "none"))
    assert "--" not in str(refused.value) and isinstance(refused.value, ValueError)


@pytest.mark.parametrize("argument", ["", 0, False, [], 3.5, b"general"])
def test_a_colorizer_of_no_model_name_is_refused_not_the_default(argument):
    # Falsy or non-path arguments used to load the default model in silence.
    with pytest.raises(inference.ModelError, match="saved_model must be a SavedModel "
                                                   "folder or a shipped model's name"):
        inference.Colorizer(argument)


def test_a_broken_saved_model_is_a_model_error(luma_saved_model, tmp_path):
    import shutil
    junk = tmp_path / "junk" / "1"
    junk.mkdir(parents=True)
    (junk / "saved_model.pb").write_bytes(b"\x08\x01 not a protocol buffer")
    with pytest.raises(inference.ModelError, match="junk/1' is not a usable SavedModel"):
        inference.Colorizer(str(junk))
    no_assets = tmp_path / "no_assets"
    shutil.copytree(luma_saved_model, no_assets / "1")
    shutil.rmtree(no_assets / "1" / "assets")
    with pytest.raises(inference.ModelError, match="not a usable SavedModel.*export.json"):
        inference.Colorizer(no_assets)  # an os.PathLike is a folder too


def test_a_folder_named_like_a_shipped_model_does_not_hide_it(tmp_path, monkeypatch):
    # A folder "landscapes/" of photos in the working directory; the shipped model of
    # that name is still what the name means. A folder holding a SavedModel wins.
    shipped = inference.shipped_model_path("landscapes")
    if not os.path.isdir(shipped):
        pytest.skip("no shipped landscapes model")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "landscapes").mkdir()
    (tmp_path / "landscapes" / "lake.jpg").write_bytes(b"photo")
    assert inference.resolve_saved_model("landscapes") == \
        inference.resolve_saved_model(shipped)
    (tmp_path / "landscapes" / "3").mkdir()
    (tmp_path / "landscapes" / "3" / "saved_model.pb").write_bytes(b"")
    assert inference.resolve_saved_model("landscapes") == os.path.join("landscapes", "3")


def test_no_photos_is_no_results(luma_saved_model):
    assert inference.Colorizer(luma_saved_model).colorize_bytes([]) == []


def test_versions_are_ascii_integers_without_leading_zeros(luma_saved_model, tmp_path):
    # "٣" (Arabic-Indic three) and "²" are digits to str.isdigit and int("٣") is 3; TF
    # Serving and the version poller do not take them, nor "07": neither does the API.
    import shutil
    base = tmp_path / "model"
    shutil.copytree(luma_saved_model, base / "2")
    for name in ("\u0663", "\u00b2", "07", "10a"):
        (base / name).mkdir()
    assert inference.resolve_saved_model(str(base)) == str(base / "2")
    from colorize_tf.training import exporter
    assert exporter.next_version(str(base)) == 3
    shutil.copytree(luma_saved_model, base / "10")  # 10 is newer than 2 (not text order)
    assert inference.resolve_saved_model(str(base)) == str(base / "10")


def test_the_default_temperature_is_the_models_own(luma_saved_model):
    colorizer = inference.Colorizer(luma_saved_model)
    assert colorizer.export_info.default_temperature == 0.38
    photo = make_photo(20, 28, seed=4)
    default = colorizer.colorize(photo)
    assert np.array_equal(default, colorizer.colorize(photo, temperature=0.38))
    assert not np.array_equal(default, colorizer.colorize(photo, temperature=1.0))


@pytest.mark.parametrize("temperature, error, message", [
    (float("inf"), ValueError, "finite number of at least 0.001"),
    (float("nan"), ValueError, "finite"), (0.0, ValueError, "at least 0.001"),
    (-1, ValueError, "at least 0.001"), ("0.5", TypeError, "a number"),
    (True, TypeError, "a number"),
    # Infinite in float32, where the graph divides by it; and a CPU's flush to zero.
    (1e39, ValueError, "got 1e\\+39"), (1e-38, ValueError, "at least 0.001"),
    ([[0.38]], TypeError, "a number, got list")])
def test_the_python_api_refuses_temperatures_that_are_not_finite_and_positive(
        luma_saved_model, temperature, error, message):
    colorizer = inference.Colorizer(luma_saved_model)
    with pytest.raises(error, match=message):
        colorizer.colorize(make_photo(20, 28, seed=4), temperature=temperature)
    assert colorizer.colorize(make_photo(20, 28, seed=4), temperature=np.float32(0.5)).shape \
        == (20, 28, 3)


def test_the_python_api_says_what_it_expected_and_what_came(luma_saved_model):
    colorizer = inference.Colorizer(luma_saved_model)
    for image, error, words in [
            (None, TypeError, "got NoneType"), ("photo.jpg", TypeError, "got str"),
            (b"\x89PNG", TypeError, "colorize_bytes([data])"),
            (np.uint8(7), ValueError, "shape ()"),
            (np.zeros((0, 5), np.uint8), ValueError, "empty image"),
            (np.zeros((4, 4, 3), np.float32), TypeError, "float32 array of shape (4, 4, 3)"),
            ([[1, 2], [3, 4]], TypeError, "got list"),
            (np.zeros((4, 4, 4), np.uint8), ValueError, "shape (4, 4, 4)")]:
        with pytest.raises(error, match=re.escape(words)):
            colorizer.colorize(image)
    for images, words in [(b"\x89PNG", "one image: [data]"), ("x", "got str"),
                          ([np.zeros(3, np.uint8)], "list of encoded images")]:
        with pytest.raises(TypeError, match=re.escape(words)):
            colorizer.colorize_bytes(images)
    rgb = colorizer.colorize(np.full((6, 7), 128, np.uint8))
    assert rgb.shape == (6, 7, 3) and rgb.dtype == np.uint8


def test_hints_given_as_numpy_arrays_are_taken():
    from colorize_tf.chroma.hints import point_arrays
    points, colors = point_arrays([[{"point": np.array([0.25, 0.5]),
                                               "color": np.array([10, 20, 250], np.uint8)}]])
    np.testing.assert_allclose(points[0, 0], [0.25, 0.5])
    np.testing.assert_array_equal(colors[0, 0], [10, 20, 250])
    with pytest.raises(ValueError, match="integers 0-255"):
        point_arrays([[{"point": (0.1, 0.1), "color": np.array([1.5, 2, 3])}]])
