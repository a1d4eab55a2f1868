"""The versions of one served model, managed as TF Serving manages them.

TF Serving (file-system storage path source, "latest 1" version policy, availability
preserving): every poll lists the integer-named directories under the base path; the
highest one is loaded (its warmup requests replayed) before it becomes the version
that requests without a version get, and only then are older versions unloaded. A
version that fails to load is reported in the model status and the previous one keeps
serving. A directory is loaded only once its files have stopped changing between two
polls and it holds saved_model.pb, the variables' index and all its shards: a copy in
progress is never loaded half-way.
"""
import dataclasses
import logging
import os
import re
import threading

import tensorflow as tf

from colorize_tf import serving_api
from colorize_tf.serving import rest_api

WARMUP_PATH = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_WARMUP_RECORDS = 1000  # TF Serving replays at most this many
# TF Serving's ModelVersionStatus states that this server reports.
LOADING, AVAILABLE, UNLOADING, END = "LOADING", "AVAILABLE", "UNLOADING", "END"

# absl canonical codes, which tf.errors' error_code values are.
_CODE_NAMES = {1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED",
               5: "NOT_FOUND", 6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED",
               8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION", 10: "ABORTED",
               11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE",
               15: "DATA_LOSS", 16: "UNAUTHENTICATED"}

log = logging.getLogger("colorize_tf.serve")


def api_error_of(error):
    """A TensorFlow error -> rest_api.ApiError with its status code and message."""
    if isinstance(error, tf.errors.OpError):
        # As TF Serving words it: the op's message, not the Python wrapper's preamble.
        return rest_api.ApiError(_CODE_NAMES.get(error.error_code, "UNKNOWN"),
                                 serving_api.error_line(error.message))
    return rest_api.ApiError("UNKNOWN", str(error))


def _numpy_dtype(dtype):
    return object if dtype == tf.string else dtype.as_numpy_dtype


class Servable:
    """One loaded version: its signatures and what the REST API needs to call them."""

    def __init__(self, path, version):
        self.path, self.version = path, version
        self.loaded = tf.saved_model.load(path)
        self.signatures = {name: fn for name, fn in self.loaded.signatures.items()
                           if not name.startswith("__")}
        # {signature: {input: numpy dtype}} in the order of the signature.
        self.input_dtypes = {
            name: {key: _numpy_dtype(spec.dtype)
                   for key, spec in sorted(fn.structured_input_signature[1].items())}
            for name, fn in self.signatures.items()}

    def signature_def_map(self):
        """The SavedModel's signature_def map (tensorflow.SignatureDef protos), read
        from saved_model.pb as TF Serving's metadata does."""
        from tensorflow.core.protobuf import saved_model_pb2
        proto = saved_model_pb2.SavedModel()
        with open(os.path.join(self.path, "saved_model.pb"), "rb") as f:
            proto.ParseFromString(f.read())
        return proto.meta_graphs[0].signature_def

    def predict(self, signature, inputs):
        """inputs {name: numpy array} -> {output name: numpy array}; ApiError for what
        the graph refuses (an InvalidArgument for a bad photo, a wrong shape, ...)."""
        fn = self.signatures[signature]
        specs = fn.structured_input_signature[1]
        try:
            tensors = {name: tf.constant(value, specs[name].dtype)
                       for name, value in inputs.items()}
            outputs = fn(**tensors)
        except (tf.errors.OpError, ValueError, TypeError) as e:
            raise api_error_of(e) if isinstance(e, tf.errors.OpError) else \
                rest_api.invalid(str(e).split("\n")[0]) from None
        return {name: value.numpy() for name, value in outputs.items()}

    def warm_up(self):
        """Replays assets.extra/tf_serving_warmup_requests (PredictionLog records);
        an error fails the load, as in TF Serving."""
        path = os.path.join(self.path, WARMUP_PATH)
        if not os.path.exists(path):
            return 0
        from tensorflow_serving.apis import prediction_log_pb2
        count = 0
        for record in tf.data.TFRecordDataset(path).take(MAX_WARMUP_RECORDS):
            entry = prediction_log_pb2.PredictionLog.FromString(record.numpy())
            if not entry.HasField("predict_log"):
                continue
            request = entry.predict_log.request
            signature = request.model_spec.signature_name or rest_api.DEFAULT_SIGNATURE
            self.predict(signature, {name: tf.make_ndarray(proto)
                                     for name, proto in request.inputs.items()})
            count += 1
        return count


@dataclasses.dataclass
class VersionStatus:
    state: str
    error_code: str = "OK"
    error_message: str = ""


class ModelVersions:
    """The versions of model `name` under base_path: poll() loads and unloads them;
    servable(version) gives the one a request asks for."""

    def __init__(self, name, base_path):
        self.name, self.base_path = name, base_path
        self.status = {}  # version -> VersionStatus
        self._servables = {}  # version -> Servable (AVAILABLE ones)
        self._seen = {}  # version -> the directory's listing at the last poll
        self._failed = {}  # version -> listing that failed to load (retried if changed)
        self._incomplete = {}  # version -> stable listing logged as not a SavedModel
        self._lock = threading.Lock()

    def servable(self, version=None):
        """The latest available version, or `version`; ApiError NOT_FOUND as TF Serving
        words it."""
        with self._lock:
            if version is None:
                if self._servables:
                    return self._servables[max(self._servables)]
                raise rest_api.ApiError(
                    "NOT_FOUND", f"Servable not found for request: Latest({self.name})")
            if version in self._servables:
                return self._servables[version]
        raise rest_api.ApiError(
            "NOT_FOUND", f"Servable not found for request: Specific({self.name}, {version})")

    def version_status(self, version=None):
        """[(version, VersionStatus)], newest first; ApiError NOT_FOUND if none."""
        with self._lock:
            items = sorted(self.status.items(), reverse=True)
        if version is not None:
            items = [(v, s) for v, s in items if v == version]
            if not items:
                raise rest_api.ApiError(
                    "NOT_FOUND", f"Could not find version {version} of model {self.name}")
        if not items:
            raise rest_api.ApiError("NOT_FOUND",
                                    f"Could not find any versions of model {self.name}")
        return items

    def poll(self):
        """One look at the base path: loads the newest complete version if it is new;
        once it is available, unloads every other one (older ones, and a newer one
        whose folder was removed: TF Serving's latest policy serves the newest version
        present). While the newest cannot load, the newest loaded one keeps serving.
        Returns the versions loaded."""
        versions = self._complete_versions()
        newest = max(versions, default=None)
        loaded = []
        if newest is not None and newest not in self._servables and \
                self._failed.get(newest) != versions[newest]:
            if self._load(newest, versions[newest]):
                loaded.append(newest)
        with self._lock:
            available = sorted(self._servables)
        keep = newest if newest in available else (available[-1] if available else None)
        for version in available:
            if version != keep:
                self._unload(version)
        return loaded

    def _complete_versions(self):
        """{version: listing} of the version directories whose files are all there
        and have not changed since the previous poll."""
        try:
            names = os.listdir(self.base_path)
        except OSError:
            return {}
        listings = {}
        for name in names:
            version = serving_api.version_number(name)
            if version is None:
                continue
            path = os.path.join(self.base_path, name)
            if os.path.isdir(path):
                listings[version] = _listing(path)
        complete = {}
        for version, listing in listings.items():
            if not listing or listing != self._seen.get(version):
                continue  # empty, or still being written
            problem = _model_files_problem(listing)
            if problem is None:
                complete[version] = listing
            elif self._incomplete.get(version) != listing:  # one line per state
                self._incomplete[version] = listing
                log.warning("version %d of %s is skipped: %s", version, self.name, problem)
        self._seen = listings
        return complete

    def _load(self, version, listing):
        path = os.path.join(self.base_path, str(version))
        with self._lock:
            self.status[version] = VersionStatus(LOADING)
        log.info("loading %s version %d from %s", self.name, version, path)
        try:
            servable = Servable(path, version)
            warmed = servable.warm_up()
        except Exception as e:  # any failure keeps the previous version serving
            error = e if isinstance(e, rest_api.ApiError) else api_error_of(e)
            with self._lock:
                self.status[version] = VersionStatus(END, error.code, error.message)
            self._failed[version] = listing
            log.error("version %d of %s failed to load: %s", version, self.name,
                      error.message)
            return False
        with self._lock:
            self._servables[version] = servable
            self.status[version] = VersionStatus(AVAILABLE)
        log.info("%s version %d available (%d warmup requests replayed)", self.name,
                 version, warmed)
        return True

    def _unload(self, version):
        with self._lock:
            self.status[version] = VersionStatus(UNLOADING)
            self._servables.pop(version, None)
            self.status[version] = VersionStatus(END)
        log.info("%s version %d unloaded", self.name, version)


def _listing(path):
    """(relative path, size, mtime) of every file under path, sorted."""
    entries = []
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            try:
                stat = os.stat(full)
            except OSError:
                continue
            entries.append((os.path.relpath(full, path), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(entries))


_SHARD = re.compile(r"variables\.data-(\d{5})-of-(\d{5})$")


def _model_files_problem(listing):
    """None where the listing holds a SavedModel's files: saved_model.pb, the
    variables' index and every shard they name (TF 2 writes them even for a model
    without variables); else what is missing or malformed, one line."""
    names = {entry[0] for entry in listing}
    if "saved_model.pb" not in names:
        return "no saved_model.pb"
    if os.path.join("variables", "variables.index") not in names:
        return "no variables/variables.index"
    shards = [n[len("variables") + 1:] for n in names
              if n.startswith(os.path.join("variables", "variables.data-"))]
    if not shards:
        return "no variables/variables.data-* shard"
    totals = set()
    for shard in shards:
        match = _SHARD.match(shard)
        if match is None or int(match.group(2)) == 0:
            return f"a malformed shard name, variables/{shard}"
        totals.add(int(match.group(2)))
    if len(totals) != 1:
        return "shards of different counts (-of-NNNNN)"
    total = totals.pop()
    missing = [i for i in range(total) if f"variables.data-{i:05d}-of-{total:05d}" not in
               shards]
    return f"{len(missing)} of its {total} variable shards missing" if missing else None
