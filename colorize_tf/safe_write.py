"""Writing files so that nothing half-written is ever visible under its final name.

Every output goes to a hidden temp name in the same folder (same file system, so the
final os.replace is atomic), `.NAME.tmp-PID[.ext]`; a killed writer leaves only such
names, which remove_stale_temps deletes on the next run (when PID is no longer alive).
"""
import contextlib
import json
import os
import re
import shutil

_TEMP = re.compile(r"^\..+\.tmp-(\d+)(\.[A-Za-z0-9.]+)?$")


def temp_path(path):
    """The temp name for path: same folder, hidden, the writer's pid, same extension
    (Keras and OpenCV pick the format from it)."""
    folder, name = os.path.split(path)
    extension = ".weights.h5" if name.endswith(".weights.h5") else os.path.splitext(name)[1]
    return os.path.join(folder, f".{name}.tmp-{os.getpid()}{extension}")


@contextlib.contextmanager
def replacing(path):
    """with replacing(path) as tmp: write tmp -> renamed to path on success, removed on
    any failure (a full disk included)."""
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.lexists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError) and e.filename is None and e.errno is not None:
            # Keras and h5py writers drop the path ("[Errno 28] No space left on
            # device"): say which file could not be written.
            raise OSError(e.errno, e.strerror, path) from None
        raise


def write_bytes(path, data):
    with replacing(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def write_json(path, obj):
    with replacing(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1, sort_keys=True)


def _alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder):
    """Deletes temp files and dirs in folder left by writers that are no longer running;
    returns their names."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = _TEMP.match(name)
        if not match or _alive(int(match.group(1))):
            continue
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.remove(path)
        removed.append(name)
    return removed
