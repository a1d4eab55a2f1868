"""The legacy torch.save reader, the EfficientNet-Lite0 port and its ImageNet weights,
and the pretrained colorizer built on it (colorize_tf/modeling/torch_weights.py,
modeling/efficientnet_lite.py, model.build_effnet_colorizer)."""
import collections
import dataclasses
import glob
import json
import os
import pickle
import struct

import cv2
import numpy as np
import pytest

from colorize_tf import cli
from colorize_tf.modeling import efficientnet_lite
from colorize_tf.modeling import effnet_colorizer
from colorize_tf.modeling.model import ModelConfig, build_model, warm_start
from colorize_tf.modeling import torch_weights
from conftest import make_photo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- a legacy torch.save file, built by hand from the format's description ---------

def _global(module, name):
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def _int(value):
    return pickle.BININT + struct.pack("<i", value)


def _tuple(*items):
    return pickle.MARK + b"".join(items) + pickle.TUPLE


def _string(text):
    data = text.encode()
    return pickle.BINUNICODE + struct.pack("<I", len(data)) + data


def _state_dict_pickle(tensors, view_offset=0, class_name="FloatStorage", views=None):
    """The pickle torch writes for {name: float32 array}: an OrderedDict of
    _rebuild_tensor_v2(persistent storage, offset, size, stride, False, OrderedDict());
    views: {name: (size, stride)} written instead of the array's own."""
    body = pickle.PROTO + b"\x02" + _global("collections", "OrderedDict") + \
        pickle.EMPTY_TUPLE + pickle.REDUCE + pickle.MARK
    for key, (name, array) in enumerate(tensors.items()):
        shape, strides = (views or {}).get(
            name, (array.shape, tuple(s // array.itemsize for s in array.strides)))
        storage = _tuple(_string("storage"), _global("torch", class_name),
                         _string(str(key)), _string("cpu"), _int(array.size)) + \
            pickle.BINPERSID
        args = _tuple(storage, _int(view_offset), _tuple(*map(_int, shape)),
                      _tuple(*map(_int, strides)), pickle.NEWFALSE,
                      _global("collections", "OrderedDict") + pickle.EMPTY_TUPLE
                      + pickle.REDUCE)
        body += _string(name) + _global("torch._utils", "_rebuild_tensor_v2") + args + \
            pickle.REDUCE
    return body + pickle.SETITEMS + pickle.STOP


def write_legacy_file(path, tensors, magic=0x1950a86a20f9469cfc6c, counts=None, **kwargs):
    with open(path, "wb") as f:
        pickle.dump(magic, f, protocol=2)
        pickle.dump(1001, f, protocol=2)
        pickle.dump({"protocol_version": 1001, "little_endian": True,
                     "type_sizes": {"short": 2, "int": 4, "long": 4}}, f, protocol=2)
        f.write(_state_dict_pickle(tensors, **kwargs))
        pickle.dump([str(k) for k in range(len(tensors))], f, protocol=2)
        for i, array in enumerate(tensors.values()):
            f.write(struct.pack("<q", array.size if counts is None else counts[i]))
            f.write(array.astype("<f4").tobytes())


def _tensors():
    return collections.OrderedDict([
        ("conv.weight", np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2)),
        ("bn.running_var", np.array([0.5, 2.0], np.float32)),
        ("fc.weight", np.arange(6, dtype=np.float32).reshape(3, 2).T.copy())])


def test_reader_reads_a_hand_made_legacy_file(tmp_path):
    path = str(tmp_path / "w.pth")
    tensors = _tensors()
    write_legacy_file(path, tensors)
    read = torch_weights.read_state_dict(path)
    assert list(read) == list(tensors)
    for name, array in tensors.items():
        np.testing.assert_array_equal(read[name], array)
        assert read[name].dtype == np.float32


def test_reader_refuses_truncated_and_foreign_files(tmp_path):
    path = str(tmp_path / "w.pth")
    write_legacy_file(path, _tensors())
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:-10])
    with pytest.raises(torch_weights.WeightsFileError, match="truncated in storage 2"):
        torch_weights.read_state_dict(path)
    write_legacy_file(path, _tensors(), magic=1234)
    with pytest.raises(torch_weights.WeightsFileError, match="wrong magic"):
        torch_weights.read_state_dict(path)
    # A tensor that claims more values than its storage holds.
    write_legacy_file(path, _tensors(), view_offset=5)
    with pytest.raises(torch_weights.WeightsFileError, match="reaches past its storage"):
        torch_weights.read_state_dict(path)
    # A pickle that names any other class is data the reader never executes.
    with open(path, "wb") as f:
        pickle.dump(0x1950a86a20f9469cfc6c, f, protocol=2)
        pickle.dump(1001, f, protocol=2)
        pickle.dump({"little_endian": True}, f, protocol=2)
        f.write(pickle.PROTO + b"\x02" + _global("os", "system") + _tuple(_string("true"))
                + pickle.REDUCE + pickle.STOP)
    with pytest.raises(torch_weights.WeightsFileError, match="refusing to load os.system"):
        torch_weights.read_state_dict(path)
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(torch_weights.WeightsFileError, match="not a legacy torch"):
        torch_weights.read_state_dict(str(tmp_path / "empty.pth"))


@pytest.mark.parametrize("views,message", [
    # A negative stride walked before the storage's start (it segfaulted train).
    ({"conv.weight": ((2, 3, 2, 2), (-12, 4, 2, 1))}, "negative offset, size or stride"),
    ({"conv.weight": ((2, -3, 2, 2), (12, 4, 2, 1))}, "negative offset, size or stride"),
    # Sizes larger than the storage (it returned memory past the buffer as weights).
    ({"conv.weight": ((4, 3, 2, 2), (12, 4, 2, 1))}, "reaches past its storage of 24"),
    ({"conv.weight": ((2, 3, 2, 2), (12, 4, 2))}, "strides that do not match"),
])
def test_reader_checks_every_tensor_against_its_storage(tmp_path, views, message):
    path = str(tmp_path / "w.pth")
    write_legacy_file(path, _tensors(), views=views)
    with pytest.raises(torch_weights.WeightsFileError, match=f"tensor conv.weight .*{message}"
                       if "past" not in message else message):
        torch_weights.read_state_dict(path)


def test_reader_checks_counts_against_the_file_and_names_the_zip_format(tmp_path):
    path = str(tmp_path / "w.pth")
    # Storage counts no file could hold (MemoryError / OverflowError before the check).
    for count in (2 ** 40, 2 ** 62):
        write_legacy_file(path, _tensors(), counts=[24, count, 6])
        with pytest.raises(torch_weights.WeightsFileError,
                           match=f"truncated in storage 1 \\({count:,} values of 4 bytes"):
            torch_weights.read_state_dict(path)
    with open(path, "wb") as f:  # what torch.save writes since PyTorch 1.6
        f.write(b"PK\x03\x04" + b"\x00" * 60)
    with pytest.raises(torch_weights.WeightsFileError,
                       match="zip-format torch.save file .*_use_new_zipfile_serialization"):
        torch_weights.read_state_dict(path)


@pytest.mark.parametrize("net", [efficientnet_lite.LITE0, efficientnet_lite.LITE2])
def test_every_batch_norm_has_the_reference_epsilon(net):
    # EfficientNet-Lite was trained in TF with batch_norm_epsilon 1e-3 (tensorflow/tpu,
    # efficientnet_lite_builder.py); PyTorch's default, 1e-5, changes 35 of 320 Caltech
    # photos' top-1 class yet keeps top-5 accuracy, so only an exact check sees it.
    import keras
    for model in (efficientnet_lite.build_classifier(net),):
        norms = [layer for layer in model.layers
                 if isinstance(layer, keras.layers.BatchNormalization)]
        assert len(norms) >= 3 * 16
        assert {layer.epsilon for layer in norms} == {1e-3}


def test_layouts_follow_pytorch_and_keras_conventions():
    # PyTorch conv [out, in, kh, kw] -> Keras [kh, kw, in, out]; depthwise [C, 1, kh,
    # kw] -> [kh, kw, C, 1]; Linear [out, in] -> Dense [in, out]: index by index.
    rng = np.random.default_rng(0)
    conv = rng.normal(size=(5, 4, 3, 2))
    dw = rng.normal(size=(6, 1, 3, 2))
    fc = rng.normal(size=(7, 4))
    (k,) = efficientnet_lite.keras_weights("conv", {"c.weight": conv}, "c")
    (d,) = efficientnet_lite.keras_weights("dwconv", {"d.weight": dw}, "d")
    dense, _ = efficientnet_lite.keras_weights("dense", {"f.weight": fc, "f.bias": fc[:, 0]},
                                               "f")
    assert k.shape == (3, 2, 4, 5) and d.shape == (3, 2, 6, 1) and dense.shape == (4, 7)
    for o, i, y, x in [(0, 0, 0, 0), (4, 3, 2, 1), (2, 1, 1, 0)]:
        assert k[y, x, i, o] == conv[o, i, y, x]
    for c, y, x in [(0, 0, 0), (5, 2, 1), (3, 1, 0)]:
        assert d[y, x, c, 0] == dw[c, 0, y, x]
    assert dense[3, 6] == fc[6, 3]


def _imagenet_tensors(net=efficientnet_lite.LITE0):
    try:
        return efficientnet_lite.read_imagenet_weights(net=net)
    except ImportError as e:
        pytest.skip(str(e))


# The packages' files: values (and tensors), and the classifier's layers with weights
# (Lite0: 16 blocks, Lite2: 21; the first of each has no expansion: 6 layers a block
# but 4 for the first, plus stem, head and classifier: 5).
@pytest.mark.parametrize("net, values, layers", [
    (efficientnet_lite.LITE0, 4_694_073, 4 + 15 * 6 + 5),  # 296 tensors
    (efficientnet_lite.LITE2, 6_150_232, 4 + 20 * 6 + 5),  # 386 tensors
])
def test_loader_sets_every_layer_from_the_package_file(net, values, layers):
    tensors = _imagenet_tensors(net)
    assert sum(v.size for v in tensors.values()) == values
    fresh = efficientnet_lite.build_classifier(net)
    model = efficientnet_lite.build_classifier(net)
    loaded = efficientnet_lite.load_imagenet_weights(model, tensors, net)
    with_weights = [layer.name for layer in model.layers if layer.weights]
    assert sorted(loaded) == sorted(with_weights) and len(loaded) == layers
    for layer in model.layers:
        for new, old in zip(layer.get_weights(), fresh.get_layer(layer.name).get_weights()):
            assert not np.allclose(new, old), layer.name
    # Every tensor of the file but the counters went into a layer.
    used = sum(w.size for layer in model.layers for w in layer.get_weights())
    counters = sum(v.size for k, v in tensors.items() if k.endswith("num_batches_tracked"))
    assert used == values - counters


def test_a_variant_refuses_the_other_variants_file():
    # Lite0's file in Lite2's network: their blocks 0-2 have the same shapes; block 3
    # is Lite2's third at 24 filters (3x3) but Lite0's first at 40 (5x5): named.
    model = efficientnet_lite.build_classifier(efficientnet_lite.LITE2)
    with pytest.raises(torch_weights.WeightsFileError,
                       match=r"_blocks\.3\._depthwise_conv.*\(5, 5, 144, 1\).*block3_dw_conv "
                             r"needs \[\(3, 3, 144, 1\)\]"):
        efficientnet_lite.load_imagenet_weights(model, _imagenet_tensors(),
                                                efficientnet_lite.LITE2)


def test_loader_names_the_tensor_it_lacks_or_that_does_not_fit():
    tensors = dict(_imagenet_tensors())
    model = efficientnet_lite.build_classifier()
    del tensors["_blocks.3._depthwise_conv.weight"]
    with pytest.raises(torch_weights.WeightsFileError,
                       match=r"_blocks\.3\._depthwise_conv\.weight.*block3_dw_conv"):
        efficientnet_lite.load_imagenet_weights(model, tensors)
    tensors = dict(_imagenet_tensors())
    tensors["_bn0.weight"] = np.ones(16, np.float32)
    with pytest.raises(torch_weights.WeightsFileError, match="_bn0.*stem_bn"):
        efficientnet_lite.load_imagenet_weights(model, tensors)


# Caltech-101 classes of general/ that are ImageNet classes, with the ImageNet-1k
# indices (0-based, in the usual synset order) that name them.
CALTECH_IMAGENET = {
    "airplanes": (404, 895),  # airliner, warplane
    "laptop": (620, 681),  # laptop, notebook computer
    "schooner": (780,),
    "pizza": (963,),
    "starfish": (327,),
    "dragonfly": (319,),
    "electric_guitar": (546, 402),  # electric guitar, acoustic guitar
    "scorpion": (71,),
    "dalmatian": (251,),
    "revolver": (763,),
    "saxophone": (776,),
    "soccer_ball": (805,),
    "strawberry": (949,),
    "umbrella": (879,),
    "llama": (355,),
    "grand_piano": (579,),
}
PHOTOS_PER_CLASS = 20


def caltech_photos(shared_data):
    """{class: [20 RGB uint8 photos at 224 px]} from general/{train,test}/objects."""
    photos = {}
    for name in CALTECH_IMAGENET:
        paths = sorted(glob.glob(os.path.join(shared_data, "general", "*", "objects",
                                              f"caltech_{name}_image*")))[:PHOTOS_PER_CLASS]
        assert len(paths) == PHOTOS_PER_CLASS, name
        photos[name] = [cv2.resize(cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB), (224, 224),
                                   interpolation=cv2.INTER_CUBIC) for p in paths]
    return photos


def top5_accuracy(model, photos):
    hits = total = 0
    for name, images in photos.items():
        logits = model.predict(np.float32(images), batch_size=20, verbose=0)
        top5 = np.argsort(-logits, axis=-1)[:, :5]
        hits += sum(bool(set(row) & set(CALTECH_IMAGENET[name])) for row in top5)
        total += len(images)
    return hits / total


@pytest.mark.parametrize("net", [efficientnet_lite.LITE0, efficientnet_lite.LITE2],
                         ids=lambda net: net.name)
def test_port_classifies_imagenet_classes_in_real_photos(shared_data, net):
    # The proof of the port: the task these weights were trained for. A wrong layout,
    # epsilon or input normalisation drops it towards chance (5 / 1000).
    model = efficientnet_lite.build_classifier(net)
    efficientnet_lite.load_imagenet_weights(model, _imagenet_tensors(net), net)
    photos = caltech_photos(shared_data)
    assert top5_accuracy(model, photos) >= 0.8


# --- the colorizer on it --------------------------------------------------------------

def _effnet_config(num_bins=9, architecture=effnet_colorizer.EFFNET_LITE0):
    return ModelConfig(num_bins=num_bins, base_filters=8,
                                 architecture=architecture, color_space="lab")


@pytest.mark.parametrize("architecture, height, width", [
    (effnet_colorizer.EFFNET_LITE0, 64, 48), (effnet_colorizer.EFFNET_LITE0, 16, 96),
    (effnet_colorizer.EFFNET_LITE0, 32, 32), (effnet_colorizer.EFFNET_LITE2, 48, 16)])
def test_colorizer_logits_are_at_a_quarter_of_any_size_divisible_by_16(architecture, height,
                                                                       width):
    config = _effnet_config(architecture=architecture)
    assert (config.pad_multiple, config.output_stride) == (16, 4)
    model = build_model(config, seed=0)
    logits = model(np.random.default_rng(0).random((2, height, width, 1), np.float32))
    assert logits.shape == (2, height // 4, width // 4, 9)
    assert logits.dtype == "float32"


@pytest.mark.parametrize("height, width", [(64, 32), (32, 96)])
def test_context_colorizer_runs_to_stride_32_and_keeps_the_quarter(height, width):
    config = dataclasses.replace(_effnet_config(), global_context=True)
    assert (config.pad_multiple, config.output_stride) == (32, 4)
    model = build_model(config, seed=0)
    assert model.get_layer("ctx_conv").input.shape[-1] == 320  # Lite0's block 15
    logits = model(np.random.default_rng(0).random((1, height, width, 1), np.float32))
    assert logits.shape == (1, height // 4, width // 4, 9)


def test_context_starts_as_the_model_without_it_and_is_wired_in():
    plain = build_model(_effnet_config(), seed=0)
    with_context = build_model(
        dataclasses.replace(_effnet_config(), global_context=True), seed=1)
    copied = warm_start(with_context, plain)
    assert "ctx_merge" not in copied and "logits" in copied
    photo = np.random.default_rng(2).random((1, 64, 64, 1), np.float32)
    np.testing.assert_array_equal(np.asarray(with_context(photo)), np.asarray(plain(photo)))
    # Once the merge has weights the stride-32 features change every logit.
    merge = with_context.get_layer("ctx_merge")
    merge.set_weights([np.random.default_rng(3).normal(
        0, 0.3, w.shape).astype(np.float32) for w in merge.get_weights()])
    changed = np.abs(np.asarray(with_context(photo)) - np.asarray(plain(photo))).max(-1)
    assert changed.min() > 1e-3


def test_encoder_sees_the_gray_of_the_luma_normalised_as_in_imagenet_training():
    layer = effnet_colorizer.GrayEncoderInput("lab")
    # CIE L* 50 is the sRGB gray 119 (#777777 has L* = 50.03); L* 100 white, 0 black.
    out = np.asarray(layer(np.array([[[[0.5003], [1.0], [0.0]]]], np.float32)))
    assert out.shape == (1, 1, 3, 3)
    np.testing.assert_allclose(out[0, 0, :, 0], [(119 - 127) / 128, (255 - 127) / 128,
                                                 -127 / 128], atol=0.004)
    np.testing.assert_allclose(out[..., 0], out[..., 2], atol=1e-5)
    yuv = effnet_colorizer.GrayEncoderInput("yuv")(np.full((1, 1, 1, 1), 0.25, np.float32))
    np.testing.assert_allclose(np.asarray(yuv), (0.25 * 255 - 127) / 128, atol=1e-5)


def test_lite2_colorizer_reads_its_own_strides():
    # Lite2's last blocks at strides 16, 8 and 4 are 14, 6 and 3 (120, 48 and 24
    # filters); with global_context its block 20 (352) at stride 32.
    model = build_model(_effnet_config(architecture=effnet_colorizer.EFFNET_LITE2), seed=0)
    assert model.get_layer("dec16_conv").input.shape[-1] == 120
    assert model.get_layer("encoder_block14_project_bn").output.shape[-1] == 120
    skips = model.get_layer("dec8_skip").input
    assert skips[1].shape[-1] == 48 and model.get_layer("dec4_skip").input[1].shape[-1] == 24
    assert not any(layer.name.startswith("encoder_block15") for layer in model.layers)
    context = build_model(dataclasses.replace(
        _effnet_config(architecture=effnet_colorizer.EFFNET_LITE2), global_context=True), seed=0)
    assert context.get_layer("ctx_conv").input.shape[-1] == 352


@pytest.mark.parametrize("architecture, layers, block", [
    (effnet_colorizer.EFFNET_LITE0, 2 + 4 + 10 * 6, "block7_dw_conv"),  # stem, blocks 0-10
    (effnet_colorizer.EFFNET_LITE2, 2 + 4 + 14 * 6, "block12_dw_conv"),  # stem, blocks 0-14
])
def test_encoder_weights_load_into_the_colorizer_and_training_modes(architecture, layers,
                                                                    block):
    model = build_model(_effnet_config(architecture=architecture), seed=0)
    net = effnet_colorizer.EFFNET_VARIANTS[architecture]
    try:
        loaded = effnet_colorizer.load_encoder_weights(model, architecture)
    except ImportError as e:
        pytest.skip(str(e))
    assert len(loaded) == layers and all(n.startswith("encoder_") for n in loaded)
    # The loaded encoder computes what the classifier's first blocks compute.
    classifier = efficientnet_lite.build_classifier(net)
    efficientnet_lite.load_imagenet_weights(classifier, _imagenet_tensors(net), net)
    np.testing.assert_array_equal(model.get_layer("encoder_" + block).get_weights()[0],
                                  classifier.get_layer(block).get_weights()[0])
    effnet_colorizer.set_encoder_training(model, "frozen_bn")
    trains = {layer.name: layer.trainable for layer in effnet_colorizer.encoder_layers(model)}
    assert not trains["encoder_stem_bn"] and trains["encoder_stem_conv"]
    effnet_colorizer.set_encoder_training(model, "frozen")
    assert not any(layer.trainable for layer in effnet_colorizer.encoder_layers(model))
    assert model.get_layer("logits").trainable


def test_targets_are_pooled_to_the_logits_grid():
    from colorize_tf.data import input_pipeline
    rng = np.random.default_rng(1)
    chroma = rng.normal(size=(8, 8, 2)).astype(np.float32)
    mask = np.ones((8, 8, 1), np.float32)
    mask[:4, :2] = 0  # the top-left block is half valid, the next one valid
    mask[4:, 4:] = 0
    mask[7, 7] = 1  # the bottom-right block has 1 of 16 valid pixels
    pooled, valid = (np.asarray(t) for t in input_pipeline.pool_targets(chroma, mask, 4))
    assert pooled.shape == (2, 2, 2)
    np.testing.assert_allclose(pooled[0, 0], chroma[:4, 2:4].reshape(-1, 2).mean(0), rtol=1e-5)
    np.testing.assert_allclose(pooled[1, 0], chroma[4:, :4].reshape(-1, 2).mean(0), rtol=1e-5)
    np.testing.assert_array_equal(valid[..., 0], [[1, 1], [1, 0]])


def test_chroma_at_a_quarter_is_upsampled_where_each_cell_is():
    # Cell i covers pixels 4i..4i+3 (training's pooling); bilinear with half-pixel
    # centres puts pixel p at cell coordinate (p + 0.5) / 4 - 0.5, so a ramp over the
    # cells comes back as that line inside, clamped at the borders, cropped to H, W.
    from colorize_tf.serving import graph
    module = graph.ColorizerModule.__new__(graph.ColorizerModule)
    module.output_stride = 4
    cells = np.arange(5, dtype=np.float32)[None, :, None, None] * np.ones((1, 1, 3, 1),
                                                                          np.float32)
    luma = np.zeros((1, 18, 10, 1), np.float32)  # 18 px: ceil(18 / 4) = 5 cells
    up = np.asarray(module._to_luma_grid(cells, luma))
    assert up.shape == (1, 18, 10, 1)
    p = np.arange(18)
    expected = np.clip((p + 0.5) / 4 - 0.5, 0, 4)
    np.testing.assert_allclose(up[0, :, 3, 0], expected, atol=1e-6)


@pytest.fixture(scope="module")
def effnet_saved_model(tiny_records, tmp_path_factory):
    """A 1-epoch effnet_lite0 run on tiny_records (random encoder: no download),
    exported at a 64 px working size."""
    from colorize_tf import train
    from colorize_tf.training import exporter
    from colorize_tf.training import trainer
    from colorize_tf.training.config import TrainConfig
    root = tmp_path_factory.mktemp("effnet")
    values, _ = cli.parse(train.define_flags, [
        "train", f"--flagfile={REPO}/colorize_tf/configs/smoke.flags",
        f"--records_dir={tiny_records}", f"--model_dir={root}/run", "--epochs=1",
        "--architecture=effnet_lite0", "--nopretrained_encoder", "--crop_size=32",
        "--base_filters=8", "--num_log_images=1", "--verbose=0"])
    trainer.run(TrainConfig.from_flags(values))
    return exporter.export(str(root / "run"), str(root / "m"), work_size=64), str(root / "run")


def test_effnet_export_reloads_and_colorizes_odd_sizes(effnet_saved_model):
    import tensorflow as tf
    from colorize_tf import serving_api
    from colorize_tf.serving import inference
    from colorize_tf.training import exporter
    effnet_saved_model, run_dir = effnet_saved_model
    info = json.load(open(os.path.join(effnet_saved_model, "assets", "export.json")))
    assert (info["output_stride"], info["pad_log2"]) == (4, 4)
    colorizer = inference.Colorizer(effnet_saved_model)
    gray = cv2.cvtColor(make_photo(77, 101, seed=3), cv2.COLOR_RGB2GRAY)
    rgb, confidence = colorizer.colorize(gray, confidence=True)
    assert rgb.shape == (77, 101, 3) and confidence.shape == (77, 101)
    # The luma of the result is the input's (the chroma alone comes from the model).
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(float)[..., 0]
    assert np.abs(lab - cv2.cvtColor(np.dstack([gray] * 3), cv2.COLOR_RGB2LAB)[..., 0]
                  ).mean() < 3.0
    # colorize_luma: the annealed mean of the logits at a quarter of the size, then
    # only the chroma upsampled. Oracle: the run's Keras model, numpy's annealed mean
    # and numpy's bilinear upsampling (half-pixel centres, clamped at the borders).
    loaded = tf.saved_model.load(effnet_saved_model)
    luma = np.random.default_rng(4).random((1, 48, 64, 1), np.float32)
    chroma = loaded.signatures[serving_api.LUMA_SIGNATURE](
        luma=tf.constant(luma), temperature=tf.constant([0.5]))[serving_api.CHROMA].numpy()
    model, bins, _ = exporter.load_trained_model(run_dir)
    logits = np.asarray(model(luma), np.float64)[0]
    assert logits.shape == (12, 16, bins.num_bins)
    z = np.exp((logits - logits.max(-1, keepdims=True)) / 0.5)
    quarter = (z / z.sum(-1, keepdims=True)) @ np.asarray(bins.centres)
    np.testing.assert_allclose(chroma[0], _upsample_rows(_upsample_rows(
        quarter, 4).transpose(1, 0, 2), 4).transpose(1, 0, 2), atol=2e-3)
    # luma_probabilities: the softmax of those logits on their own grid.
    assert info["probabilities_stride"] == 4
    p = loaded.signatures[serving_api.PROBABILITIES_SIGNATURE](luma=tf.constant(luma))[
        serving_api.PROBABILITIES].numpy()
    z = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(p[0], z / z.sum(-1, keepdims=True), atol=1e-5)


def _upsample_rows(values, factor):
    """values [n, ...] -> [factor n, ...], bilinear with half-pixel centres."""
    n = values.shape[0]
    source = np.clip((np.arange(factor * n) + 0.5) / factor - 0.5, 0, n - 1)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, n - 1)
    frac = (source - low).reshape((-1,) + (1,) * (values.ndim - 1))
    return (1 - frac) * values[low] + frac * values[high]


def test_a_context_run_warm_started_keeps_imagenet_where_its_source_has_no_layer(
        effnet_saved_model, tiny_records, tmp_path):
    # The shipped recipe for global_context: warm-start from a model without it. The
    # stride-32 blocks it adds must start from ImageNet (the package's file), every
    # layer the source has from the source (here a random encoder, unlike ImageNet's).
    from colorize_tf import train
    from colorize_tf.training import exporter
    from colorize_tf.training import trainer
    from colorize_tf.training.config import TrainConfig
    tensors = _imagenet_tensors()
    saved_model, source_run = effnet_saved_model
    values, _ = cli.parse(train.define_flags, [
        "train", f"--flagfile={REPO}/colorize_tf/configs/smoke.flags",
        f"--records_dir={tiny_records}", f"--model_dir={tmp_path}/run", "--epochs=1",
        "--steps_per_epoch=1", "--architecture=effnet_lite0", "--global_context",
        "--encoder_training=frozen", f"--warm_start={saved_model}", "--crop_size=32",
        "--base_filters=8", "--num_log_images=1", "--verbose=0"])
    trainer.run(TrainConfig.from_flags(values))
    model, _, _ = exporter.load_trained_model(str(tmp_path / "run"))
    source, _, _ = exporter.load_trained_model(source_run)
    np.testing.assert_array_equal(  # frozen: still what it started from
        model.get_layer("encoder_block12_dw_conv").get_weights()[0],
        np.transpose(tensors["_blocks.12._depthwise_conv.weight"], (2, 3, 0, 1)))
    np.testing.assert_array_equal(model.get_layer("encoder_block7_dw_conv").get_weights()[0],
                                  source.get_layer("encoder_block7_dw_conv").get_weights()[0])


def test_a_warm_start_that_gives_every_encoder_layer_needs_no_imagenet_file(
        effnet_saved_model, tiny_records, tmp_path, monkeypatch):
    from colorize_tf import train
    from colorize_tf.training import trainer
    from colorize_tf.training.config import TrainConfig

    def not_installed(net):
        raise ImportError("no weights package here")
    monkeypatch.setattr(efficientnet_lite, "imagenet_weights_path", not_installed)
    values, _ = cli.parse(train.define_flags, [
        "train", f"--flagfile={REPO}/colorize_tf/configs/smoke.flags",
        f"--records_dir={tiny_records}", f"--model_dir={tmp_path}/run", "--epochs=1",
        "--steps_per_epoch=1", "--architecture=effnet_lite0",
        f"--warm_start={effnet_saved_model[0]}", "--crop_size=32", "--base_filters=8",
        "--num_log_images=1", "--verbose=0"])
    trainer.run(TrainConfig.from_flags(values))  # the source gave every layer
    values, _ = cli.parse(train.define_flags, [
        "train", f"--flagfile={REPO}/colorize_tf/configs/smoke.flags",
        f"--records_dir={tiny_records}", f"--model_dir={tmp_path}/context", "--epochs=1",
        "--steps_per_epoch=1", "--architecture=effnet_lite0", "--global_context",
        f"--warm_start={effnet_saved_model[0]}", "--crop_size=32", "--base_filters=8",
        "--num_log_images=1", "--verbose=0"])
    with pytest.raises(trainer.TrainingError, match="pretrained_encoder: no weights package"):
        trainer.run(TrainConfig.from_flags(values))  # blocks 11-15 need the file
