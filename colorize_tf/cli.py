"""Flag parsing for the entry points.

Each entry point defines its flags in `define_flags(flag_values)` on a FlagValues of
its own, so several entry points can be imported in one process (tests, tools) and
a flagfile can be parsed without running anything.
"""
import os
import sys
import tempfile

from absl import flags


class UsageError(Exception):
    """A refusal the user can fix: printed as one line, exit code 2."""


def parse(define_flags, argv=None, positional=False):
    """argv (default sys.argv) -> (dict of flag values, positional args).

    --help prints the flags and exits 0; a bad flag exits 2 with one line.
    """
    argv = list(sys.argv if argv is None else argv)
    prog = argv[0].split("/")[-1].removesuffix(".py")
    values = flags.FlagValues()
    define_flags(values)
    if any(a in ("--help", "-h", "--helpfull") for a in argv[1:]):
        print(values.get_help())
        sys.exit(0)
    try:
        rest = values(argv)[1:]
    except flags.Error as e:
        fail(prog, e)
    if rest and not positional:
        fail(prog, f"unexpected arguments: {rest}")
    return values.flag_values_dict(), rest


def fail(prog, message):
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(2)


class definer:
    """Shortcuts that define flags on one FlagValues: d.string(name, default, help)."""

    def __init__(self, flag_values):
        self._fv = flag_values

    def __getattr__(self, kind):
        define = getattr(flags, f"DEFINE_{kind}")
        return lambda *args, **kwargs: define(*args, flag_values=self._fv, **kwargs)


def display_path(path):
    """A path as printable text: names that are not valid UTF-8 (bytes kept by Python
    as surrogate escapes) are shown with U+FFFD instead of crashing print()."""
    text = os.fsencode(path).decode("utf-8", "replace")
    return text


VERBOSE_LOGS_ENV = "COLORIZE_TF_TF_LOGS"


def quiet_tensorflow():
    """Imports TensorFlow (and Keras) with their start-up lines on stderr hidden: ~20
    lines of oneDNN, CUDA stub, cuInit and absl notices that are not for users. Set
    COLORIZE_TF_TF_LOGS=1 to see them; an import that fails shows them anyway."""
    if "tensorflow" in sys.modules or os.environ.get(VERBOSE_LOGS_ENV):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            import tensorflow as tf
            tf.config.list_physical_devices()  # cuInit and device notices happen here
            import keras  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
