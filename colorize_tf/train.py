r"""Train a ColorUNet on records written by data_prep.build_records.

    python -m colorize_tf.train --flagfile=colorize_tf/configs/landscapes_cpu.flags

Any flag of the flagfile can be overridden after it on the command line. The run
lives in --model_dir:
    flags.json          effective flags          model_config.json   architecture
    bins.json           the bins it was trained with (export embeds them)
    checkpoints/last.keras, best.keras (with optimizer state)
    backup/             BackupAndRestore state: rerun the same command to resume
    logs/               TensorBoard (scalars + colorized val images)
    history.csv         one row per epoch
"""
import dataclasses
import json
import math
import os
import sys

from colorize_tf import cli
from colorize_tf import safe_write
from colorize_tf.cli import UsageError


def define_flags(fv):
    """Defines this entry point's flags on the FlagValues fv."""
    d = cli.definer(fv)
    d.string("records_dir", None, "Output of data_prep.build_records.")
    d.string("bins", None, "Bins artifact; default: <records_dir>/bins.json.")
    d.string("model_dir", None, "Where the run lives (checkpoints, logs, configs).")
    d.integer("epochs", 10, "Epochs to train in total (a resumed run continues).")
    d.integer("steps_per_epoch", 0, "Batches per epoch; 0: one pass over train.")
    d.integer("validation_steps", 0, "Val batches per epoch; 0: the whole val split.")
    d.integer("batch_size", 16, "Global batch size.")
    d.integer("crop_size", 128, "Training side in px (divisible by 2^depth).")
    d.float("learning_rate", 1e-3, "Adam learning rate (stage 1).")
    d.enum("lr_schedule", "two_stage", ["two_stage", "cosine", "step", "constant"],
            "two_stage: the paper's drop once, at --lr_decay_epoch; step: every "
            "--lr_decay_epoch epochs; cosine: to 0 over the run.")
    d.integer("lr_decay_epoch", 0, "Epoch of the drop (two_stage) or the period "
            "(step); 0: two thirds of --epochs.")
    d.float("lr_decay_factor", 0.1, "Factor of each drop.")
    d.integer("base_filters", 16, "Filters of the first cell, doubled per level.")
    d.integer("depth", 3, "DownConv cells.")
    d.bool("soft_targets", False, "Zhang's soft encoding instead of one-hot.")
    d.integer("soft_k", 5, "Nearest bins of the soft encoding.")
    d.float("soft_sigma", 0.0, "Gaussian sigma of the soft encoding; 0: half a cell.")
    d.bool("augment", True, "Master switch of the augmentations below.")
    d.bool("mirror", True, "Random horizontal mirror.")
    d.bool("random_crop", True, "Random square crops.")
    d.float("crop_scale_min", 0.7, "Smallest crop side / shorter photo side.")
    d.float("noise_stddev", 0.03, "Max std of Gaussian noise on the input luma.")
    d.float("regression_weight", 0.0, "> 0 adds the chroma regression head.")
    d.float("scene_weight", 0.0, "> 0 adds the scene classification head.")
    d.enum("strategy", "auto", ["auto", "default", "mirrored", "multi_worker"],
            "auto: mirrored on >1 GPU; multi_worker reads TF_CONFIG.")
    d.integer("logical_cpus", 0, "Split the CPU into N logical devices "
            "(to exercise --strategy=mirrored without GPUs).")
    d.enum("mixed_precision", "none", ["none", "mixed_float16", "mixed_bfloat16"],
            "Keras dtype policy.")
    d.bool("jit_compile", False, "XLA-compile the train step.")
    d.integer("seed", 0, "Seed of weights, data order and augmentation.")
    d.bool("cache", False, "Keep parsed records in memory.")
    d.bool("deterministic", True, "Keep tf.data order deterministic.")
    d.integer("shuffle_buffer", 2048, "Examples shuffled together (consecutive blocks, after "
              "the shard order is shuffled).")
    d.integer("num_log_images", 4, "Val images colorized into TensorBoard per epoch.")
    d.integer("verbose", 1, "Keras verbosity: 0 silent, 1 progress bar, 2 one line.")


def check_flags(f):
    """Refuses flags that cannot make a sensible run, before any work (UsageError)."""
    for name in ("records_dir", "model_dir"):
        if not f[name]:
            raise UsageError(f"--{name} is required")
    if os.path.exists(f["model_dir"]) and not os.path.isdir(f["model_dir"]):
        raise UsageError(f"--model_dir {f['model_dir']!r} is a file, not a folder")
    at_least = {"epochs": 1, "batch_size": 1, "crop_size": 8, "base_filters": 1, "depth": 1,
                "soft_k": 1, "shuffle_buffer": 1, "steps_per_epoch": 0,
                "validation_steps": 0, "lr_decay_epoch": 0, "logical_cpus": 0,
                "num_log_images": 0, "seed": 0}
    for name, low in at_least.items():
        if f[name] < low:
            raise UsageError(f"--{name} must be >= {low}, got {f[name]}")
    if f["depth"] > 6:
        raise UsageError(f"--depth must be <= 6, got {f['depth']}")
    if f["crop_size"] % 2 ** f["depth"]:
        raise UsageError(f"--crop_size {f['crop_size']} is not divisible by 2^depth "
                         f"= {2 ** f['depth']}")
    if f["verbose"] not in (0, 1, 2):
        raise UsageError(f"--verbose must be 0, 1 or 2, got {f['verbose']}")
    positive = ("learning_rate", "lr_decay_factor")
    non_negative = ("soft_sigma", "noise_stddev", "regression_weight", "scene_weight")
    for name in positive + non_negative + ("crop_scale_min",):
        if not math.isfinite(f[name]):
            raise UsageError(f"--{name} must be a finite number, got {f[name]}")
    for name in positive:
        if f[name] <= 0:
            raise UsageError(f"--{name} must be > 0, got {f[name]}")
    for name in non_negative:
        if f[name] < 0:
            raise UsageError(f"--{name} must be >= 0, got {f[name]}")
    if not 0 < f["crop_scale_min"] <= 1:
        raise UsageError(f"--crop_scale_min must be in (0, 1], got {f['crop_scale_min']}")
    if f["lr_decay_factor"] > 1:
        raise UsageError(f"--lr_decay_factor must be in (0, 1], got {f['lr_decay_factor']}")


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def load_records_and_bins(records_dir, bins_path=None):
    """-> (bins, report); refuses missing records and bins that do not belong to them."""
    from colorize_tf import bins as bins_lib
    from colorize_tf import records
    if not records_dir or not os.path.isdir(records_dir):
        raise UsageError(f"--records_dir {records_dir!r} does not exist; "
                         "run python -m data_prep.build_records first")
    import tensorflow as tf
    if not tf.io.gfile.glob(records.shard_pattern(records_dir, records.TRAIN)):
        raise UsageError(f"no train shards in {records_dir!r}")
    report_path = os.path.join(records_dir, records.REPORT_NAME)
    if not os.path.exists(report_path):
        raise UsageError(f"{report_path} is missing: {records_dir!r} is not a "
                         "complete build_records output (was it killed? run it again)")
    try:
        report = records.Report.load(records_dir)
    except (OSError, ValueError, TypeError) as e:
        raise UsageError(f"{report_path} is not a build_records report ({e}); run "
                         "python -m data_prep.build_records again")
    try:
        report.verify(records_dir)
    except (OSError, ValueError) as e:
        raise UsageError(f"the records in {records_dir!r} do not match their report: "
                         f"{e}; run python -m data_prep.build_records again")
    if not report.written[records.TRAIN] or not report.bins:
        raise UsageError(f"{records_dir!r} holds no training photos (see {report_path})")
    bins_path = bins_path or os.path.join(records_dir, bins_lib.ARTIFACT_NAME)
    try:
        bins = bins_lib.Bins.load(bins_path)
    except (OSError, ValueError, KeyError) as e:
        raise UsageError(f"cannot load bins {bins_path!r}: {e}")
    if bins.fingerprint != report.bins_fingerprint:
        raise UsageError(f"bins {bins_path!r} (fingerprint {bins.fingerprint}) were not "
                         f"learned from the records in {records_dir!r} (fingerprint "
                         f"{report.bins_fingerprint})")
    return bins, report


def _learning_rate(base, schedule, epochs, steps_per_epoch, decay_epoch, factor):
    import keras
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


def _make_strategy(name, logical_cpus):
    import tensorflow as tf
    if logical_cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()


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


def _check_model_dir(model_dir, model_config, bins):
    """Refuses a model_dir that holds a run of another architecture or other bins."""
    from colorize_tf import training_state
    path = os.path.join(model_dir, training_state.MODEL_CONFIG_NAME)
    wanted = {"model": dataclasses.asdict(model_config), "bins_fingerprint": bins.fingerprint}
    if os.path.exists(path):
        try:
            found = _read_json(path)
        except (OSError, ValueError) as e:
            raise UsageError(f"{path} cannot be read ({e}); use a new --model_dir")
        if found != wanted:
            raise UsageError(f"--model_dir {model_dir!r} holds a run with another "
                             f"configuration ({found} != {wanted}); use a new --model_dir")
    return wanted


def _make_callbacks(model_dir, val_dataset, bins, num_log_images, steps_per_epoch,
                    batch_size, epochs):
    import keras
    from colorize_tf import training_callbacks
    from colorize_tf import training_state
    monitor = "val_loss" if val_dataset is not None else "loss"
    callbacks = [
        keras.callbacks.TerminateOnNaN(),
        # The CSV row first: a kill before the state's commit leaves an extra row,
        # which the resume trims (_trim_history).
        keras.callbacks.CSVLogger(os.path.join(model_dir, training_state.HISTORY_NAME),
                                  append=True),
        training_state.TrainingState(model_dir, monitor),
        keras.callbacks.TensorBoard(training_callbacks.log_dir(model_dir),
                                    update_freq="epoch"),
        training_callbacks.EpochSummary(epochs, steps_per_epoch * batch_size),
    ]
    if val_dataset is not None and num_log_images > 0:
        callbacks.append(training_callbacks.ColorizedImages(
            training_callbacks.log_dir(model_dir, "images"), val_dataset, bins,
            num_log_images))
    return callbacks


def _pipeline_config(f, model_config):
    """The flags -> input_pipeline.PipelineConfig (--augment switches all three off)."""
    from colorize_tf import input_pipeline
    augment = f["augment"]
    return input_pipeline.PipelineConfig(
        crop_size=f["crop_size"], mirror=augment and f["mirror"],
        random_crop=augment and f["random_crop"], crop_scale=(f["crop_scale_min"], 1.0),
        noise_stddev=f["noise_stddev"] if augment else 0.0,
        soft_targets=f["soft_targets"], soft_k=f["soft_k"], soft_sigma=f["soft_sigma"],
        regression_target=model_config.regression_head,
        scene_target=model_config.num_scenes > 0, shuffle_buffer=f["shuffle_buffer"],
        cache=f["cache"], deterministic=f["deterministic"], seed=f["seed"])


def _datasets(f, report, bins, pipeline, initial_epoch, steps_per_epoch):
    """-> (train dataset, val dataset or None, validation steps or None)."""
    from colorize_tf import input_pipeline
    from colorize_tf import records
    train_dataset = input_pipeline.make_dataset(
        records.shard_pattern(f["records_dir"], records.TRAIN), bins, f["batch_size"],
        True, pipeline, epochs=f["epochs"], initial_epoch=initial_epoch,
        steps_per_epoch=steps_per_epoch)
    val_count = report.written[records.VAL]
    if val_count == 0:
        return train_dataset, None, None
    # The same batches every epoch: one pass (or its first --validation_steps batches),
    # repeated, with the step count given to Keras so that it never reads past the end
    # (which it reports as "input ran out of data").
    validation_steps = math.ceil(val_count / f["batch_size"])
    if f["validation_steps"]:
        validation_steps = min(validation_steps, f["validation_steps"])
    val_dataset = input_pipeline.make_dataset(
        records.shard_pattern(f["records_dir"], records.VAL), bins, f["batch_size"], False,
        pipeline).take(validation_steps).repeat()
    return train_dataset, val_dataset, validation_steps


def _compiled_model(f, model_config, bins, steps_per_epoch):
    """The ColorUNet with its losses (and heads'), metrics and optimizer; call it inside
    the strategy's scope."""
    import keras
    from colorize_tf import losses
    from colorize_tf import metrics
    from colorize_tf import model as model_lib
    model = model_lib.build_colorunet(model_config)
    learning_rate = _learning_rate(f["learning_rate"], f["lr_schedule"], f["epochs"],
                                   steps_per_epoch, f["lr_decay_epoch"], f["lr_decay_factor"])
    bin_metrics = [metrics.MaskedTopKAccuracy(1), metrics.MaskedTopKAccuracy(5),
                   metrics.MaskedChromaError(bins.centres)]
    bin_loss = losses.MaskedRebalancedCrossEntropy(soft=f["soft_targets"])
    loss, weights, metric = bin_loss, None, bin_metrics
    if model_config.has_heads:
        loss, weights, metric = {"logits": bin_loss}, {"logits": 1.0}, {"logits": bin_metrics}
        if model_config.regression_head:
            loss["chroma"] = losses.MaskedChromaMSE()
            weights["chroma"] = f["regression_weight"]
        if model_config.num_scenes:
            loss["scene"] = losses.scene_loss()
            weights["scene"] = f["scene_weight"]
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss,
                  loss_weights=weights, metrics=metric, jit_compile=f["jit_compile"])
    return model


def _prepare_model_dir(f, model_config, bins, pipeline):
    """Checks and writes the run's configs; -> epochs already done (0 for a new run)."""
    from colorize_tf import bins as bins_lib
    from colorize_tf import training_state
    model_dir = f["model_dir"]
    os.makedirs(model_dir, exist_ok=True)
    run_config = _check_model_dir(model_dir, model_config, bins)
    state, messages = training_state.read_state(model_dir)
    for message in messages:
        print(f"train: {message}")
    initial_epoch = state["epoch"] if state else 0
    safe_write.write_json(os.path.join(model_dir, training_state.MODEL_CONFIG_NAME), run_config)
    safe_write.write_json(os.path.join(model_dir, training_state.FLAGS_NAME), f)
    safe_write.write_json(os.path.join(model_dir, training_state.PIPELINE_CONFIG_NAME),
                          dataclasses.asdict(pipeline))
    bins.save(os.path.join(model_dir, bins_lib.ARTIFACT_NAME))
    _trim_history(os.path.join(model_dir, training_state.HISTORY_NAME), initial_epoch)
    return initial_epoch


def run(flag_values, extra_callbacks=()):
    """Trains as the flags say; returns the keras History (None if nothing was left to do).

    The Keras dtype policy is set for the run and restored afterwards.
    """
    import keras
    from colorize_tf import model as model_lib
    from colorize_tf import records
    f = flag_values
    check_flags(f)
    bins, report = load_records_and_bins(f["records_dir"], f["bins"])
    if f["soft_targets"] and f["soft_k"] > bins.num_bins:
        raise UsageError(f"--soft_k {f['soft_k']} is more than the {bins.num_bins} bins")
    train_count = report.written[records.TRAIN]
    if f["batch_size"] > train_count:
        raise UsageError(f"--batch_size {f['batch_size']} is larger than the {train_count} "
                         "training photos: no full batch, no training step")
    num_scenes = len(report.classes) if f["scene_weight"] > 0 else 0
    if f["scene_weight"] > 0 and num_scenes < 2:
        raise UsageError("--scene_weight needs records with at least two classes")
    model_config = model_lib.ModelConfig(
        num_bins=bins.num_bins, base_filters=f["base_filters"], depth=f["depth"],
        regression_head=f["regression_weight"] > 0, num_scenes=num_scenes)
    pipeline = _pipeline_config(f, model_config)
    initial_epoch = _prepare_model_dir(f, model_config, bins, pipeline)
    if initial_epoch >= f["epochs"]:
        print(f"train: {f['model_dir']} already has {initial_epoch} of {f['epochs']} epochs; "
              "nothing to do (raise --epochs to continue)")
        return None
    steps_per_epoch = f["steps_per_epoch"] or max(1, train_count // f["batch_size"])
    strategy = _make_strategy(f["strategy"], f["logical_cpus"])
    keras.utils.set_random_seed(f["seed"])
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(
        "float32" if f["mixed_precision"] == "none" else f["mixed_precision"])
    try:
        train_dataset, val_dataset, validation_steps = _datasets(
            f, report, bins, pipeline, initial_epoch, steps_per_epoch)
        with strategy.scope():
            model = _compiled_model(f, model_config, bins, steps_per_epoch)
        print(f"train: {model.count_params():,} parameters, {bins.num_bins} bins "
              f"({bins.grid.color_space}), {train_count} train images, {steps_per_epoch} "
              f"steps x {f['batch_size']} per epoch, epochs {initial_epoch + 1}.."
              f"{f['epochs']}, strategy {type(strategy).__name__} "
              f"({strategy.num_replicas_in_sync} replicas)", flush=True)
        callbacks = _make_callbacks(f["model_dir"], val_dataset, bins, f["num_log_images"],
                                    steps_per_epoch, f["batch_size"], f["epochs"])
        # Keras' live progress bar is for terminals; in a log or a pipe, one line an epoch.
        verbose = 2 if f["verbose"] == 1 and not sys.stdout.isatty() else f["verbose"]
        history = model.fit(train_dataset, epochs=f["epochs"], steps_per_epoch=steps_per_epoch,
                            initial_epoch=initial_epoch, validation_data=val_dataset,
                            validation_steps=validation_steps, shuffle=False,
                            callbacks=callbacks + list(extra_callbacks), verbose=verbose)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    if any(not math.isfinite(v) for v in history.history.get("loss", [0.0])):
        raise UsageError("training stopped: the loss became NaN or infinite (nothing saved "
                         "from that epoch; try a lower --learning_rate)")
    if not history.epoch or model.optimizer.iterations.numpy() == 0:
        raise UsageError("no training step ran: the training data gave no batch")
    return history


def main(argv=None):
    values, _ = cli.parse(define_flags, argv)
    try:
        check_flags(values)
    except UsageError as e:
        cli.fail("train", e)
    cli.quiet_tensorflow()
    from colorize_tf import training_state
    try:
        run(values)
    except (UsageError, training_state.StateError) as e:
        cli.fail("train", e)


if __name__ == "__main__":
    cli.run_main("train", main)
