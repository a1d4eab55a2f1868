"""The typed configuration of a training run: every setting of `colorize_tf.train`, built
once from its flags, checked, and passed down. It is saved in the run as flags.json
(training_state.FLAGS_NAME); `model_config` and `pipeline_config` derive the model's
and the input pipeline's own configs from it.

The defaults of the settings that the model and the input pipeline own are theirs
(model.ModelConfig, input_pipeline.PipelineConfig): written once, there.
"""
import dataclasses
import os
import typing

from colorize_tf.chroma import bins as bins_lib
from colorize_tf.chroma import decoding
from colorize_tf.data import input_pipeline
from colorize_tf.modeling import model as model_lib

LR_SCHEDULES = ("two_stage", "cosine", "step", "constant")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker")
PRECISIONS = ("none", "mixed_float16", "mixed_bfloat16")
_PIPELINE = input_pipeline.PipelineConfig
_MODEL = model_lib.ModelConfig


def _parse_setting(kind, text, where):
    """A flagfile value -> the field's type (bool, int, float, str, Optional of one)."""
    if typing.get_origin(kind) is typing.Union:  # Optional[X]
        kind = next(k for k in typing.get_args(kind) if k is not type(None))
    if kind is bool:
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{where}: {text!r} is not a boolean")
        return text.lower() in ("true", "1")
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a {kind.__name__}") from None


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """records_dir: output of data_prep.build_records; model_dir: where the run lives;
    bins_path: bins artifact (None: <records_dir>/bins.json). Sizes in px, rates per
    optimizer step; epochs counts the whole run (a resumed run continues to it)."""
    records_dir: str
    model_dir: str
    bins_path: typing.Optional[str] = None
    epochs: int = 10
    steps_per_epoch: int = 0  # 0: one pass over the train split
    validation_steps: int = 0  # 0: the whole val split
    batch_size: int = 16
    crop_size: int = _PIPELINE.crop_size
    learning_rate: float = 1e-3
    lr_schedule: str = "two_stage"
    lr_decay_epoch: int = 0  # 0: two thirds of epochs
    lr_decay_factor: float = 0.1
    base_filters: int = _MODEL.base_filters
    depth: int = _MODEL.depth
    global_context: bool = _MODEL.global_context
    # The pretrained colorizer (architecture effnet_lite0): start its encoder from the
    # ImageNet weights (of the "pretrained" extra's package), and which of it trains.
    pretrained_encoder: bool = True
    encoder_training: str = "full"
    architecture: str = _MODEL.architecture
    decoding: str = _MODEL.decoding
    channel_bins: int = 20  # per chroma channel, decoding "per_channel" (seed 002)
    rebalance_lambda: typing.Optional[float] = None  # None: the bins' own
    soft_targets: bool = _PIPELINE.soft_targets
    soft_k: int = _PIPELINE.soft_k
    soft_sigma: float = _PIPELINE.soft_sigma
    augment: bool = True  # master switch of mirror, random_crop and noise
    mirror: bool = _PIPELINE.mirror
    random_crop: bool = _PIPELINE.random_crop
    crop_scale_min: float = _PIPELINE.crop_scale[0]
    noise_stddev: float = _PIPELINE.noise_stddev
    regression_weight: float = 0.0  # > 0 adds the chroma regression head
    scene_weight: float = 0.0  # > 0 adds the scene head
    scene_label_smoothing: float = 0.0
    hints: bool = False  # the hints inputs (Zhang et al. 2017), simulated from the truth
    warm_start: typing.Optional[str] = None  # a SavedModel whose weights start a new run
    strategy: str = "auto"
    logical_cpus: int = 0
    mixed_precision: str = "none"
    jit_compile: bool = False
    seed: int = _PIPELINE.seed
    cache: bool = _PIPELINE.cache
    deterministic: bool = _PIPELINE.deterministic
    shuffle_buffer: int = _PIPELINE.shuffle_buffer
    num_log_images: int = 4
    verbose: int = 1

    @classmethod
    def from_flags(cls, values):
        """From a dict of flag values (the flag --bins is the field bins_path); flags
        that are not settings (flagfile, help) are left out."""
        values = dict(values)
        values["bins_path"] = values.pop("bins", None)
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    @classmethod
    def from_flagfile(cls, path, **overrides):
        """From a training flagfile (colorize_tf/configs/*.flags: `--name=value`,
        `--name` / `--noname` for booleans, `#` comments), then overrides (field=value),
        without the command line: for Python callers and the tests. ValueError names a
        line that is not a setting (python -m colorize_tf.train reads the same files
        with its flags; tests/test_training_config.py checks that both agree)."""
        return cls(**{**_read_flagfile(path, typing.get_type_hints(cls)), **overrides})

    def to_dict(self):
        return dataclasses.asdict(self)

    def bins(self, bins):
        """The records' bins, with rebalance_lambda's weights when it is set (seed 001's
        comparison without rebalancing is lambda = 1: uniform weights)."""
        if self.rebalance_lambda is None:
            return bins
        return dataclasses.replace(bins, rebalance_lambda=float(self.rebalance_lambda))

    def decoder(self, bins):
        """-> decoding.Decoder of the model's output, for bins (the records')."""
        if self.decoding == decoding.PER_CHANNEL:
            return decoding.Decoder.for_channels(
                bins_lib.channel_grid(bins.grid.color_space, self.channel_bins))
        if self.decoding == decoding.REGRESSION:
            return decoding.Decoder.regression()
        return decoding.Decoder.for_bins(bins)

    def model_config(self, num_bins, num_scenes, hint_scale=1.0, color_space=_MODEL.color_space):
        """-> model.ModelConfig for bins of num_bins and num_scenes classes (scene head
        only when scene_weight > 0); hint_scale: of the hint chroma (hints only);
        color_space: of the bins (the luma the model takes)."""
        if self.decoding == decoding.PER_CHANNEL:
            num_bins = 2 * self.channel_bins
        return model_lib.ModelConfig(
            num_bins=num_bins, base_filters=self.base_filters, depth=self.depth,
            regression_head=self.regression_weight > 0,
            num_scenes=num_scenes if self.scene_weight > 0 else 0,
            decoding=self.decoding, architecture=self.architecture, hints=self.hints,
            global_context=self.global_context,
            hint_scale=hint_scale if self.hints else 1.0, color_space=color_space)

    def pipeline_config(self, model_config):
        """-> input_pipeline.PipelineConfig giving the targets model_config's heads need;
        augment=False switches mirror, random_crop and noise off."""
        augment = self.augment
        return input_pipeline.PipelineConfig(
            crop_size=self.crop_size, mirror=augment and self.mirror,
            random_crop=augment and self.random_crop, crop_scale=(self.crop_scale_min, 1.0),
            noise_stddev=self.noise_stddev if augment else 0.0,
            soft_targets=self.soft_targets, soft_k=self.soft_k, soft_sigma=self.soft_sigma,
            regression_target=model_config.regression_head,
            scene_target=model_config.num_scenes > 0,
            regression_only=model_config.decoding == decoding.REGRESSION,
            hints=model_config.hints, target_stride=model_config.output_stride,
            shuffle_buffer=self.shuffle_buffer,
            cache=self.cache, deterministic=self.deterministic, seed=self.seed)


def _read_flagfile(path, types):
    """TrainConfig.from_flagfile's reading: {field: value}. A nested --flagfile=F is read
    in place: F as the command line would find it (from the working directory), else
    beside the file that names it."""
    values = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("--flagfile="):
                nested = line.removeprefix("--flagfile=")
                if not os.path.exists(nested):
                    nested = os.path.join(os.path.dirname(path), os.path.basename(nested))
                values.update(_read_flagfile(nested, types))
                continue
            name, has_value, text = line.removeprefix("--").partition("=")
            name = "bins_path" if name == "bins" else name
            if not has_value and name.startswith("no") and types.get(name[2:]) is bool:
                name, text, has_value = name[2:], "false", True
            if not line.startswith("--") or name not in types:
                raise ValueError(f"{path}:{number}: {line!r} is not a training setting")
            values[name] = _parse_setting(types[name], text if has_value else "true",
                                          f"{path}:{number}")
    return values
