"""The one base of the library's errors (no TensorFlow import).

Every error colorize_tf raises on purpose, for a bad input, file, setting, request or
state, is a `colorize_tf.Error`, so `except colorize_tf.Error` catches them all and
nothing else. It is a ValueError, as most of them were before it existed, so code that
caught ValueError goes on catching them. The subclasses say which stage refused what:
`inference.ModelError` (a model), `config.ConfigError` (a training setting),
`trainer.TrainingError`, `exporter.ExportError`, `cli.UsageError` (a flag), ...
Wrong argument types stay TypeErrors, as Python's own functions raise them.
"""


class Error(ValueError):
    """A refusal by colorize_tf, its message saying what and why in one line."""
