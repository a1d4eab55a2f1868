r"""Train a colorizer on records written by data_prep.build_records.

    python -m colorize_tf.train --flagfile=colorize_tf/configs/landscapes_cpu.flags

Any flag of the flagfile can be overridden after it. Each flag is a setting declared
once in training/config.py (type, default, help, choices). The run lives in
--model_dir (flags.json, bins.json, checkpoints/, backup/, logs/, history.csv:
training/state.py); run the same command again to resume it.
"""
from colorize_tf import cli  # first: as an entry point, hide TF start-up lines
if __name__ == "__main__":
    cli.quiet_tensorflow()
import sys

from colorize_tf import errors
from colorize_tf.training.config import TrainConfig, settings
from colorize_tf.training import devices
from colorize_tf.training import multi_worker
from colorize_tf.training import trainer

_DEFINE = {bool: "bool", int: "integer", float: "float", str: "string"}


def define_flags(fv):
    """One flag per training setting (settings()), on FlagValues fv."""
    d = cli.definer(fv)
    for s in settings():
        if s.choices:
            d.enum(s.flag, s.default, s.choices, s.help)
        else:
            getattr(d, _DEFINE[s.kind])(s.flag, s.default, s.help)


def main(argv=None):
    values, _ = cli.parse(define_flags, argv)
    config = TrainConfig.from_flags(values)
    try:
        config.check()
        devices.configure_logical_cpus(config.runtime.logical_cpus)
        # Before anything else runs: a multi-worker strategy sets up collectives at start.
        strategy = multi_worker.make_strategy(config.runtime.cluster_timeout) \
            if config.runtime.strategy == "multi_worker" else None
        trainer.run(config, strategy=strategy)
    except multi_worker.ClusterError as e:  # not the user's flags: exit 1, not 2
        print(f"train: error: {e}", file=sys.stderr)
        sys.exit(1)
    except errors.Error as e:  # a setting, the records, a model, the run state
        cli.fail("train", e)


if __name__ == "__main__":
    cli.run_main("train", main)
