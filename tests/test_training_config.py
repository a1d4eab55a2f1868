"""TrainConfig: built from the flags with their defaults, and the model's and pipeline's
configs derived from it."""
import dataclasses

import pytest

from colorize_tf import cli
from colorize_tf import train
from colorize_tf.data import input_pipeline
from colorize_tf.modeling.model import ModelConfig
from colorize_tf.training.config import GROUPS
from colorize_tf.training.config import TrainConfig


def _config(*args):
    values, _ = cli.parse(train.define_flags, ["train", "--records_dir=r", "--model_dir=m",
                                               *args])
    return TrainConfig.from_flags(values)


def test_flags_give_the_configs_defaults():
    assert _config() == TrainConfig.create(records_dir="r", model_dir="m")
    # The settings the model and the pipeline own keep their defaults.
    config = _config()
    assert config.model_config(32, 0) == ModelConfig(num_bins=32)
    assert config.pipeline_config(config.model_config(32, 0)) == input_pipeline.PipelineConfig()


def test_flags_reach_the_derived_configs():
    config = _config("--bins=b.json", "--depth=4", "--crop_size=64", "--scene_weight=0.5",
                     "--regression_weight=1", "--soft_targets", "--soft_k=3", "--seed=7",
                     "--frame_scale_crops")
    assert config.data.bins_path == "b.json"
    model_config = config.model_config(10, 3)
    assert (model_config.depth, model_config.num_scenes, model_config.regression_head) == \
        (4, 3, True)
    pipeline = config.pipeline_config(model_config)
    assert (pipeline.crop_size, pipeline.soft_targets, pipeline.soft_k, pipeline.seed,
            pipeline.frame_scale_crops) == (64, True, 3, 7, True)
    assert pipeline.regression_target and pipeline.scene_target
    # No scene head without a scene weight, whatever the records' classes.
    assert _config().model_config(10, 3).num_scenes == 0


def test_augment_false_switches_every_augmentation_off():
    config = _config("--augment=false", "--noise_stddev=0.1")
    pipeline = config.pipeline_config(config.model_config(8, 0))
    assert not (pipeline.mirror or pipeline.random_crop or pipeline.noise_stddev)
    on = _config("--mirror=false")
    pipeline = on.pipeline_config(on.model_config(8, 0))
    assert not pipeline.mirror and pipeline.random_crop and pipeline.noise_stddev == 0.03


def test_to_dict_round_trips_and_every_setting_has_one_group():
    config = _config("--epochs=3")
    assert TrainConfig.create(**config.to_dict()) == config
    assert config.optimization.epochs == 3
    groups = [{f.name for f in dataclasses.fields(kind)} for kind in
              GROUPS.values()]
    assert sum(map(len, groups)) == len(set().union(*groups)) == len(config.to_dict())
    flags = set(cli.parse(train.define_flags, ["train"])[0])
    assert flags - {"bins"} | {"bins_path"} == set(config.to_dict())  # a flag each
    with pytest.raises(TypeError, match="no training setting 'epoch'"):
        TrainConfig.create(records_dir="r", model_dir="m", epoch=3)


def test_from_flagfile_reads_every_shipped_config_as_the_command_does():
    # The library's reader and the command's flags agree on every shipped flagfile
    # (nested --flagfile included), so the tests may train through the library.
    import glob
    import os
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = sorted(glob.glob(os.path.join(repo, "colorize_tf", "configs", "**", "*.flags"),
                             recursive=True))
    assert len(paths) >= 10
    cwd = os.getcwd()
    os.chdir(repo)  # the study's flagfiles name common.flags from the checkout
    try:
        for path in paths:
            values, _ = cli.parse(train.define_flags, [
                "train", f"--flagfile={path}", "--records_dir=r", "--model_dir=m"])
            assert TrainConfig.from_flagfile(path, records_dir="r", model_dir="m") == \
                TrainConfig.from_flags(values), path
    finally:
        os.chdir(cwd)


def test_from_flagfile_refuses_a_line_that_is_not_a_setting(tmp_path):
    import pytest
    flagfile = tmp_path / "x.flags"
    flagfile.write_text("# a comment\n--epochs=3\n--nomirror\n--bins=b.json\n")
    config = TrainConfig.from_flagfile(str(flagfile), records_dir="r", model_dir="m",
                                       epochs=5)
    assert (config.optimization.epochs, config.data.mirror, config.data.bins_path) == \
        (5, False, "b.json")
    for line, message in [("--epoch=3", "is not a training setting"),
                          ("--epochs=three", "'three' is not a int"),
                          ("--mirror=maybe", "'maybe' is not a boolean")]:
        flagfile.write_text(f"\n{line}\n")
        with pytest.raises(ValueError, match=f"x.flags:2: .*{message}"):
            TrainConfig.from_flagfile(str(flagfile), records_dir="r", model_dir="m")


def test_to_flagfile_writes_a_run_the_command_and_the_library_read_back(tmp_path):
    config = TrainConfig.create(records_dir="r", model_dir="m", bins_path="b.json", mirror=False,
                                learning_rate=3e-4, rebalance_lambda=None, crop_scale_min=0.7)
    path = str(tmp_path / "run.flags")
    config.to_flagfile(path)
    assert TrainConfig.from_flagfile(path) == config
    values, _ = cli.parse(train.define_flags, ["train", f"--flagfile={path}"])
    assert TrainConfig.from_flags(values) == config
