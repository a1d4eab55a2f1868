r"""Entry point: a local server that speaks TF Serving's REST API.

    python -m colorize_tf.serve --model_name=colorunet_landscapes \
        --model_base_path=saved_models/colorunet_landscapes --rest_api_port=8501

TF Serving stays the production engine; this serves the same SavedModel the same way
on one machine (and where no tensorflow_model_server binary can be installed), so
`python -m colorize_tf.client` and any TF Serving client work against either:
  GET  /v1/models/NAME[/versions/N]            model_version_status
  GET  /v1/models/NAME[/versions/N]/metadata   signature_def, as TF Serving writes it
  POST /v1/models/NAME[/versions/N]:predict    row ("instances") or columnar ("inputs")
  GET  /                                       a web page to try it (colorize_tf/serving/web)
The base path is polled for integer-named version directories (colorize_tf.serving.servables);
SavedModel calls run in worker threads, off the event loop. Starlette on uvicorn.
"""
from colorize_tf import cli  # first: as an entry point, hide TF start-up lines
if __name__ == "__main__":
    cli.quiet_tensorflow()
import asyncio
import base64
import contextlib
import functools
import html
import importlib.resources
import importlib.util
import json
import logging
import os
import signal
import socket
import sys
import threading
import time

import numpy as np

from colorize_tf import serving_api
from colorize_tf.data import image_files
from colorize_tf.evaluation import realism_study
from colorize_tf.serving import batching
from colorize_tf.serving import graph as serving
from colorize_tf.serving import precision
from colorize_tf.serving import rest_api
from colorize_tf.serving import servables
# starlette, uvicorn and tensorflow_serving (the "serve" extra) are imported where they
# are used, on purpose: without the extra, main() says what to install in one line.

DEFAULT_MAX_BODY_BYTES = 64 << 20
INLINE_PARSE_BYTES = 256 << 10  # predict bodies up to this are parsed on the event loop
# --num_batch_threads=0: one per core, at most this many (each batch in flight holds its
# decoded photos, so a large machine does not hold one batch per core of them).
MAX_DEFAULT_BATCH_THREADS = 8

log = logging.getLogger("colorize_tf.serve")


def parse_checked_body(body, signatures):
    """rest_api.parse_predict_body, then refuses (InvalidArgument, 400) any image the
    decoder would abort the whole server process on (image_files.check_decodable):
    one request must never take the server down, even one to a SavedModel exported
    before its graph checked for it."""
    signature, inputs, form = rest_api.parse_predict_body(body, signatures)
    images = inputs.get(serving_api.IMAGE_BYTES)
    for i, data in enumerate(images.ravel() if images is not None else ()):
        try:
            image_files.check_decodable(bytes(data))
        except image_files.ImageRejected as e:
            raise rest_api.invalid(f"{serving_api.IMAGE_BYTES}[{i}]: {e}") from None
    temperature = inputs.get(serving_api.TEMPERATURE)
    if temperature is not None:
        for value in temperature.astype(np.float64).ravel():
            problem = serving_api.temperature_problem(float(value))
            if problem:
                raise rest_api.invalid(problem)
    return signature, _per_photo(inputs), form


def _per_photo(inputs):
    """One temperature (or output format) for several photos -> one per photo: the
    signatures take either, but the batching merges requests along dim 0, which needs
    every input of a request to have the photos' count."""
    images = inputs.get(serving_api.IMAGE_BYTES)
    if images is None or images.ndim != 1 or len(images) < 2:
        return inputs
    return {name: np.repeat(value, len(images), axis=0)
            if name in (serving_api.TEMPERATURE, serving_api.OUTPUT_FORMAT)
            and value.ndim == 1 and len(value) == 1 else value
            for name, value in inputs.items()}

def define_flags(fv):
    """Defines this entry point's flags on the FlagValues fv (TF Serving's names where
    it has the flag)."""
    d = cli.definer(fv)
    d.string("model_base_path", None, "Folder of the model's integer-named version "
             "folders (a folder written by colorize_tf.export).")
    d.string("model_name", None, "Name in the URLs; default: the base path's folder name.")
    d.integer("rest_api_port", 8501, "Port; 0 picks a free one and prints it.")
    d.string("host", "127.0.0.1", "Address to listen on (0.0.0.0: every interface).")
    d.float("file_system_poll_wait_seconds", 1.0, "Seconds between looks for new "
            "versions under the base path; 0: only at start-up.")
    d.integer("max_body_bytes", DEFAULT_MAX_BODY_BYTES, "Largest request body; larger "
              "ones get 413.")
    d.integer("max_batch_size", 32, "Rows of concurrent requests merged into one "
              "signature call (TF Serving's batching); 0: no batching.")
    d.integer("batch_timeout_micros", 0, "How long a batch may wait for more requests "
              "after its first; 0 (TF Serving's advice for CPUs): it runs as soon as a "
              "batch thread is free, and requests that come while one runs form the "
              "next batch.")
    d.integer("max_enqueued_batches", 16, "Batches waiting beyond this: 503.")
    d.string("study_images", None, "Folder of real colour photos for seed 003's realism "
             "study at /study (none: no study).")
    d.string("study_db", "realism_study.sqlite", "SQLite file of the study's answers.")
    d.float("study_temperature", 0.0, "Temperature of the study's colorized photos; 0: "
            "the model's default.")
    d.integer("study_pairs", 50, "Pairs per participant (seed 003: 50 photos).")
    d.float("study_seconds", 0.0, "Seconds each pair stays visible; 0: until answered.")
    d.integer("num_batch_threads", 0, "Batches run at the same time (each also uses "
              "every core through TensorFlow's own threads); 0: one per CPU core (TF "
              f"Serving's advice for CPUs), at most {MAX_DEFAULT_BATCH_THREADS}.")
    d.enum("precision", precision.AUTO, precision.PRECISIONS, "Arithmetic of the "
           "convolutions and matrix products: auto: bfloat16 where the CPU has it natively "
           "(2.1x the model's rate here, results within 0.003 dB PSNR: bench/precision.py), "
           "else float32.")


def check_flags(f):
    """Every flag, before anything loads."""
    if not f["model_base_path"]:
        raise cli.UsageError("--model_base_path is required")
    if not os.path.isdir(f["model_base_path"]):
        raise cli.UsageError(f"--model_base_path {cli.display_path(f['model_base_path'])} "
                             "is not a folder")
    if not 0 <= f["rest_api_port"] <= 65535:
        raise cli.UsageError(f"--rest_api_port must be 0-65535, got {f['rest_api_port']}")
    if f["file_system_poll_wait_seconds"] < 0:
        raise cli.UsageError("--file_system_poll_wait_seconds must be >= 0")
    if f["max_body_bytes"] < 1:
        raise cli.UsageError("--max_body_bytes must be >= 1")
    for name in ("max_batch_size", "batch_timeout_micros", "num_batch_threads"):
        if f[name] < 0:
            raise cli.UsageError(f"--{name} must be >= 0")
    for name in ("max_enqueued_batches", "study_pairs"):
        if f[name] < 1:
            raise cli.UsageError(f"--{name} must be >= 1")
    if f["study_images"] is not None:
        if not os.path.isdir(f["study_images"]):
            raise cli.UsageError(f"--study_images {cli.display_path(f['study_images'])} is "
                                 "not a folder")
        if os.path.isdir(f["study_db"]):
            raise cli.UsageError(f"--study_db {cli.display_path(f['study_db'])} is a folder; "
                                 "name the SQLite file (e.g. FOLDER/realism_study.sqlite)")
        cli.check_output_dir(os.path.dirname(os.path.abspath(f["study_db"])), "--study_db")
    if f["study_temperature"] < 0 or f["study_seconds"] < 0:
        raise cli.UsageError("--study_temperature and --study_seconds must be >= 0")
    if f["study_temperature"]:
        cli.check_temperature(f["study_temperature"], "--study_temperature")
    try:
        f["precision"] = precision.resolve(f["precision"], precision.cpu_bfloat16_flags())
    except ValueError as e:
        raise cli.UsageError(f"--precision: {e}") from None
    if f["model_name"] is not None and not f["model_name"].strip("/ ") or \
            f["model_name"] and any(c in f["model_name"] for c in "/:"):
        raise cli.UsageError(f"--model_name must be a name without / or :, got "
                             f"{f['model_name']!r}")


def model_name(f):
    return f["model_name"] or os.path.basename(os.path.normpath(f["model_base_path"]))


def create_app(versions, max_body_bytes=DEFAULT_MAX_BODY_BYTES, scheduler=None, study=None):
    """The Starlette app serving servables.ModelVersions `versions`; with a
    batching.BatchScheduler (see make_scheduler), concurrent predictions are merged;
    with a realism_study.RealismStudy (see make_study), the study's pages."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def v1(request):
        try:
            route = rest_api.parse_path(request.method, request.url.path)
            if route.model != versions.name:
                if route.kind in ("status", "metadata"):
                    raise rest_api.ApiError(
                        "NOT_FOUND", f"Could not find any versions of model {route.model}")
                raise rest_api.ApiError(
                    "NOT_FOUND", f"Servable not found for request: Latest({route.model})")
            if route.label is not None:
                raise rest_api.invalid(f"Unrecognized servable version label: {route.label}")
            if route.kind == "status":
                return JSONResponse(status_document(versions, route.version))
            servable = versions.servable(route.version)
            if route.kind == "metadata":
                return JSONResponse(metadata_document(versions.name, servable))
            if route.kind != "predict":
                raise rest_api.invalid(
                    f"this model has predict signatures only; {route.kind} needs a "
                    f"{route.kind} signature")
            body = await read_body(request, max_body_bytes)
            # JSON and base64 of large bodies off the event loop; a small body is parsed
            # here (~0.1 ms per 100 KB), which saves a thread hand-off per request.
            if len(body) <= INLINE_PARSE_BYTES:
                signature, inputs, form = parse_checked_body(body, servable.input_dtypes)
            else:
                signature, inputs, form = await run_in_threadpool(
                    parse_checked_body, body, servable.input_dtypes)
            # The answer's base64 and JSON (~0.3 ms for a 512 px photo's) are rendered
            # off the event loop, in the thread that ran the signature.
            render = functools.partial(rest_api.predict_response, format=form)
            if scheduler is None:
                answer = await run_in_threadpool(
                    lambda: render(servable.predict(signature, inputs)))
            else:
                answer = await asyncio.wrap_future(
                    scheduler.submit((servable, signature), inputs, finish=render))
            return Response(answer, media_type="application/json")
        except rest_api.ApiError as e:
            return JSONResponse(e.body(), status_code=e.http_status)
        except Exception as e:  # a bug: still TF Serving's error shape, and the server goes on
            log.exception("internal error on %s %s", request.method, request.url.path)
            return JSONResponse({"error": f"internal error: {type(e).__name__}: {e}"},
                                status_code=500)

    async def page(request):
        from starlette.responses import HTMLResponse
        return HTMLResponse(page_html(versions, max_body_bytes))

    async def not_found(request):
        return JSONResponse({"error": f"Malformed request: {request.method} "
                             f"{request.url.path}"}, status_code=404)

    app = Starlette(routes=[Route("/", page, methods=["GET"]),
                            *study_routes(study, versions.name),
                            Route("/v1/{rest:path}", v1, methods=["GET", "POST"]),
                            Route("/{rest:path}", not_found, methods=["GET", "POST"])])
    return _LoggedApp(app)


async def read_body(request, limit, what="--max_body_bytes"):
    """The request body, refused with 413 past `limit` bytes (read no further); what:
    the limit's name in the message."""
    from starlette.requests import ClientDisconnect
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise rest_api.ApiError("PAYLOAD_TOO_LARGE", _too_large(limit, what))
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise rest_api.ApiError("PAYLOAD_TOO_LARGE", _too_large(limit, what))
            chunks.append(chunk)
    except ClientDisconnect:
        # The client hung up mid-body: CANCELLED (HTTP 499, "client closed request"),
        # one log line, no traceback and no 500.
        raise rest_api.ApiError("CANCELLED", f"the client disconnected after {size} bytes "
                                "of its request body") from None
    return b"".join(chunks)


def _too_large(limit, what):
    return f"Request body is over {limit} bytes ({what})"


class _LoggedApp:
    """ASGI middleware: one log line per request (method, path, status, latency)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [0]

        async def send_and_note(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)
        try:
            await self.app(scope, receive, send_and_note)
        finally:
            log.info("%s %s %d %.1f ms", scope["method"], scope["path"], status[0],
                     1000 * (time.perf_counter() - start))


def study_routes(study, model):
    """/study (the page), /study/next and /study/answer (its calls), /study/results and
    /study/results.csv; 404 for each without a study."""
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    def no_study():
        return JSONResponse({"error": "no study here: start the server with "
                             "--study_images=FOLDER"}, status_code=404)

    async def read_json(request):
        data = await read_body(request, realism_study.MAX_BODY_BYTES,
                               "the study's own limit for its small JSON requests")
        try:
            body = json.loads(data)
            session = body["session"]
        except (ValueError, KeyError, TypeError, RecursionError):
            raise realism_study.StudyError("the body must be JSON with a session") from None
        if not (isinstance(session, str) and 8 <= len(session) <= 64 and session.isalnum()):
            raise realism_study.StudyError("session must be 8-64 letters and digits")
        return body

    async def page(request):
        if study is None:
            return no_study()
        return HTMLResponse(_web_page("study.html", {"seconds": study.seconds}))

    async def next_pair(request):
        if study is None:
            return no_study()
        try:
            body = await read_json(request)
            client = request.client.host if request.client else ""
            trial = await run_in_threadpool(study.next_trial, body["session"], client)
        except realism_study.StudyError as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        except realism_study.StudyBusy as e:
            return _study_busy(e)
        except rest_api.ApiError as e:
            return JSONResponse(e.body(), status_code=e.http_status)
        for side in ("left", "right"):
            if side in trial:
                trial[side] = base64.b64encode(trial[side]).decode("ascii")
        return JSONResponse(trial)

    async def answer(request):
        if study is None:
            return no_study()
        try:
            body = await read_json(request)
            # Off the event loop: a locked database waits there, not every request.
            await run_in_threadpool(study.store.answer, body.get("trial"), body["session"],
                                    body.get("chosen"), body.get("milliseconds", 0))
        except realism_study.StudyError as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        except realism_study.StudyBusy as e:
            return _study_busy(e)
        except rest_api.ApiError as e:
            return JSONResponse(e.body(), status_code=e.http_status)
        return JSONResponse({"recorded": True})

    async def results(request):
        if study is None:
            return no_study()
        try:
            rows = await run_in_threadpool(study.store.results)
        except realism_study.StudyBusy as e:
            return _study_busy(e)
        return HTMLResponse(study_results_html(model, rows))

    async def results_csv(request):
        if study is None:
            return no_study()
        try:
            text = await run_in_threadpool(study.store.csv_text)
        except realism_study.StudyBusy as e:
            return _study_busy(e)
        return Response(text, media_type="text/csv", headers={
            "Content-Disposition": 'attachment; filename="realism_study.csv"'})

    return [Route("/study", page, methods=["GET"]),
            Route("/study/next", next_pair, methods=["POST"]),
            Route("/study/answer", answer, methods=["POST"]),
            Route("/study/results", results, methods=["GET"]),
            Route("/study/results.csv", results_csv, methods=["GET"])]


def study_results_html(model, rows):
    """The fooling rate per model version and temperature, with its 95% interval."""
    lines = ["<!doctype html><meta charset='utf-8'><title>Realism study results</title>",
             "<style>body{font-family:system-ui,sans-serif;margin:2em}td,th{padding:4px 10px;"
             "text-align:right}</style>",
             f"<h1>Realism study: {html.escape(model)}</h1>",
             "<p>Fooling rate: the share of answers that took the colorized photo for the "
             "real one (50%: indistinguishable; seed 003 reports 18.8%). 95% Wilson "
             "interval.</p>",
             "<table><tr><th>model</th><th>version</th><th>temperature</th><th>answers</th>"
             "<th>participants</th><th>fooled</th><th>fooling rate</th><th>95% interval</th>"
             "</tr>"]
    for r in rows:
        lines.append(f"<tr class='row'><td>{html.escape(r['model'])}</td><td>{r['version']}"
                     f"</td><td>{r['temperature']:.2f}</td><td>{r['answers']}</td>"
                     f"<td>{r['sessions']}</td><td>{r['fooled']}</td>"
                     f"<td class='rate'>{100 * r['rate']:.1f}%</td>"
                     f"<td>{100 * r['low']:.1f}-{100 * r['high']:.1f}%</td></tr>")
    lines.append("</table><p><a href='/study/results.csv'>all answers as CSV</a></p>")
    return "\n".join(lines)


STUDY_RETRY_S = 2  # Retry-After of a 503 while the study's database is busy


def _study_busy(error):
    """503 in TF Serving's error shape, with a Retry-After, for StudyBusy."""
    from starlette.responses import JSONResponse  # the serving extra's, as above
    return JSONResponse({"error": str(error)}, status_code=503,
                        headers={"Retry-After": str(STUDY_RETRY_S)})


def make_study(f, versions):
    """The realism study of the flags (--study_*), or None without --study_images."""
    if not f["study_images"]:
        return None
    default = model_default_temperature(versions)

    def colorize(photo, temperature):
        """The served model's PNG of photo, through the guard every request goes
        through (parse_checked_body: a photo that would abort the process is refused
        before the graph); realism_study.PhotoUnusable for a photo it refuses."""
        try:
            image_files.check_decodable(photo)
            outputs = versions.servable().predict("serving_default", {
                "image_bytes": np.array([photo], object),
                "temperature": np.array([temperature], np.float32)})
        except image_files.ImageRejected as e:
            raise realism_study.PhotoUnusable(str(e)) from None
        except rest_api.ApiError as e:
            if e.http_status != 400:
                raise
            raise realism_study.PhotoUnusable(e.message) from None
        return outputs["colorized_png_bytes"][0]
    study = realism_study.RealismStudy(
        f["study_images"], realism_study.StudyStore(f["study_db"]), versions.name, colorize,
        lambda: versions.servable().version, f["study_temperature"] or default,
        f["study_pairs"], f["study_seconds"])
    return study


# The page's temperature slider: every stop is rendered by the photo's one request.
TEMPERATURE_STOPS = (0.1, 0.2, 0.3, 0.38, 0.5, 0.7, 1.0)


def page_html(versions, max_body_bytes):
    """The web page (colorize_tf/serving/web/index.html) with this server's settings in it."""
    return _web_page("index.html", page_config(versions, max_body_bytes))


def _web_page(name, config):
    html = importlib.resources.files("colorize_tf.serving").joinpath("web", name).read_text()
    return html.replace("/*CONFIG*/null", json.dumps(config).replace("</", "<\\/"))


def model_default_temperature(versions):
    """The latest version's own default temperature (its export.json), else 0.38."""
    try:
        return serving.ExportInfo.load(versions.servable().path).default_temperature
    except Exception:  # no version yet, or an export without the file: the usual default
        return serving_api.DEFAULT_TEMPERATURE


def model_takes_hints(versions):
    """Whether the latest version has the colorize_with_hints signature."""
    try:
        return serving_api.HINTS_SIGNATURE in versions.servable().signatures
    except Exception:  # no version loaded yet
        return False


def page_config(versions, max_body_bytes):
    """The model's name, the temperature stops (its default temperature among them),
    the body limit, and whether the page offers colour hints."""
    default = model_default_temperature(versions)
    return {"model": versions.name, "default_temperature": default,
            "temperatures": sorted(set(TEMPERATURE_STOPS) | {default}),
            "max_body_bytes": max_body_bytes, "hints": model_takes_hints(versions),
            "hints_signature": serving_api.HINTS_SIGNATURE}


def batch_threads(num_batch_threads):
    """--num_batch_threads -> threads: 0 is one per CPU core this process may run on, at
    most MAX_DEFAULT_BATCH_THREADS.

    TF Serving's batching guide, "CPU-only: One Approach", starts from num_batch_threads
    equal to the number of cores with batch_timeout_micros 0: while one batch waits on a
    single-threaded op (PNG encoding, ~9 ms of a 512 px photo), another keeps the other
    core busy. Measured with bench/serve.py on 2 cores, 16 clients: 55.6-55.8 photos/s
    with 2 threads, 52.8-53.9 with 1."""
    if num_batch_threads:
        return num_batch_threads
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # no sched_getaffinity (macOS)
        cores = os.cpu_count() or 1
    return min(cores, MAX_DEFAULT_BATCH_THREADS)


def make_scheduler(max_batch_size, batch_timeout_micros=0, max_enqueued_batches=16,
                   num_batch_threads=0):
    """A batching.BatchScheduler calling servables; None for max_batch_size 0.
    num_batch_threads: as batch_threads() takes it."""
    if not max_batch_size:
        return None
    return batching.BatchScheduler(
        lambda key, inputs: key[0].predict(key[1], inputs), max_batch_size,
        batch_timeout_micros / 1e6, max_enqueued_batches, batch_threads(num_batch_threads))


def status_document(versions, version=None):
    """GetModelStatusResponse as JSON, as TF Serving prints it (every field)."""
    from google.protobuf import json_format
    from tensorflow_serving.apis import get_model_status_pb2
    response = get_model_status_pb2.GetModelStatusResponse()
    for number, status in versions.version_status(version):
        entry = response.model_version_status.add()
        entry.version = number
        entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(status.state)
        codes = entry.status.DESCRIPTOR.fields_by_name["error_code"].enum_type
        entry.status.error_code = codes.values_by_name[status.error_code].number
        entry.status.error_message = status.error_message
    return json_format.MessageToDict(response, always_print_fields_with_no_presence=True)


def metadata_document(name, servable):
    """GetModelMetadataResponse's JSON as TF Serving writes it: model_spec and the
    signature_def map, proto field names kept."""
    from google.protobuf import json_format
    from tensorflow_serving.apis import get_model_metadata_pb2
    from tensorflow_serving.apis import model_pb2
    spec = model_pb2.ModelSpec(name=name)
    spec.version.value = servable.version
    signatures = get_model_metadata_pb2.SignatureDefMap()
    for key, value in servable.signature_def_map().items():
        signatures.signature_def[key].CopyFrom(value)
    options = {"preserving_proto_field_name": True,
               "always_print_fields_with_no_presence": True}
    return {"model_spec": json_format.MessageToDict(spec, **options),
            "metadata": {"signature_def": json_format.MessageToDict(signatures, **options)}}


def listen(host, port):
    """A bound listening socket (port 0: a free one)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        raise cli.UsageError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(128)
    return sock


def poll_forever(versions, seconds, stop):
    """Looks for new versions every `seconds` until stop is set."""
    while not stop.wait(seconds):
        try:
            versions.poll()
        except Exception as e:  # a bad look at the folder must not stop the polling
            log.error("polling %s failed: %s", versions.base_path, e)


def start_versions(name, base_path):
    """ModelVersions with whatever is complete at start-up loaded (two looks 0.2 s
    apart: a version still being copied waits for a later poll)."""
    versions = servables.ModelVersions(name, base_path)
    versions.poll()
    time.sleep(0.2)
    versions.poll()
    if not versions.status:
        log.warning("no complete version of %s under %s yet; polling", name, base_path)
    return versions


@contextlib.contextmanager
def running_server(base_path, name, max_body_bytes=DEFAULT_MAX_BODY_BYTES, study_flags=None,
                   **batching):
    """The server in a thread of this process on a free 127.0.0.1 port, for tests and
    benchmarks: yields (base URL, servables.ModelVersions); polling is left to the
    caller (versions.poll()). batching: make_scheduler's arguments (none: no batching);
    study_flags: the --study_* flags as a dict (make_study)."""
    import uvicorn
    versions = start_versions(name, base_path)
    sock = listen("127.0.0.1", 0)
    scheduler = make_scheduler(**batching) if batching else None
    study = make_study(study_flags, versions) if study_flags else None
    server = uvicorn.Server(uvicorn.Config(create_app(versions, max_body_bytes, scheduler,
                                                      study),
                                           log_level="warning", access_log=False,
                                           lifespan="off"))
    thread = threading.Thread(target=asyncio.run, args=(server.serve(sockets=[sock]),),
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", versions
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
        if scheduler:
            scheduler.stop()


def main(argv=None):
    f, _ = cli.parse(define_flags, argv)
    try:
        check_flags(f)
        sock = listen(f["host"], f["rest_api_port"])
    except cli.UsageError as e:
        cli.fail("serve", e)
    for module in ("starlette", "uvicorn", "tensorflow_serving"):
        if importlib.util.find_spec(module) is None:
            cli.fail("serve", f"{module} is missing: pip install 'colorize_tf[serve]'")
    import uvicorn
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s serve: %(message)s")
    name = model_name(f)
    precision.use(f["precision"])  # before any graph runs
    cpu_flags = ", ".join(precision.cpu_bfloat16_flags()) or "no native bfloat16"
    log.info("precision: %s (CPU: %s)", f["precision"], cpu_flags)
    versions = start_versions(name, f["model_base_path"])
    stop = threading.Event()
    if f["file_system_poll_wait_seconds"] > 0:
        threading.Thread(target=poll_forever, daemon=True, args=(
            versions, f["file_system_poll_wait_seconds"], stop)).start()
    host, port = sock.getsockname()[:2]
    print(f"serving {name} at http://{host}:{port}/v1/models/{name}", flush=True)
    scheduler = make_scheduler(f["max_batch_size"], f["batch_timeout_micros"],
                               f["max_enqueued_batches"], f["num_batch_threads"])
    if scheduler:
        log.info("batching: up to %d rows a call, %d batch thread(s)", f["max_batch_size"],
                 batch_threads(f["num_batch_threads"]))
    try:
        study = make_study(f, versions)
    except Exception as e:  # realism_study.StudyError, or a database that cannot open
        cli.fail("serve", f"the study cannot start: {e}")
    config = uvicorn.Config(create_app(versions, f["max_body_bytes"], scheduler, study),
                            log_level="warning", access_log=False,
                            timeout_graceful_shutdown=30, lifespan="off")
    try:
        serve_until_signal(config, sock)
    finally:
        stop.set()
        if scheduler:
            scheduler.stop()
    log.info("stopped")


def serve_until_signal(config, sock):
    """Runs uvicorn on sock. SIGTERM or Ctrl-C: stop taking connections, let the
    requests in flight finish (up to the config's graceful timeout), return; a second
    signal stops at once. (uvicorn's own handling re-raises the signal after the
    shutdown, so the exit status would say "killed".)"""
    import uvicorn

    class GracefulServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):
            def stop(signum, frame):
                if self.should_exit:
                    self.force_exit = True
                self.should_exit = True
            previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for s, handler in previous.items():
                    signal.signal(s, handler)

    asyncio.run(GracefulServer(config).serve(sockets=[sock]))

if __name__ == "__main__":
    cli.run_main("serve", main)
