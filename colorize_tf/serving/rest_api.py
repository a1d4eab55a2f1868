"""TF Serving's REST API as data: request paths, JSON <-> tensors, status and metadata
documents, and errors with TF Serving's HTTP codes. No web framework here; serve.py
puts it on one.

Each rule follows tensorflow/serving (model_servers/http_rest_api_util.cc,
model_servers/http_server.cc, util/json_tensor.cc):
- paths: POST /v1/models/NAME[/versions/N|/labels/L]:(classify|regress|predict),
  GET /v1/models/NAME[/versions/N|/labels/L][/metadata], case-insensitive;
- predict bodies: {"signature_name"?, "instances": [...]} (row format: every input
  batched from the list, objects keyed by input name when there are several inputs)
  or {"signature_name"?, "inputs": ...} (columnar: the whole tensor per input);
  {"b64": "..."} is decoded for any string input;
- responses: "predictions" for the row format, "outputs" for the columnar one; a
  string output whose name ends in "_bytes" comes back as {"b64": "..."};
- errors: {"error": "..."} with the HTTP code of the status (InvalidArgument 400,
  NotFound 404, Unavailable 503, ResourceExhausted 429, ...).
"""
import base64
import binascii
import dataclasses
import json
import re

import numpy as np

from colorize_tf import errors

# http_rest_api_util.cc: kPredictionApiGegex and kModelStatusApiRegex.
PREDICT_PATH = re.compile(r"(?i)/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
                          r":(classify|regress|predict)")
STATUS_PATH = re.compile(r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|"
                         r"(?:/labels/([^/:]+)))?(?:/(metadata))?")

# http_server.cc: ToHTTPStatusCode.
HTTP_CODES = {
    "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429, "FAILED_PRECONDITION": 400, "ABORTED": 409,
    "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501, "INTERNAL": 500, "UNAVAILABLE": 503,
    "DATA_LOSS": 500, "UNAUTHENTICATED": 401,
    "PAYLOAD_TOO_LARGE": 413,  # ours: TF Serving has no body limit of its own
}

ROW, COLUMNAR = "row", "columnar"
DEFAULT_SIGNATURE = "serving_default"
BYTES_SUFFIX = "_bytes"


class ApiError(errors.Error):
    """A TF Serving status: code (e.g. "INVALID_ARGUMENT") and message."""

    def __init__(self, code, message):
        # A client's text in the message (e.g. a lone surrogate in a name) must not
        # make the answer itself unencodable as UTF-8.
        message = str(message).encode("utf-8", "backslashreplace").decode("utf-8")
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self):
        return HTTP_CODES.get(self.code, 500)

    def body(self):
        return {"error": self.message}


def invalid(message):
    return ApiError("INVALID_ARGUMENT", message)


@dataclasses.dataclass(frozen=True)
class Route:
    """A parsed request path. kind: "predict" (or "classify"/"regress"), "status" or
    "metadata"; version None for the latest."""
    kind: str
    model: str
    version: int = None
    label: str = None


def parse_path(method, path):
    """(HTTP method, URL path) -> Route; ApiError as TF Serving answers a path it
    cannot use."""
    if method == "POST":
        match = PREDICT_PATH.fullmatch(path)
        if match:
            name, version, label, verb = match.groups()
            route = Route(verb.lower(), name, _version(version), label)
            return _one_of_version_and_label(route)
    elif method == "GET":
        match = STATUS_PATH.fullmatch(path)
        if match:
            name, version, label, metadata = match.groups()
            if not name:  # http_rest_api_handler.cc: no listing of every model
                raise invalid("Missing model name in request.")
            route = Route("metadata" if metadata else "status", name, _version(version),
                          label)
            return _one_of_version_and_label(route)
    raise invalid(f"Malformed request: {method} {path}")


def _version(text):
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:  # more digits than an int64
        raise invalid(f"Failed to convert version: {text} to numeric.") from None


def _one_of_version_and_label(route):
    if route.version is not None and route.label is not None:
        raise invalid(f"Both model version ({route.version}) and model version label "
                      f"({route.label}) cannot be supplied.")
    return route


# --- JSON -> tensors (json_tensor.cc: FillPredictRequestFromJson) -------------------

def _debug(value):
    text = json.dumps(value)
    return text if len(text) <= 200 else text[:200] + "..."


def _is_b64(value):
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def parse_predict_body(body, signatures):
    """body (bytes) -> (signature name, {input name: numpy array}, ROW or COLUMNAR).

    signatures: {signature name: {input name: numpy dtype}} (object for strings)."""
    if not body:
        raise invalid("JSON Parse error: The document is empty")
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise invalid(f"JSON Parse error: {e}") from None
    except RecursionError:
        raise invalid("JSON Parse error: the document nests too deep") from None
    if not isinstance(doc, dict):
        raise invalid(f"JSON Value: {_debug(doc)} Is not object")
    name = doc.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(name, str):
        raise invalid(f"JSON Value: {_debug(doc)} not formatted correctly. "
                      "'signature_name' key must be a string value.")
    name = name or DEFAULT_SIGNATURE
    if name not in signatures:
        raise invalid(f'Serving signature name: "{name}" not found in signature def')
    specs = signatures[name]
    if "instances" in doc and "inputs" in doc:
        raise invalid(f"JSON Value: {_debug(doc)} Not formatted correctly expecting only "
                      "one of 'inputs' or 'instances' keys to exist ")
    if "instances" in doc:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise invalid(f"JSON Value: {_debug(doc)} Expecting 'instances' to be an "
                          "list/array")
        if not instances:
            raise invalid(f"JSON Value: {_debug(doc)} No values in 'instances' array")
        return name, _from_instances(instances, specs), ROW
    if "inputs" in doc:
        return name, _from_inputs(doc["inputs"], specs), COLUMNAR
    raise invalid("Missing 'inputs' or 'instances' key")


def _from_instances(instances, specs):
    """The row format: each element one item of every input, batched along dim 0."""
    def is_object(value):
        return isinstance(value, dict) and not _is_b64(value)
    if not isinstance(instances[0], dict) and len(specs) > 1:
        raise invalid("instances is a plain list, but expecting list of objects as "
                      "multiple input tensors required as per tensorinfo_map")
    objects = is_object(instances[0])
    items = {name: [] for name in specs}
    for index, element in enumerate(instances):
        if objects != is_object(element):
            kind = "object but got list" if objects else "value/list but got object"
            raise invalid(f"Expecting {kind} at item {index} of input list")
        pairs = element.items() if objects else [(next(iter(specs)), element)]
        for key, value in pairs:
            if key not in specs:
                raise invalid(f"Failed to process element: {index} key: {key} of "
                              f"'instances' list. Error: JSON object: does not have named "
                              f"input: {key}")
            try:
                array = json_to_array(value, specs[key])
            except ApiError as e:
                raise invalid(f"Failed to process element: {index} key: {key} of "
                              f"'instances' list. Error: {e.message}") from None
            if items[key] and items[key][0].shape != array.shape:
                raise invalid(f"Failed to process element: {index} key: {key} of "
                              f"'instances' list. Error: Expecting shape "
                              f"{list(items[key][0].shape)} but got: {list(array.shape)}")
            items[key].append(array)
        if objects and set(element) != set(specs):
            raise invalid(f"Failed to process element: {index} of 'instances' list. JSON "
                          f"object: {_debug(element)} keys must be equal to: "
                          f"{','.join(sorted(specs))}")
    return {name: np.stack(values) for name, values in items.items()}


def _from_inputs(inputs, specs):
    """The columnar format: one whole tensor per input."""
    if not isinstance(inputs, dict) or _is_b64(inputs):
        if len(specs) > 1:
            raise invalid("inputs is a plain value/list, but expecting an object as "
                          "multiple input tensors required as per tensorinfo_map")
        name = next(iter(specs))
        return {name: json_to_array(inputs, specs[name])}
    unknown = sorted(set(inputs) - set(specs))
    if unknown:
        raise invalid(f"Input tensor alias not found in signature: {unknown[0]}. Inputs "
                      f"expected to be in the set {{{','.join(sorted(specs))}}}.")
    arrays = {}
    for name, dtype in specs.items():
        if name not in inputs:
            raise invalid(f"Missing named input: {name} in 'inputs' object.")
        arrays[name] = json_to_array(inputs[name], dtype)
    return arrays


MAX_RANK = 32  # dimensions of a tensor given as JSON (nested lists)


def json_to_array(value, dtype):
    """A JSON value (scalar or nested lists, dense) -> numpy array of dtype, with
    TF Serving's type rules: floats take any number, integers only integers, strings
    a string or {"b64": ...}."""
    shape = []
    probe = value
    while isinstance(probe, list):
        shape.append(len(probe))
        if len(shape) > MAX_RANK:
            raise invalid(f"JSON Value: a tensor of more than {MAX_RANK} dimensions")
        if not probe:
            break
        probe = probe[0]
    flat = []
    _fill(value, 0, shape, dtype, flat)
    if dtype == object:
        array = np.empty(len(flat), object)
        array[:] = flat
        return array.reshape(shape)
    return np.array(flat, dtype).reshape(shape)


def _fill(value, level, shape, dtype, flat):
    if not isinstance(value, list):
        if level != len(shape):
            raise invalid(f"JSON Value: {_debug(value)} found at incorrect level: "
                          f"{level + 1} in the JSON DOM. Expected at level: {len(shape)}")
        flat.append(_scalar(value, dtype))
        return
    if level >= len(shape):
        raise invalid(f"Encountered list at unexpected level: {level} expected < "
                      f"{len(shape)}")
    if len(value) != shape[level]:
        raise invalid(f"Encountered list at unexpected size: {len(value)} at level: "
                      f"{level} expected size: {shape[level]}")
    for item in value:
        _fill(item, level + 1, shape, dtype, flat)


def _scalar(value, dtype):
    if dtype == object:
        if _is_b64(value):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, ValueError):
                raise invalid("Unable to base64 decode") from None
        if isinstance(value, str):
            return value.encode("utf-8")
    elif np.dtype(dtype) == np.bool_:
        if isinstance(value, bool):
            return value
    elif np.issubdtype(dtype, np.integer):
        if isinstance(value, int) and not isinstance(value, bool):
            info = np.iinfo(dtype)
            if info.min <= value <= info.max:
                return value
    elif np.issubdtype(dtype, np.floating):
        if isinstance(value, float):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            if abs(value) <= int(np.finfo(dtype).max):
                return value
            raise invalid(f"JSON Value: {_debug(value)} is out of the range of "
                          f"{_type_name(dtype)}")
    if isinstance(value, dict):
        raise invalid(f"JSON Value: {_debug(value)} Type: Object is not of expected "
                      f"type: {_type_name(dtype)}")
    raise invalid(f"JSON Value: {_debug(value)} is not of expected type: {_type_name(dtype)}")


def _type_name(dtype):
    return "string" if dtype == object else np.dtype(dtype).name


# --- tensors -> JSON (json_tensor.cc: MakeJsonFromTensors) ---------------------------

def predict_response(outputs, format):
    """{output name: numpy array} -> the response for the request's format, as compact
    JSON bytes (what json.dumps(..., separators=(",", ":"), ensure_ascii=False) writes).

    Assembled from pieces and joined once: base64 needs no JSON escapes, so a photo's
    bytes go in as base64.b64encode gives them, copied once, without json.dumps scanning
    them (a 512 px photo's answer, 370 KB: ~0.3 ms instead of 0.7)."""
    if not outputs:
        raise invalid("Cannot convert empty tensor map to JSON")
    values = {name: _json_rows(array, name.endswith(BYTES_SUFFIX))
              for name, array in outputs.items()}
    if format == COLUMNAR:
        whole = {name: _json_list(rows) if np.ndim(outputs[name]) else rows
                 for name, rows in values.items()}
        return b"".join([b'{"outputs":', *(_json_object(whole) if len(whole) > 1
                                           else next(iter(whole.values()))), b"}"])
    for name, array in outputs.items():
        if not np.ndim(array):
            raise invalid(f"Tensor name: {name} has no shape information ")
    batch = len(next(iter(values.values())))
    for name, rows in values.items():
        if len(rows) != batch:
            raise invalid(f"Tensor name: {name} has inconsistent batch size: {len(rows)} "
                          f"expecting: {batch}")
    if len(values) == 1:
        rows = next(iter(values.values()))
    else:
        rows = [_json_object({name: output_rows[i] for name, output_rows in values.items()})
                for i in range(batch)]
    return b"".join([b'{"predictions":', *_json_list(rows), b"}"])


# JSON is built as "pieces": lists of bytes whose concatenation is the JSON text.

def _json_text(value):
    return [json.dumps(value, ensure_ascii=False, allow_nan=False,
                       separators=(",", ":")).encode("utf-8")]


def _json_list(items):
    """[pieces] -> the pieces of the JSON array of them."""
    out = [b"["]
    for i, item in enumerate(items):
        if i:
            out.append(b",")
        out += item
    out.append(b"]")
    return out


def _json_object(items):
    """{key: pieces} -> the pieces of the JSON object, keys in order."""
    out = [b"{"]
    for i, (key, item) in enumerate(items.items()):
        out += [b"," if i else b"", *_json_text(key), b":", *item]
    out.append(b"}")
    return out


def _json_rows(array, as_b64):
    """An output -> [the pieces of each row], or the pieces of a 0-d output (which has
    no rows). Strings: {"b64": ...} when as_b64, else text (invalid UTF-8 replaced)."""
    array = np.asarray(array)
    if array.dtype == object or array.dtype.kind == "S":
        def pieces(item):
            if isinstance(item, np.ndarray):
                return _json_list([pieces(x) for x in item])
            if as_b64:
                return [b'{"b64":"', base64.b64encode(item), b'"}']
            return _json_text(item.decode("utf-8", errors="replace"))
        return pieces(array[()]) if array.ndim == 0 else [pieces(row) for row in array]
    if array.ndim == 0:
        return _json_text(array.tolist())
    return [_json_text(row) for row in array.tolist()]
