"""The entry points' shared command line: --help."""
import importlib

import pytest

ENTRY_POINTS = ["colorize_tf.client", "colorize_tf.colorize", "colorize_tf.evaluate",
                "colorize_tf.export", "colorize_tf.serve", "colorize_tf.study",
                "colorize_tf.train", "data_prep.build_records"]


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_help_shows_how_to_call_it_then_every_flag(name, capsys):
    module = importlib.import_module(name)
    with pytest.raises(SystemExit) as exit_:
        module.main([name, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    # The usage with its example command comes first (absl alone prints only flags,
    # headed by the module that defined them: colorize_tf.cli for every entry point).
    assert text.startswith(module.__doc__.strip().splitlines()[0])
    assert f"python -m {name}" in text
    assert "colorize_tf.cli:" not in text
    flags_part = text.split("\nflags:\n", 1)[1]
    listed = {line.split(":")[0].strip().replace("--[no]", "--")
              for line in flags_part.splitlines() if line.startswith("  --")}
    assert listed == {"--flagfile", "--undefok", *_defined_flags(module)}


def _defined_flags(module):
    from absl import flags
    values = flags.FlagValues()
    module.define_flags(values)
    return {f"--{name}" for name in values}


def test_a_full_disk_is_one_line_naming_the_folder_written(capsys):
    # Issue 41: TensorFlow's writers (TFRecordWriter, SaveV2) raise ResourceExhaustedError
    # "PATH; No space left on device": that was "internal error: ResourceExhaustedError".
    import errno
    import tensorflow as tf
    from colorize_tf import cli
    for error, folder in [
            (tf.errors.ResourceExhaustedError(
                None, None, "/out/rec/.train-00000-of-00001.tfrecord.tmp-77.tfrecord; No "
                            "space left on device"), "/out/rec"),
            (tf.errors.ResourceExhaustedError(
                None, None, "{{function_node SaveV2}} /m/.1.tmp-5/variables/part-0; No "
                            "space left on device [Op:SaveV2]"), "/m"),
            (OSError(errno.ENOSPC, "No space left on device", "/runs/a/checkpoints/last.keras"),
             "/runs/a/checkpoints/last.keras"),
            (OSError(errno.EDQUOT, "Disk quota exceeded", "/q/x.png"), "/q/x.png")]:
        assert cli.disk_full_path(error) == folder

        def main():
            raise error
        with pytest.raises(SystemExit) as exit_:
            cli.run_main("prog", main)
        assert exit_.value.code == 1
        assert capsys.readouterr().err == (
            f"prog: error: no space left on the device while writing in {folder!r}: free "
            "some space and run the same command again\n")
    for other in (OSError(errno.EACCES, "Permission denied", "/x"),
                  tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")):
        assert cli.disk_full_path(other) is None
