"""Flag parsing for the entry points.

Each entry point defines its flags in `define_flags(flag_values)` on a FlagValues of
its own, so several entry points can be imported in one process (tests, tools) and
a flagfile can be parsed without running anything.
"""
import sys

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
