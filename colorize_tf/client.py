r"""A TF Serving REST client for the exported colorizer.

    python -m colorize_tf.client --server=http://localhost:8501 \
        --model=colorunet_landscapes photo.jpg --output_dir=out/served

Sends {"signature_name": "serving_default", "inputs": {"image_bytes": [{"b64": ...}],
"temperature": [T]}} (the columnar format) to /v1/models/NAME:predict. TF Serving
decodes {"b64": ...} for string inputs and, because the output names end in
`_bytes`, answers with {"outputs": {"colorized_png_bytes": [{"b64": ...}], ...}}.

One request per photo. Whatever the server or a proxy answers (an error, HTML,
truncated JSON, nothing at all), that photo gets a one-line reason and the others go
on. --timeout bounds each request (also a server that trickles bytes), --deadline
the whole run. Needs no TensorFlow: it starts in a fraction of a second.
"""
import base64
import binascii
import http.client
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from colorize_tf import cli
from colorize_tf import errors
from colorize_tf import presets
from colorize_tf import safe_write
from colorize_tf import serving_api
from colorize_tf.data import image_files

MAX_RESPONSE_BYTES = 1 << 30  # a colorized 50 Mpx PNG and its confidence fit in this


class ServerError(errors.Error):
    """What went wrong with one request, as one line."""


def build_request(images, temperature):
    """[bytes] -> the JSON body (a dict) of a predict request."""
    return {"signature_name": serving_api.SERVING_SIGNATURE,
            "inputs": {serving_api.IMAGE_BYTES: [{"b64": base64.b64encode(d).decode("ascii")}
                                                 for d in images],
                       serving_api.TEMPERATURE: [float(temperature)]}}


def parse_response(body, count):
    """The JSON answer (any JSON value) of a request for count photos ->
    [(colorized PNG bytes, confidence PNG bytes)]; ServerError when it is not that."""
    if not isinstance(body, dict):
        raise ServerError(f"the answer is a JSON {type(body).__name__}, not an object")
    if "error" in body:
        raise ServerError(f"server error: {str(body['error'])[:300]}")
    outputs = body.get("outputs")
    if not isinstance(outputs, dict):
        raise ServerError("the answer has no \"outputs\" object")

    def decode(name):
        items = outputs.get(name)
        if not isinstance(items, list) or len(items) != count:
            raise ServerError(f"the answer's {name!r} is not a list of {count} item(s)")
        out = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("b64"), str):
                raise ServerError(f"the answer's {name!r} items are not {{\"b64\": ...}}")
            try:
                data = base64.b64decode(item["b64"], validate=True)
            except (binascii.Error, ValueError):
                raise ServerError(f"the answer's {name!r} is not valid base64") from None
            if not data.startswith(b"\x89PNG\r\n\x1a\n"):
                raise ServerError(f"the answer's {name!r} is not PNG data")
            out.append(data)
        return out
    return list(zip(decode(serving_api.COLORIZED_PNG), decode(serving_api.CONFIDENCE_PNG)))


def _read_limited(response, deadline, limit="--timeout"):
    """The body, read in blocks; ServerError past the deadline (a trickling server)
    or past MAX_RESPONSE_BYTES."""
    blocks, size = [], 0
    while True:
        if time.monotonic() > deadline:
            raise ServerError(f"the server took too long to answer ({limit})")
        block = response.read1(1 << 16) if hasattr(response, "read1") else response.read(1 << 16)
        if not block:
            return b"".join(blocks)
        size += len(block)
        if size > MAX_RESPONSE_BYTES:
            raise ServerError("the answer is larger than 1 GiB")
        blocks.append(block)


def predict(server, model, images, temperature, version=None, timeout=120.0,
            limit="--timeout"):
    """POSTs one request; returns parse_response of the answer. timeout (s) bounds the
    whole request, however slowly the server sends (limit: what set it, named in the
    message). ServerError on any failure."""
    path = f"/v1/models/{urllib.parse.quote(model, safe='')}" + (
        f"/versions/{int(version)}" if version else "") + ":predict"
    data = json.dumps(build_request(images, temperature)).encode()
    request = urllib.request.Request(server.rstrip("/") + path, data=data,
                                     headers={"Content-Type": "application/json"})
    deadline = time.monotonic() + timeout
    status = 200
    try:
        # The socket timeout bounds each wait; _read_limited bounds their sum.
        with urllib.request.urlopen(request, timeout=min(timeout, 10.0)) as response:
            raw = _read_limited(response, deadline, limit)
    except urllib.error.HTTPError as e:
        status = e.code
        try:
            raw = _read_limited(e, deadline, limit)
        except (OSError, http.client.HTTPException):
            raw = b""
    except urllib.error.URLError as e:
        raise ServerError(f"cannot reach {server}: {e.reason}") from None
    except (socket.timeout, TimeoutError):
        raise ServerError(f"the server took too long to answer ({limit})") from None
    except (OSError, http.client.HTTPException) as e:
        raise ServerError(f"the connection failed: {type(e).__name__}: {e}") from None
    try:
        body = json.loads(raw)
    except ValueError:
        snippet = raw[:80].decode("utf-8", "replace").replace("\n", " ")
        what = "HTML (a proxy?)" if raw.lstrip()[:1] == b"<" else "not JSON"
        raise ServerError(f"HTTP {status}: the answer is {what}: {snippet!r}") from None
    if status != 200:
        detail = body.get("error", body) if isinstance(body, dict) else body
        raise ServerError(f"HTTP {status}: {str(detail)[:300]}")
    return parse_response(body, len(images))


def define_flags(fv):
    """Defines this entry point's flags on the FlagValues fv."""
    d = cli.definer(fv)
    d.string("server", "http://localhost:8501", "TF Serving REST address.")
    d.string("model", presets.default().folder, "Model name on the server.")
    d.integer("version", 0, "Model version; 0: the server's latest.")
    d.float("temperature", 0.0, "Annealed-mean temperature; 0: the model's own default "
            "when --model is a shipped model (presets.py: 0.5 for the default one), else "
            f"{serving_api.DEFAULT_TEMPERATURE}.")
    d.string("output_dir", None, "Where NAME.png (and NAME.confidence.png) go.")
    d.bool("confidence", False, "Also write the confidence maps.")
    d.float("timeout", 120.0, "Seconds one photo's request may take in all.")
    d.float("deadline", 0.0, "Seconds the whole run may take; 0: no limit. Photos not "
            "sent by then are reported as not done.")
    d.bool("overwrite", False, "Replace results of an earlier run (files this tool wrote).")


def default_temperature(model):
    """The temperature to send when none is given: the shipped model's own default
    (presets.py) when the served model is one of them, else Zhang et al.'s 0.38."""
    preset = presets.find(model)
    return preset.default_temperature if preset else serving_api.DEFAULT_TEMPERATURE


def check_flags(f, images):
    if not images:
        raise cli.UsageError("give image files to colorize")
    cli.check_output_dir(f["output_dir"])
    if f["temperature"] == 0:
        f["temperature"] = default_temperature(f["model"])
    cli.check_temperature(f["temperature"])
    parsed = urllib.parse.urlparse(f["server"])
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise cli.UsageError(f"--server must be an http(s) address, got {f['server']!r}")
    if not f["timeout"] > 0:
        raise cli.UsageError("--timeout must be > 0")
    if f["deadline"] < 0 or f["version"] < 0:
        raise cli.UsageError("--deadline and --version must be >= 0")


def check_answer_size(photo, colorized, confidence):
    """ServerError unless the answer's PNGs have the photo's size (height and width, in
    either order: the server turns a photo by its EXIF orientation)."""
    expected = image_files.header_size(photo)
    for name, answer in (("colorized photo", colorized), ("confidence map", confidence)):
        got = image_files.header_size(answer)
        if expected and got and sorted(got) != sorted(expected):
            raise ServerError(f"the answer's {name} is {got[1]}x{got[0]} px, the photo "
                              f"{expected[1]}x{expected[0]}: not written")


def _output(output_dir, path, taken):
    stem = os.path.join(output_dir, os.path.splitext(os.path.basename(path))[0])
    name = stem + ".png"
    if name in taken:  # photo.jpg beside photo.png
        name = os.path.join(output_dir, os.path.basename(path)) + ".png"
    taken.add(name)
    return name


def main(argv=None):
    f, images = cli.parse(define_flags, argv, positional=True)
    try:
        check_flags(f, images)
    except cli.UsageError as e:
        cli.fail("client", e)
    inputs = {os.path.realpath(p) for p in images}
    end = time.monotonic() + f["deadline"] if f["deadline"] else float("inf")
    done, failed, taken = 0, 0, set()
    for path in images:
        shown = cli.display_path(path)
        out = _output(f["output_dir"], path, taken)
        targets = [out] + ([out[:-4] + ".confidence.png"] if f["confidence"] else [])
        try:
            for target in targets:
                if os.path.realpath(target) in inputs:
                    raise ServerError(f"the result would replace the input "
                                      f"{cli.display_path(target)}")
                if os.path.lexists(target) and not (f["overwrite"] and
                                                    image_files.is_marked_png(target)):
                    raise ServerError(f"{cli.display_path(target)} exists and was not "
                                      "replaced (--overwrite replaces earlier results only)")
            left = end - time.monotonic()
            if left <= 0:
                raise ServerError("not sent: the --deadline has passed")
            data = image_files.read_file(path)
            (colorized, confidence), = predict(f["server"], f["model"], [data],
                                               f["temperature"], f["version"] or None,
                                               timeout=min(f["timeout"], left),
                                               limit="--deadline" if left < f["timeout"]
                                               else "--timeout")
            check_answer_size(data, colorized, confidence)
            os.makedirs(f["output_dir"], exist_ok=True)
            safe_write.write_bytes(out, image_files.mark_png(colorized))
            if f["confidence"]:
                safe_write.write_bytes(targets[1], image_files.mark_png(confidence))
        except ServerError as e:
            print(f"failed: {shown}: {e}", file=sys.stderr)
            failed += 1
            continue
        except OSError as e:
            print(f"failed: {shown}: {e.strerror or e}", file=sys.stderr)
            failed += 1
            continue
        done += 1
        print(f"{shown} -> {cli.display_path(out)}")
    print(f"colorized {done}, failed {failed}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    cli.run_main("client", main)
