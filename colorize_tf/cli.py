"""Flag parsing for the entry points.

Each entry point defines its flags in `define_flags(flag_values)` on a FlagValues of
its own, so several entry points can be imported in one process (tests, tools) and
a flagfile can be parsed without running anything.
"""
import errno
import inspect
import os
import sys
import tempfile
import time

from absl import flags

from colorize_tf import errors
from colorize_tf import serving_api


class UsageError(errors.Error):
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
        print(help_text(define_flags, values))
        sys.exit(0)
    try:
        rest = values(argv)[1:]
    except flags.Error as e:
        fail(prog, e)
    if rest and not positional:
        fail(prog, f"unexpected arguments: {rest}")
    return values.flag_values_dict(), rest


def help_text(define_flags, values):
    """--help's text: the entry point's docstring (how to call it, with examples), then
    every flag it takes."""
    module = sys.modules.get(define_flags.__module__)
    usage = inspect.cleandoc(getattr(module, "__doc__", None) or "")
    # absl heads the flags with the module that defined them (cli, for all of ours,
    # and absl.flags for --flagfile): one list reads better.
    flag_lines = [line for line in values.get_help().splitlines()
                  if line.startswith(" ")]
    return "\n\n".join(part for part in (usage, "flags:\n" + "\n".join(flag_lines)) if part)


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
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # our own messages name each failure
    # OpenCV's decoders log each file they cannot read ("imdecode_: can't read header")
    # to stderr, in this process and in data prep's workers (which inherit this), where
    # our one line per file says it already.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
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


class Progress:
    """A progress line for long jobs: redrawn in place on a terminal; elsewhere (logs,
    CI, pipes) one plain line every `every` seconds and at the end, never escape codes.
    update(done) with the number of items done so far."""

    def __init__(self, total, unit, stream=None, every=10.0):
        self.total, self.unit, self.every = total, unit, every
        self.stream = stream or sys.stdout
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()
        self.last = -1.0e9

    def update(self, done):
        now = time.monotonic()
        finished = self.total is not None and done >= self.total
        if not finished and now - self.last < (0.2 if self.tty else self.every):
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        of = f"/{self.total}" if self.total else ""
        line = f"{done}{of} {self.unit}s, {rate:.1f} {self.unit}s/s"
        if self.tty:
            self.stream.write("\r" + line + ("\n" if finished else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def check_output_dir(path, flag="--output_dir"):
    """UsageError unless path is given and is a folder this process can write in
    (created if missing; a probe file is written and removed)."""
    if not path:
        raise UsageError(f"{flag} is required")
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{flag} {path!r} is a file, not a folder")
    probe = os.path.join(path, f".write-probe-{os.getpid()}")
    try:
        os.makedirs(path, exist_ok=True)
        with open(probe, "wb"):
            pass
        os.remove(probe)
    except OSError as e:
        raise UsageError(f"cannot write to {flag} {path!r}: {e.strerror or e}") from None


def check_temperature(value, flag="--temperature"):
    """UsageError unless value is a temperature (serving_api.temperature_problem)."""
    problem = serving_api.temperature_problem(value)
    if problem:
        raise UsageError(problem.replace("temperature", flag, 1))


def parse_temperatures(values, flag="--temperatures"):
    """A list flag of temperatures -> [float], each one checked (UsageError)."""
    try:
        temperatures = [float(t) for t in values]
    except ValueError:
        raise UsageError(f"{flag} must be numbers, got {values}") from None
    if not temperatures:
        raise UsageError(f"{flag} must name at least one temperature (e.g. 0.2,0.38,1)")
    for t in temperatures:
        check_temperature(t, flag)
    return temperatures


DEBUG_ENV = "COLORIZE_TF_DEBUG"


_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_DISK_FULL_TEXT = os.strerror(errno.ENOSPC)  # "No space left on device"


def disk_full_path(error):
    """The path being written when error says the disk (or quota) is full, else None.
    Python's OSError carries errno and filename; TensorFlow's writers (TFRecordWriter,
    SaveV2) raise ResourceExhaustedError with "PATH; No space left on device"."""
    if isinstance(error, OSError) and error.errno in _DISK_FULL_ERRNOS:
        path = os.fsdecode(error.filename) if error.filename is not None else ""
    elif _DISK_FULL_TEXT in str(error):
        before = str(error).split(_DISK_FULL_TEXT)[0].rstrip("; ").split()
        path = before[-1] if before else ""
    else:
        return None
    # The temp file being written says little: name the folder above the first hidden
    # part (".train-...tmp-123", ".1.tmp-123/variables/...": safe_write's temp names).
    parts = path.split(os.sep)
    hidden = [i for i, part in enumerate(parts) if part.startswith(".") and part != "."]
    return os.sep.join(parts[:hidden[0]]) if hidden and hidden[0] > 0 else path or "?"


def run_main(prog, main):
    """Runs an entry point's main(): Ctrl-C is one line and exit 130 (a rerun of the same
    command resumes or redoes only what was not finished); an unexpected error is one
    line and exit 1, its traceback shown only with COLORIZE_TF_DEBUG=1."""
    try:
        main()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted (nothing half-written is left; run the same command "
              "again to go on)", file=sys.stderr)
        sys.exit(130)
    except Exception as e:  # the last line of defence: never a traceback for users
        if os.environ.get(DEBUG_ENV):
            raise
        full = disk_full_path(e)
        if full is not None:
            print(f"{prog}: error: no space left on the device while writing in {full!r}: "
                  "free some space and run the same command again", file=sys.stderr)
            sys.exit(1)
        message = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
        print(f"{prog}: internal error: {type(e).__name__}: {message} (set {DEBUG_ENV}=1 "
              "for the traceback, and please report it)", file=sys.stderr)
        sys.exit(1)
