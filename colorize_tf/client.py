r"""A TF Serving REST client for the exported colorizer.

    python -m colorize_tf.client --server=http://localhost:8501 \
        --model=colorunet_landscapes photo.jpg --output_dir=out/served

Sends {"signature_name": "serving_default", "inputs": {"image_bytes": [{"b64": ...}],
"temperature": [T]}} (the columnar format) to /v1/models/NAME:predict. TF Serving
decodes {"b64": ...} for string inputs and, because the output names end in
`_bytes`, answers with {"outputs": {"colorized_png_bytes": [{"b64": ...}], ...}}.
"""
import base64
import json
import os
import sys
import urllib.error
import urllib.request

from colorize_tf import cli
from colorize_tf import decoding
from colorize_tf import export


def build_request(images, temperature):
    """[bytes] -> the JSON body (a dict) of a predict request."""
    return {"signature_name": export.SERVING_SIGNATURE,
            "inputs": {export.IMAGE_BYTES: [{"b64": base64.b64encode(d).decode("ascii")}
                                            for d in images],
                       export.TEMPERATURE: [float(temperature)]}}


def parse_response(body):
    """The JSON answer (a dict) -> [(colorized PNG bytes, confidence PNG bytes)]."""
    if "error" in body:
        raise RuntimeError(f"server error: {body['error']}")
    outputs = body["outputs"]

    def decode(items):
        return [base64.b64decode(item["b64"]) for item in items]
    return list(zip(decode(outputs[export.COLORIZED_PNG]),
                    decode(outputs[export.CONFIDENCE_PNG])))


def predict(server, model, images, temperature, version=None, timeout=120):
    """POSTs one request; returns parse_response of the answer."""
    path = f"/v1/models/{model}" + (f"/versions/{version}" if version else "") + ":predict"
    data = json.dumps(build_request(images, temperature)).encode()
    request = urllib.request.Request(server.rstrip("/") + path, data=data,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return parse_response(json.loads(response.read()))
    except urllib.error.HTTPError as e:
        detail = e.read().decode(errors="replace")
        try:
            detail = json.loads(detail).get("error", detail)
        except ValueError:
            pass
        raise RuntimeError(f"HTTP {e.code}: {detail}") from None


def define_flags(fv):
    """Defines this entry point's flags on the FlagValues fv."""
    d = cli.definer(fv)
    d.string("server", "http://localhost:8501", "TF Serving REST address.")
    d.string("model", "colorunet_landscapes", "Model name on the server.")
    d.integer("version", 0, "Model version; 0: the server's latest.")
    d.float("temperature", decoding.DEFAULT_TEMPERATURE, "Annealed-mean temperature.")
    d.string("output_dir", None, "Where NAME.png (and NAME.confidence.png) go.")
    d.bool("confidence", False, "Also write the confidence maps.")


def main(argv=None):
    f, images = cli.parse(define_flags, argv, positional=True)
    if not images or not f["output_dir"]:
        cli.fail("client", "give image files and --output_dir")
    os.makedirs(f["output_dir"], exist_ok=True)
    failed = 0
    for path in images:
        try:
            with open(path, "rb") as fh:
                data = fh.read()
            (colorized, confidence), = predict(f["server"], f["model"], [data],
                                               f["temperature"], f["version"] or None)
        except (OSError, RuntimeError, urllib.error.URLError) as e:
            print(f"failed: {path}: {e}", file=sys.stderr)
            failed += 1
            continue
        stem = os.path.join(f["output_dir"], os.path.splitext(os.path.basename(path))[0])
        with open(stem + ".png", "wb") as fh:
            fh.write(colorized)
        if f["confidence"]:
            with open(stem + ".confidence.png", "wb") as fh:
                fh.write(confidence)
        print(f"{path} -> {stem}.png")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
