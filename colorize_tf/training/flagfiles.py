"""Training flagfiles (colorize_tf/configs/*.flags and a run's own): `--name=value`,
`--name` / `--noname` for booleans, `#` comments, nested `--flagfile=F`; read into
settings without the command line (TrainConfig.from_flagfile) and written back from
them (TrainConfig.to_flagfile), so that python -m colorize_tf.train and the library
read the same files alike.
"""
import os
import typing

from colorize_tf import errors
from colorize_tf import safe_write


def parse_setting(kind, text, where):
    """A flagfile value -> the field's type (bool, int, float, str, Optional of one)."""
    if typing.get_origin(kind) is typing.Union:  # Optional[X]
        kind = next(k for k in typing.get_args(kind) if k is not type(None))
    if kind is bool:
        if text.lower() not in ("true", "false", "1", "0"):
            raise errors.Error(f"{where}: {text!r} is not a boolean")
        return text.lower() in ("true", "1")
    try:
        return kind(text)
    except ValueError:
        raise errors.Error(f"{where}: {text!r} is not a {kind.__name__}") from None


def read_flagfile(path, types):
    """path -> {field: value}, each parsed to its type in types {field: type}. A nested --flagfile=F is read
    in place: F as the command line would find it (from the working directory), else
    beside the file that names it (an installed package's configs/study/common.flags,
    named from the checkout)."""
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
                values.update(read_flagfile(nested, types))
                continue
            name, has_value, text = line.removeprefix("--").partition("=")
            name = "bins_path" if name == "bins" else name
            if not has_value and name.startswith("no") and types.get(name[2:]) is bool:
                name, text, has_value = name[2:], "false", True
            if not line.startswith("--") or name not in types:
                raise errors.Error(f"{path}:{number}: {line!r} is not a training setting")
            values[name] = parse_setting(types[name], text if has_value else "true",
                                         f"{path}:{number}")
    return values


def write_flagfile(path, flags):
    """Writes {flag: value} to path as a flagfile (None values left out), atomically."""
    lines = ["# Every setting of one training run (TrainConfig.to_flagfile)."]
    for name, value in flags.items():
        if isinstance(value, bool):
            lines.append(f"--{name}" if value else f"--no{name}")
        elif value is not None:
            lines.append(f"--{name}={value}")
    safe_write.write_bytes(path, ("\n".join(lines) + "\n").encode())
