"""Reads a legacy `torch.save` state dict (the format before PyTorch 1.6's zip files)
with pickle and numpy alone: no torch import, nothing executed from the file.

The file is five things in a row (torch/serialization.py, `_legacy_save`):
    pickle: the magic number 0x1950a86a20f9469cfc6c
    pickle: the protocol version (1001)
    pickle: system info {"protocol_version", "little_endian", "type_sizes"}
    pickle: the object, an OrderedDict name -> tensor, each tensor built by
            torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...) and each
            storage a persistent id ("storage", <type>, key, location, numel[, view])
    pickle: the storage keys, in the order their data follows
    then, for each key: an 8-byte little-endian element count and the raw
    little-endian values.
A restricted unpickler maps the only classes such a file needs to harmless stand-ins
and refuses every other one, so a file is data, never code.
"""
import collections
import os
import pickle
import struct

import numpy as np

from colorize_tf import errors

LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
LEGACY_PROTOCOL = 1001
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default since PyTorch 1.6: a zip archive

# PyTorch storage type name -> numpy dtype of its raw values (little-endian).
STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"), "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"), "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"), "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"), "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class WeightsFileError(errors.Error):
    """A weights file that is not a legacy torch state dict, is cut short, or does not
    hold what the model needs; the message names the file and, where there is one, the
    tensor."""


class _StorageType:
    """What torch.FloatStorage and its siblings unpickle to: the name only."""

    def __init__(self, name):
        self.name = name


class _TensorRef:
    """A tensor not yet read: its storage key, offset, shape and strides (elements)."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)


def _rebuild_tensor_v2(storage, offset, size, stride, *unused):
    return _TensorRef(storage, offset, size, stride)


class _StateDictUnpickler(pickle.Unpickler):
    """Allows the classes of a state dict and nothing else."""

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) in (("torch._utils", "_rebuild_tensor_v2"),
                              ("torch._utils", "_rebuild_tensor")):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")

    def persistent_load(self, pid):
        # ("storage", storage type, key, location, numel[, view metadata])
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        return (pid[1].name, str(pid[2]), int(pid[4]))


def read_state_dict(path):
    """A legacy torch.save file of a state dict -> {name: numpy array} in the file's
    order, each array in PyTorch's layout and dtype (float32 for FloatStorage).

    WeightsFileError when the file is not one (a zip-format file, wrong magic or
    protocol, a class other than a state dict's), is truncated (a storage count larger
    than what the file has left: checked before anything is allocated), or a tensor's
    offset, sizes and strides are negative or reach past its storage.
    """
    try:
        with open(path, "rb") as f:
            if f.read(len(ZIP_MAGIC)) == ZIP_MAGIC:
                raise WeightsFileError(
                    f"{path}: a zip-format torch.save file (PyTorch 1.6 and later), which "
                    "this reader does not read: save the state dict with torch.save(state, "
                    "path, _use_new_zipfile_serialization=False)")
            f.seek(0)
            return _read(f, path)
    except WeightsFileError:
        raise
    except (pickle.UnpicklingError, EOFError, struct.error, AttributeError, TypeError,
            IndexError, ValueError) as e:
        raise WeightsFileError(f"{path}: not a legacy torch state dict ({e})") from None


def _read(f, path):
    unpickler = lambda: _StateDictUnpickler(f)  # noqa: E731
    if unpickler().load() != LEGACY_MAGIC:
        raise WeightsFileError(f"{path}: not a legacy torch.save file (wrong magic number)")
    protocol = unpickler().load()
    if protocol != LEGACY_PROTOCOL:
        raise WeightsFileError(f"{path}: protocol {protocol}, expected {LEGACY_PROTOCOL}")
    info = unpickler().load()
    if not info.get("little_endian", False):
        raise WeightsFileError(f"{path}: written big-endian, which this reader does not read")
    state = unpickler().load()
    if not isinstance(state, dict):
        raise WeightsFileError(f"{path}: holds a {type(state).__name__}, not a state dict")
    keys = unpickler().load()
    kinds = {ref.storage[1]: ref.storage[0] for ref in state.values()
             if isinstance(ref, _TensorRef)}  # storage key -> its type's name
    storages = {}
    for key in keys:
        (count,) = struct.unpack("<q", _exactly(f, 8, path, f"storage {key}'s count"))
        if count < 0:
            raise WeightsFileError(f"{path}: storage {key} has a negative count ({count})")
        dtype = STORAGE_DTYPES[kinds.get(key, "FloatStorage")]
        left = os.fstat(f.fileno()).st_size - f.tell()
        if count * dtype.itemsize > left:  # before allocating: counts can be anything
            raise WeightsFileError(f"{path}: truncated in storage {key} ({count:,} values "
                                   f"of {dtype.itemsize} bytes, {left:,} bytes left)")
        raw = _exactly(f, count * dtype.itemsize, path, f"storage {key}")
        storages[key] = np.frombuffer(raw, dtype)
    arrays = collections.OrderedDict()
    for name, ref in state.items():
        if not isinstance(ref, _TensorRef):
            continue  # e.g. a num_batches_tracked saved as a plain int
        _, key, _ = ref.storage
        if key not in storages:
            raise WeightsFileError(f"{path}: tensor {name} names storage {key}, which "
                                   "the file does not hold")
        arrays[name] = _view(storages[key], ref, name, path)
    return arrays


def _exactly(f, n, path, what):
    data = f.read(n)
    if len(data) != n:
        raise WeightsFileError(f"{path}: truncated in {what} ({len(data)} of {n} bytes)")
    return data


def _view(storage, ref, name, path):
    """The tensor's elements of its storage, as a new C-ordered array."""
    if (ref.offset < 0 or any(s < 0 for s in ref.size) or any(st < 0 for st in ref.stride)
            or len(ref.stride) != len(ref.size)):
        raise WeightsFileError(f"{path}: tensor {name} has a negative offset, size or "
                               f"stride, or strides that do not match its sizes (offset "
                               f"{ref.offset}, sizes {ref.size}, strides {ref.stride})")
    if not ref.size:
        if ref.offset >= storage.size:
            raise WeightsFileError(f"{path}: tensor {name} () reaches past its storage of "
                                   f"{storage.size} values")
        return storage[ref.offset:ref.offset + 1].reshape(()).copy()
    last = ref.offset + sum((s - 1) * st for s, st in zip(ref.size, ref.stride))
    if any(s == 0 for s in ref.size):
        return np.zeros(ref.size, storage.dtype)
    if last >= storage.size:
        raise WeightsFileError(f"{path}: tensor {name} {ref.size} reaches past its "
                               f"storage of {storage.size} values")
    strides = tuple(st * storage.itemsize for st in ref.stride)
    view = np.lib.stride_tricks.as_strided(storage[ref.offset:], ref.size, strides)
    return np.array(view)
