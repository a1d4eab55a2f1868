"""The training library: TrainConfig -> records, model, tf.data, callbacks -> a run in
its model_dir (resumable; one process, a mirrored strategy or multi-worker).

    from colorize_tf.training import trainer
    trainer.run(TrainConfig.create(records_dir=..., model_dir=...))

python -m colorize_tf.train is its command line (flags -> TrainConfig -> run).
"""
import dataclasses
import json
import math
import os
import sys

import keras
import tensorflow as tf

from colorize_tf import errors
from colorize_tf import safe_write
from colorize_tf.chroma.bins import BINS_NAME, Bins, channel_grid
from colorize_tf.chroma import decoding
from colorize_tf.data import input_pipeline
from colorize_tf.data import records
from colorize_tf.modeling import losses
from colorize_tf.modeling import metrics
from colorize_tf.modeling.model import (MODEL_CONFIG_NAME, build_model, synchronize_batch_norm,
                                        warm_start)
from colorize_tf.modeling import torch_weights
from colorize_tf.serving import inference
from colorize_tf.training.callbacks import ColorizedImages, EpochSummary, log_dir
from colorize_tf.training import devices
from colorize_tf.training import multi_worker
from colorize_tf.training.state import (
    FLAGS_NAME,
    HISTORY_NAME,
    PIPELINE_CONFIG_NAME,
    TrainingState,
    read_state,
)


class TrainingError(errors.Error):
    """A run that cannot start or go on: records, bins, model_dir, warm start, or a loss
    that became NaN (a TrainConfig's own settings: config.ConfigError)."""


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def load_records_and_bins(records_dir, bins_path=None):
    """-> (bins, report); refuses missing records and bins that do not belong to them."""
    if not records_dir or not os.path.isdir(records_dir):
        raise TrainingError(f"records_dir {records_dir!r} does not exist; "
                            "run python -m data_prep.build_records first")
    if not tf.io.gfile.glob(records.shard_pattern(records_dir, records.TRAIN)):
        raise TrainingError(f"no train shards in {records_dir!r}")
    report_path = os.path.join(records_dir, records.REPORT_NAME)
    if not os.path.exists(report_path):
        raise TrainingError(f"{report_path} is missing: {records_dir!r} is not a "
                            "complete build_records output (was it killed? run it again)")
    try:
        report = records.Report.load(records_dir)
    except (OSError, ValueError, TypeError) as e:
        raise TrainingError(f"{report_path} is not a build_records report ({e}); run "
                            "python -m data_prep.build_records again")
    try:
        report.verify(records_dir)
    except (OSError, ValueError) as e:
        raise TrainingError(f"the records in {records_dir!r} do not match their report: "
                            f"{e}; run python -m data_prep.build_records again")
    if not report.written[records.TRAIN] or not report.bins:
        raise TrainingError(f"{records_dir!r} holds no training photos (see {report_path})")
    bins_path = bins_path or os.path.join(records_dir, BINS_NAME)
    try:
        bins = Bins.load(bins_path)
    except (OSError, ValueError, KeyError) as e:
        raise TrainingError(f"cannot load bins {bins_path!r}: {e}")
    if bins.fingerprint != report.bins_fingerprint:
        raise TrainingError(f"bins {bins_path!r} (fingerprint {bins.fingerprint}) were not "
                            f"learned from the records in {records_dir!r} (fingerprint "
                            f"{report.bins_fingerprint})")
    return bins, report


def _learning_rate(base, schedule, epochs, steps_per_epoch, decay_epoch, factor):
    decay_epoch = decay_epoch or max(1, (2 * epochs) // 3)
    if schedule == "constant":
        return base
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(base, epochs * steps_per_epoch)
    boundaries = [decay_epoch * steps_per_epoch]
    if schedule == "step":
        boundaries = [e * steps_per_epoch for e in range(decay_epoch, epochs, decay_epoch)]
    if not boundaries:
        return base
    values = [base * factor ** i for i in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def _trim_history(path, epochs_done):
    """Keeps the header and the first epochs_done rows of history.csv: a run killed
    after logging an epoch but before committing it redoes that epoch."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = f.read().splitlines()
    kept = lines[:1 + epochs_done] if lines else []
    if kept != lines:
        safe_write.write_bytes(path, "".join(line + "\n" for line in kept).encode())


def _check_model_dir(model_dir, model_config, bins, trained):
    """Refuses a model_dir that holds a trained run (trained: at least one epoch
    committed) of another architecture or other bins. The configs of a run that stopped
    before its first epoch (a warm start that did not fit, a kill) are replaced: nothing
    of it would be resumed, and refusing would leave the corrected command no way in."""
    path = os.path.join(model_dir, MODEL_CONFIG_NAME)
    wanted = {"model": dataclasses.asdict(model_config), "bins_fingerprint": bins.fingerprint}
    if trained and os.path.exists(path):
        try:
            found = _read_json(path)
        except (OSError, ValueError) as e:
            raise TrainingError(f"{path} cannot be read ({e}); use a new model_dir")
        if isinstance(found, dict) and isinstance(found.get("model"), dict):
            # Runs written before a field was added hold its default; before color_space
            # was recorded, the model's luma was always the bins' (the one it has now).
            defaults = {**dataclasses.asdict(type(model_config)()),
                        "color_space": model_config.color_space}
            found = {**found, "model": {**defaults, **found["model"]}}
        if found != wanted:
            raise TrainingError(f"model_dir {model_dir!r} holds a run with another "
                                f"configuration ({found} != {wanted}); use a new model_dir")
    return wanted


def _make_callbacks(model_dir, val_dataset, decoder, color_space, num_log_images,
                    steps_per_epoch, batch_size, epochs, write_dir=None):
    """The run's callbacks; they write to write_dir (default model_dir), the state is
    restored from model_dir."""
    write_dir = write_dir or model_dir
    monitor = "val_loss" if val_dataset is not None else "loss"
    callbacks = [
        keras.callbacks.TerminateOnNaN(),
        EpochSummary(epochs, steps_per_epoch * batch_size),
        # The CSV row first: a kill before the state's commit leaves an extra row,
        # which the resume trims (_trim_history).
        keras.callbacks.CSVLogger(os.path.join(write_dir, HISTORY_NAME),
                                  append=True),
        TrainingState(model_dir, monitor, save_dir=write_dir),
        keras.callbacks.TensorBoard(log_dir(write_dir),
                                    update_freq="epoch"),
    ]
    if val_dataset is not None and num_log_images > 0:
        callbacks.append(ColorizedImages(
            log_dir(write_dir, "images"), val_dataset, decoder,
            color_space, num_log_images))
    return callbacks


def _datasets(c, report, bins, pipeline, initial_epoch, steps_per_epoch):
    """-> (train dataset, val dataset or None, validation steps or None)."""
    train_dataset = input_pipeline.make_dataset(
        records.shard_pattern(c.data.records_dir, records.TRAIN), bins,
        c.optimization.batch_size, True,
        pipeline, epochs=c.optimization.epochs, initial_epoch=initial_epoch,
        steps_per_epoch=steps_per_epoch)
    val_count = report.written[records.VAL]
    if val_count == 0:
        return train_dataset, None, None
    # The same batches every epoch: one pass (or its first --validation_steps batches),
    # repeated, with the step count given to Keras so that it never reads past the end
    # (which it reports as "input ran out of data").
    validation_steps = math.ceil(val_count / c.optimization.batch_size)
    if c.optimization.validation_steps:
        validation_steps = min(validation_steps, c.optimization.validation_steps)
    val_dataset = input_pipeline.make_dataset(
        records.shard_pattern(c.data.records_dir, records.VAL), bins,
        c.optimization.batch_size, False,
        pipeline).take(validation_steps).repeat()
    return train_dataset, val_dataset, validation_steps


def _distributed_datasets(c, report, bins, pipeline, initial_epoch, steps_per_epoch,
                          strategy):
    """_datasets for a multi-worker strategy: -> (distributed train dataset,
    distributed val dataset or None, validation steps or None, a local val dataset
    for the logged images or None). Every replica gets batch_size / replicas examples
    of each global batch (make_dataset's shard), so the global batches are those of
    one process with --batch_size; validation uses the full global batches only."""
    replicas = strategy.num_replicas_in_sync
    if c.optimization.batch_size % replicas:
        raise TrainingError(f"batch_size {c.optimization.batch_size} is not divisible by the "
                            f"{replicas} replicas of the cluster")
    per_replica = c.optimization.batch_size // replicas

    def shard_of(context):
        return (context.num_input_pipelines, context.input_pipeline_id)

    train = strategy.distribute_datasets_from_function(
        lambda context: input_pipeline.make_dataset(
            records.shard_pattern(c.data.records_dir, records.TRAIN), bins, per_replica, True,
            pipeline, epochs=c.optimization.epochs, initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch, shard=shard_of(context)))
    validation_steps = report.written[records.VAL] // c.optimization.batch_size
    if c.optimization.validation_steps:
        validation_steps = min(validation_steps, c.optimization.validation_steps)
    if validation_steps == 0:
        return train, None, None, None
    val_pattern = records.shard_pattern(c.data.records_dir, records.VAL)
    val = strategy.distribute_datasets_from_function(
        lambda context: input_pipeline.make_dataset(
            val_pattern, bins, per_replica, False, pipeline, shard=shard_of(context)))
    local_val = input_pipeline.make_dataset(val_pattern, bins, c.optimization.batch_size, False,
                                            pipeline)
    return train, val, validation_steps, local_val


def _warm_start(model, saved_model_dir, bins):
    """Starts model from the weights of a SavedModel of colorize_tf (model.warm_start);
    refuses one whose bins have other cells than bins. -> the layer names copied."""
    source, source_bins, _ = inference.load_keras_model(saved_model_dir)
    if (source_bins.grid, list(source_bins.kept_cells)) != (bins.grid, list(bins.kept_cells)):
        raise TrainingError(f"warm_start {saved_model_dir!r} was trained on other bins "
                            f"({source_bins.num_bins} bins, fingerprint "
                            f"{source_bins.fingerprint}) than the records' ({bins.num_bins}, "
                            f"{bins.fingerprint}): its output cannot be reused")
    try:
        copied = warm_start(model, source)
    except ValueError as e:
        raise TrainingError(f"warm_start {saved_model_dir!r} does not fit this model: {e}")
    print(f"train: started from {saved_model_dir} ({len(copied)} layers copied)", flush=True)
    return copied


def _load_pretrained_encoder(model, family, skip=()):
    """Sets the pretrained layers of model (of families.Family family) from their
    pretrained weights, but for the layers named in skip (TrainingError when the
    package that ships them is missing or its file does not fit)."""
    try:
        loaded = family.load_pretrained(model, skip)
    except (ImportError, torch_weights.WeightsFileError) as e:
        raise TrainingError(f"pretrained_encoder: {e}") from None
    print(f"train: encoder started from {family.pretrained_source} ({len(loaded)} layers)",
          flush=True)


def _set_starting_weights(c, model, model_config, bins):
    """A new run's weights: --warm_start's layers, then the pretrained encoder's weights
    for the layers it did not give (all without one; global_context's stride-32 blocks
    from a source without it)."""
    copied = _warm_start(model, c.network.warm_start, bins) if c.network.warm_start else []
    missing = [layer.name for layer in model_config.family.pretrained_layers(model)
               if layer.weights and layer.name not in copied]
    if c.network.pretrained_encoder and missing:
        _load_pretrained_encoder(model, model_config.family, skip=copied)


def _compiled_model(c, model_config, bins, steps_per_epoch):
    """The colorizer (initial weights from c.runtime.seed) with its losses (and heads'), metrics
    and optimizer; call it inside the strategy's scope."""
    model = build_model(model_config, seed=c.runtime.seed)
    if model_config.family.set_training:
        model_config.family.set_training(model, c.network.encoder_training)
    opt = c.optimization
    learning_rate = _learning_rate(opt.learning_rate, opt.lr_schedule, opt.epochs,
                                   steps_per_epoch, opt.lr_decay_epoch, opt.lr_decay_factor)
    main_loss, main_metrics = _primary_loss_and_metrics(c, bins)
    loss, weights, metric = main_loss, None, main_metrics
    if model_config.has_heads:
        primary = model_config.primary_output
        loss, weights, metric = {primary: main_loss}, {primary: 1.0}, {primary: main_metrics}
        if model_config.regression_head:
            loss["chroma"] = losses.MaskedChromaMSE()
            weights["chroma"] = c.optimization.regression_weight
        if model_config.num_scenes:
            loss["scene"] = losses.scene_loss(c.optimization.scene_label_smoothing)
            weights["scene"] = c.optimization.scene_weight
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss,
                  loss_weights=weights, metrics=metric, jit_compile=c.runtime.jit_compile)
    return model


def _primary_loss_and_metrics(c, bins):
    """The loss and metrics of the output the decoder reads, by decoding."""
    decoder = c.decoder(bins)
    chroma_error = metrics.MaskedChromaError(decoder=decoder.to_dict())
    if c.network.decoding == decoding.REGRESSION:
        return losses.MaskedChromaMSE(), [chroma_error]
    if c.network.decoding == decoding.PER_CHANNEL:
        grid = channel_grid(bins.grid.color_space, c.network.channel_bins)
        return losses.MaskedPerChannelCrossEntropy(grid.low, grid.high, grid.cells), \
            [chroma_error]
    cast_weight = c.optimization.cast_weight
    return losses.MaskedRebalancedCrossEntropy(
        cast_weight, bins.centres if cast_weight > 0 else None), [
        metrics.MaskedTopKAccuracy(1), metrics.MaskedTopKAccuracy(5), chroma_error]


def _prepare_model_dir(c, model_config, bins, pipeline, write=True):
    """Checks and (if write) writes the run's configs; -> epochs already done (0 for a
    new run)."""
    if write:
        os.makedirs(c.runtime.model_dir, exist_ok=True)
    state, messages = read_state(c.runtime.model_dir)
    for message in messages:
        print(f"train: {message}")
    run_config = _check_model_dir(c.runtime.model_dir, model_config, bins,
                                  trained=state is not None)
    initial_epoch = state["epoch"] if state else 0
    if not write:
        return initial_epoch
    safe_write.write_json(os.path.join(c.runtime.model_dir, MODEL_CONFIG_NAME),
                          run_config)
    safe_write.write_json(os.path.join(c.runtime.model_dir, FLAGS_NAME), c.to_dict())
    safe_write.write_json(os.path.join(c.runtime.model_dir, PIPELINE_CONFIG_NAME),
                          dataclasses.asdict(pipeline))
    bins.save(os.path.join(c.runtime.model_dir, BINS_NAME))
    c.decoder(bins).save(c.runtime.model_dir)
    _trim_history(os.path.join(c.runtime.model_dir, HISTORY_NAME), initial_epoch)
    return initial_epoch


def _check_against_records(c, bins, report):
    """Refuses settings that the records cannot serve; -> the model's config."""
    if c.data.soft_targets and c.data.soft_k > bins.num_bins:
        raise TrainingError(f"soft_k {c.data.soft_k} is more than the {bins.num_bins} bins")
    train_count = report.written[records.TRAIN]
    if c.optimization.batch_size > train_count:
        raise TrainingError(f"batch_size {c.optimization.batch_size} is larger than the "
                            f"{train_count} training photos: no full batch, no training step")
    if c.optimization.scene_weight > 0 and len(report.classes) < 2:
        raise TrainingError("scene_weight needs records with at least two classes")
    frame = report.settings.get("frame_size")
    if c.data.frame_scale_crops and frame and c.data.crop_size > frame:
        raise TrainingError(f"frame_scale_crops: crop_size {c.data.crop_size} is larger than "
                            f"the records' {frame} px frame, so every crop would be "
                            f"enlarged; use a crop_size of at most {frame}")
    # The hint chroma is scaled to about [-1, 1] by the largest chroma of the grid.
    hint_scale = 1.0 / max(abs(v) for v in bins.grid.low + bins.grid.high)
    return c.model_config(bins.num_bins, len(report.classes), hint_scale,
                          bins.grid.color_space)


def _fit(c, model, datasets, callbacks, initial_epoch, steps_per_epoch, strategy=None):
    """model.fit over the datasets (multi_worker.fit under a multi-worker strategy);
    refuses a run whose loss diverged or that made no step."""
    train_dataset, val_dataset, validation_steps = datasets[:3]
    if strategy is not None and multi_worker.is_multi_worker(strategy):
        jit_compile = c.runtime.jit_compile and multi_worker.can_compile_collectives()
        if c.runtime.jit_compile and not jit_compile:
            print("train: --jit_compile: XLA cannot compile the gradients' all-reduce on "
                  "CPUs (TensorFlow: 'Collectives are not yet implemented for CPU "
                  "devices when compiling with XLA'); the steps run uncompiled",
                  flush=True)
        history = multi_worker.fit(
            model, strategy, train_dataset, c.optimization.epochs, initial_epoch, steps_per_epoch,
            callbacks, val_dataset, validation_steps, jit_compile)
    else:
        # Keras' live progress bar is for terminals; in a log or a pipe, one line an
        # epoch.
        verbose = 2 if c.runtime.verbose == 1 and not sys.stdout.isatty() else c.runtime.verbose
        history = model.fit(train_dataset, epochs=c.optimization.epochs,
                            steps_per_epoch=steps_per_epoch, initial_epoch=initial_epoch,
                            validation_data=val_dataset, validation_steps=validation_steps,
                            shuffle=False, callbacks=callbacks, verbose=verbose)
    if any(not math.isfinite(v) for v in history.history.get("loss", [0.0])):
        raise TrainingError("training stopped: the loss became NaN or infinite (nothing saved "
                            "from that epoch; try a lower learning_rate)")
    if not history.epoch or model.optimizer.iterations.numpy() == 0:
        raise TrainingError("no training step ran: the training data gave no batch")
    return history


def run(config, extra_callbacks=(), strategy=None):
    """Trains as the TrainConfig says; returns the keras History (None if nothing was
    left to do). The Keras dtype policy is set for the run and restored afterwards; the
    initial weights and the data order come from config.runtime.seed alone. strategy: made by
    devices.make_strategy(config.runtime.strategy) when None."""
    c = config
    c.check()
    records_bins, report = load_records_and_bins(c.data.records_dir, c.data.bins_path)
    bins = c.bins(records_bins)
    model_config = _check_against_records(c, bins, report)
    pipeline = c.pipeline_config(model_config)
    strategy = strategy or devices.make_strategy(c.runtime.strategy)
    distributed = multi_worker.is_multi_worker(strategy)
    chief, task = multi_worker.worker_role(strategy) if distributed else (True, "")
    initial_epoch = _prepare_model_dir(c, model_config, bins, pipeline, write=chief)
    if initial_epoch >= c.optimization.epochs:
        print(f"train: {c.runtime.model_dir} already has {initial_epoch} of "
              f"{c.optimization.epochs} epochs; nothing to do (raise epochs to continue)")
        return None
    train_count = report.written[records.TRAIN]
    steps_per_epoch = c.optimization.steps_per_epoch or \
        max(1, train_count // c.optimization.batch_size)
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(
        "float32" if c.runtime.mixed_precision == "none" else c.runtime.mixed_precision)
    # The chief writes the run; the other workers write to a temporary folder.
    write_dir = None if chief else multi_worker.temporary_write_dir(task)
    try:
        datasets = _distributed_datasets(c, report, bins, pipeline, initial_epoch,
                                         steps_per_epoch, strategy) if distributed else \
            _datasets(c, report, bins, pipeline, initial_epoch, steps_per_epoch)
        image_dataset = datasets[3 if distributed else 1]  # validation photos to log
        with strategy.scope():
            model = _compiled_model(c, model_config, bins, steps_per_epoch)
            if strategy.num_replicas_in_sync > 1:
                # Batch statistics of the global batch, as one process would compute.
                synchronize_batch_norm(model)
        if initial_epoch == 0:
            _set_starting_weights(c, model, model_config, bins)
        print(f"train: {model.count_params():,} parameters, {bins.num_bins} bins "
              f"({bins.grid.color_space}), decoding {c.network.decoding}, {train_count} "
              f"train images, {steps_per_epoch} steps x {c.optimization.batch_size} per "
              f"epoch, epochs {initial_epoch + 1}..{c.optimization.epochs}, strategy "
              f"{type(strategy).__name__} ({strategy.num_replicas_in_sync} replicas"
              f"{', ' + task if task else ''})", flush=True)
        callbacks = _make_callbacks(c.runtime.model_dir, image_dataset, c.decoder(bins),
                                    bins.grid.color_space, c.runtime.num_log_images,
                                    steps_per_epoch, c.optimization.batch_size,
                                    c.optimization.epochs, write_dir)
        history = _fit(c, model, datasets, callbacks + list(extra_callbacks),
                       initial_epoch, steps_per_epoch, strategy)
        if distributed:
            print(f"train: {task}: weights fingerprint "
                  f"{multi_worker.weights_fingerprint(model)}", flush=True)
        return history
    finally:
        keras.mixed_precision.set_global_policy(policy)
        if write_dir:
            multi_worker.remove_write_dir(write_dir)
