"""Exporting: a training run (or a SavedModel of colorize_tf) -> a versioned SavedModel
whose graph (serving/graph.py) does all pre- and post-processing in core TF ops; its
signatures are in serving_api.py. A version is written through a temp folder and a
rename, so TF Serving never sees a half-written one; one is never overwritten.

python -m colorize_tf.export is its command line.
"""
import json
import math
import os
import shutil

import numpy as np
import tensorflow as tf

from colorize_tf import errors
from colorize_tf import safe_write
from colorize_tf import serving_api
from colorize_tf.chroma.bins import BINS_NAME, Bins
from colorize_tf.chroma import decoding
from colorize_tf.chroma import guided
from colorize_tf.modeling.model import (
    MODEL_CONFIG_NAME,
    decoder_output_only,
    interpolate_weights,
    load_checkpoint,
    read_config,
)
from colorize_tf.serving import graph
from colorize_tf.serving import inference
from colorize_tf.training.state import CHECKPOINT_DIR, FLAGS_NAME


class ExportError(errors.Error):
    """A run that cannot be exported, or arguments that make no export."""


WARMUP_FILE = "tf_serving_warmup_requests"  # TF Serving replays it before serving


def load_trained_model(model_dir, checkpoint="best"):
    """-> (keras model returning logits, Bins, the run's flags dict) from a training run."""
    path = os.path.join(model_dir, CHECKPOINT_DIR, f"{checkpoint}.keras")
    if not os.path.exists(path):
        raise ExportError(f"no checkpoint {path!r}: is {model_dir!r} a training run?")
    try:
        model = load_checkpoint(path)
    except Exception as e:  # zip, h5 and Keras errors of a damaged file
        other = "last" if checkpoint == "best" else "best"
        raise ExportError(f"cannot load {path!r} ({type(e).__name__}: {str(e)[:200]}); "
                          f"the file is damaged: try checkpoint={other} (export "
                          f"--checkpoint={other})") from None
    model = decoder_output_only(model)
    try:
        bins = Bins.load(os.path.join(model_dir, BINS_NAME))
        with open(os.path.join(model_dir, FLAGS_NAME)) as f:
            run_flags = json.load(f)
    except (OSError, ValueError, KeyError) as e:
        raise ExportError(f"{model_dir!r} is not a complete training run: {e}") from None
    return model, bins, run_flags


def next_version(export_dir):
    """1 + the largest integer version under export_dir (1 if none)."""
    versions = [v for v in map(serving_api.version_number, os.listdir(export_dir))
                if v is not None] \
        if os.path.isdir(export_dir) else []
    return max(versions, default=0) + 1


def _field(number, wire_type, payload):
    """One protobuf field: tag varint, then a length-delimited payload or a varint."""
    def varint(value):
        out = bytearray()
        while True:
            bits = value & 0x7F
            value >>= 7
            out.append(bits | (0x80 if value else 0))
            if not value:
                return bytes(out)
    tag = varint(number << 3 | wire_type)
    return tag + varint(len(payload)) + payload


def warmup_record(model_name, inputs):
    """A serialized tensorflow.serving.PredictionLog holding one PredictRequest.

    Written by hand (tensorflow-serving-api is not a dependency): PredictionLog
    .predict_log = 6 -> PredictLog.request = 1 -> PredictRequest {model_spec = 1
    {name = 1, signature_name = 3}, inputs = 2 (map<string, TensorProto>)}.
    """
    spec = _field(1, 2, model_name.encode()) + _field(
        3, 2, serving_api.SERVING_SIGNATURE.encode())
    request = _field(1, 2, spec)
    for key, value in inputs.items():
        entry = _field(1, 2, key.encode()) + _field(2, 2, tf.make_tensor_proto(value)
                                                    .SerializeToString())
        request += _field(2, 2, entry)
    return _field(6, 2, _field(1, 2, request))


def _warmup_png():
    """A small gray gradient photo, PNG bytes, for warmup requests."""
    ramp = tf.cast(tf.linspace(0.0, 255.0, 64), tf.uint8)
    image = tf.tile(ramp[None, :, None], [48, 1, 3])
    return tf.io.encode_png(image).numpy()


def _model_config(model_dir):
    """The run's model.ModelConfig (model_config.json): its poolings set the pad multiple."""
    try:
        return read_config(model_dir)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ExportError(f"cannot read the model config of {model_dir!r}: {e}") from None


def _check_export_args(version, work_size, max_pixels, default_temperature, export_dir,
                       guided_radius=guided.DEFAULT_RADIUS, tint_correction=None,
                       coherence=None, interpolation=None):
    if version is not None and version < 1:
        raise ExportError(f"version must be a positive integer, got {version}")
    if work_size is not None and work_size < graph.MIN_WORK_SIZE:
        raise ExportError(f"work_size must be >= {graph.MIN_WORK_SIZE} px, got {work_size}")
    if max_pixels < 1:
        raise ExportError(f"max_pixels must be >= 1, got {max_pixels}")
    problem = serving_api.temperature_problem(default_temperature)
    if problem:
        raise ExportError(f"default_{problem}")
    if guided_radius < 0:
        raise ExportError(f"guided_radius must be >= 0 (0: bilinear chroma), got "
                          f"{guided_radius}")
    if tint_correction is not None and not 0 <= tint_correction <= 1:
        raise ExportError(f"tint_correction must be in [0, 1], got {tint_correction}")
    if coherence is not None:
        sigma, strength = coherence
        if not 0 <= sigma < math.inf:
            raise ExportError(f"smoothing_sigma must be a finite number >= 0, got {sigma}")
        if not 0 <= strength <= 1:
            raise ExportError(f"flat_temperature must be in [0, 1], got {strength}")
    if interpolation is not None:
        base, share = interpolation
        if not 0 <= share <= 1:
            raise ExportError(f"the interpolation share must be in [0, 1], got {share}")
        if not os.path.isdir(base):
            raise ExportError(f"the model to interpolate with, {base!r}, is not a folder")
    if not export_dir:
        raise ExportError("export_dir is required")
    if os.path.exists(export_dir) and not os.path.isdir(export_dir):
        raise ExportError(f"export_dir {export_dir!r} is a file, not a folder")


def export(model_dir, export_dir, version=None, work_size=None,
           max_pixels=graph.DEFAULT_MAX_PIXELS, checkpoint="best",
           default_temperature=serving_api.DEFAULT_TEMPERATURE,
           guided_radius=guided.DEFAULT_RADIUS, tint_correction=0.0, coherence=(0.0, 0.0),
           interpolation=None):
    """Writes export_dir/<version>/ from a training run atomically; returns its path.

    The version appears under its final name only when complete (a temp dir, then a
    rename); temp dirs of killed exports are removed first. guided_radius: the window
    radius of the chroma's guided upsampling (guided.py; 0: bilinear); tint_correction:
    the decoder's (decoding.py; 0: none); coherence: the decoder's (smoothing_sigma,
    flat_temperature) (decoding.py, coherent colours; 0, 0: the plain annealed mean);
    interpolation: None, or (BASE, share): the exported weights are (1 - share) x those
    of BASE (a SavedModel of colorize_tf the run was fine-tuned from) + share x the
    run's (model.interpolate_weights, WiSE-FT).
    """
    _check_export_args(version, work_size, max_pixels, default_temperature, export_dir,
                       guided_radius, tint_correction, coherence, interpolation)
    if tint_correction or any(coherence):  # refused before the weights load
        _check_joint_bins_settings(tint_correction, coherence,
                                   _model_config(model_dir).decoding)
    model, bins, run_flags = load_trained_model(model_dir, checkpoint)
    _interpolate(model, bins, interpolation)
    model_config = _model_config(model_dir)
    decoder = _with_tint_correction(_load_decoder(model_dir, bins), tint_correction,
                                    bins).with_coherence(*coherence)
    return _write_version(model, bins, decoder, model_dir,
                          export_dir, version,
                          work_size or int(run_flags.get("crop_size", 256)), max_pixels,
                          model_config.pad_multiple.bit_length() - 1, checkpoint,
                          default_temperature, model_config.output_stride, guided_radius,
                          _provenance(interpolation))


def export_from_saved_model(saved_model_dir, export_dir, version=None, work_size=None,
                            max_pixels=None, default_temperature=None,
                            guided_radius=guided.DEFAULT_RADIUS, tint_correction=None,
                            coherence=None, interpolation=None):
    """Writes export_dir/<version>/ with this package's current serving graph around
    the weights of an exported SavedModel (its assets give the architecture, bins and
    decoder; None keeps its work size, pixel limit, default temperature, tint
    correction and coherence; the chroma is upsampled as guided_radius says, as in
    export()); returns its path. For models whose training run is gone."""
    assets = os.path.join(inference.resolve_saved_model(saved_model_dir), "assets")
    if tint_correction or (coherence and any(coherence)):  # refused before weights load
        _check_joint_bins_settings(tint_correction, coherence,
                                   _model_config(assets).decoding)
    model, bins, info = inference.load_keras_model(saved_model_dir)
    work_size = work_size or info.work_size
    max_pixels = max_pixels or info.max_pixels
    default_temperature = default_temperature or info.default_temperature
    _check_export_args(version, work_size, max_pixels, default_temperature, export_dir,
                       guided_radius, tint_correction, coherence, interpolation)
    _interpolate(model, bins, interpolation)
    decoder = _load_decoder(assets, bins)
    if tint_correction is not None:
        decoder = _with_tint_correction(decoder, tint_correction, bins)
    if coherence is not None:
        decoder = decoder.with_coherence(*coherence)
    return _write_version(model, bins, decoder, assets,
                          export_dir, version, work_size, max_pixels, info.pad_log2,
                          info.checkpoint, default_temperature,
                          read_config(assets).output_stride, guided_radius,
                          _provenance(interpolation) or info.weights)


def _load_decoder(folder, bins):
    """decoding.Decoder.load, its ValueError for a damaged decoder.json an ExportError."""
    try:
        return decoding.Decoder.load(folder, bins)
    except ValueError as e:
        raise ExportError(str(e)) from None


def _interpolate(model, bins, interpolation):
    """Sets model's weights to the interpolation (None: leaves them) with its base's,
    a SavedModel of colorize_tf whose logits must mean the same bins (same centres)."""
    if interpolation is None:
        return
    base_dir, share = interpolation
    base, base_bins, _ = inference.load_keras_model(base_dir)
    if not (np.array_equal(base_bins.centres, bins.centres)
            and base_bins.grid.color_space == bins.grid.color_space):
        raise ExportError(f"{base_dir!r} predicts other bins ({base_bins.num_bins} in "
                          f"{base_bins.grid.color_space}) than this model ({bins.num_bins} "
                          f"in {bins.grid.color_space}): their weights cannot be mixed")
    try:
        interpolate_weights(model, base, share)
    except ValueError as e:
        raise ExportError(f"cannot interpolate with {base_dir!r}: {e}") from None


def _provenance(interpolation):
    """export.json's `weights`: where the weights came from when they were mixed."""
    if interpolation is None:
        return ""
    base_dir, share = interpolation
    return (f"{share:g} x this model's + {1 - share:g} x those of "
            f"{os.path.normpath(inference.resolve_saved_model(base_dir))}")


def _check_tint_decoding(beta, kind, what="tint_correction"):
    """ExportError where a tint correction beta (None, 0: none), or another decoding
    setting (what) of joint bins only, is asked of a model whose decoding (kind) is not
    over joint bins."""
    if beta and kind != decoding.BINS:
        raise ExportError(f"{what} needs a model over joint bins; this one's "
                          f"decoding is {kind!r}")


def _check_joint_bins_settings(tint_correction, coherence, kind):
    """ExportError where a tint correction or coherent colours (decoding.py) are asked of
    a model whose decoding (kind) is not over joint bins."""
    _check_tint_decoding(tint_correction, kind)
    if coherence and any(coherence):
        _check_tint_decoding(1, kind, "smoothing_sigma / flat_temperature")


def _with_tint_correction(decoder, beta, bins):
    """decoder with tint correction beta; ExportError where its decoding has none."""
    _check_tint_decoding(beta, decoder.kind)
    return decoder.with_tint_correction(beta, bins)


def _write_version(model, bins, decoder, source, export_dir, version, work_size, max_pixels,
                   pad_log2, checkpoint, default_temperature, output_stride=1,
                   guided_radius=guided.DEFAULT_RADIUS, weights=""):
    """The SavedModel of model (logits) + decoder, with the bins, flags and model config
    files of the folder source as assets, at export_dir/<version> (atomic)."""
    os.makedirs(export_dir, exist_ok=True)
    for name in safe_write.remove_stale_temps(export_dir):
        print(f"export: removed {name}, left by an export that did not finish")
    version = version or next_version(export_dir)
    final = os.path.join(export_dir, str(version))
    if os.path.exists(final):
        raise ExportError(f"{final!r} exists; versions are never overwritten "
                          "(omit version to take the next free one)")
    # The guided fit runs where the model's chroma has its own resolution (its logits'
    # grid): the fast guided filter's subsampling, output_stride times coarser.
    upsampling = guided.ChromaUpsampling(guided_radius, guided.DEFAULT_EPSILON, output_stride)
    module = graph.ColorizerModule(model, decoder, bins.grid.color_space, work_size,
                                   max_pixels, pad_log2, output_stride, upsampling)
    staging = safe_write.temp_path(final + "-assets")
    try:
        os.makedirs(staging)
        for name in (BINS_NAME, FLAGS_NAME,
                     MODEL_CONFIG_NAME):
            shutil.copy(os.path.join(source, name), staging)
        decoder.save(staging)
        graph.ExportInfo(work_size, max_pixels, bins.grid.color_space, bins.fingerprint,
                         pad_log2, checkpoint, version, decoder.kind, default_temperature,
                         decoder.uses_temperature, output_stride, upsampling.radius,
                         upsampling.epsilon, upsampling.subsample,
                         probabilities_stride=output_stride, weights=weights).save(staging)
        module.assets = [tf.saved_model.Asset(os.path.join(staging, n)) for n in sorted(
            os.listdir(staging))]
        with safe_write.replacing(final) as tmp:
            tf.saved_model.save(module, tmp, signatures=module.signatures())
            extra = os.path.join(tmp, "assets.extra")
            os.makedirs(extra, exist_ok=True)
            with tf.io.TFRecordWriter(os.path.join(extra, WARMUP_FILE)) as writer:
                writer.write(warmup_record(os.path.basename(os.path.normpath(export_dir)), {
                    serving_api.IMAGE_BYTES: tf.constant([_warmup_png()]),
                    serving_api.TEMPERATURE: tf.constant([serving_api.DEFAULT_TEMPERATURE])}))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
