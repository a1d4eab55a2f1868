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
