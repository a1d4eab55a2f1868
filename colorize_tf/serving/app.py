"""The local server's app: TF Serving's REST API over servables.ModelVersions, the web
page, and (serving/study_routes.py) the realism study's routes, as a Starlette app.

    GET  /v1/models/NAME[/versions/N]            model_version_status
    GET  /v1/models/NAME[/versions/N]/metadata   signature_def, as TF Serving writes it
    POST /v1/models/NAME[/versions/N]:predict    row ("instances") or columnar ("inputs")
    GET  /                                       a web page to try it (serving/web)

SavedModel calls run in worker threads, off the event loop. starlette and
tensorflow_serving (the "serve" extra) are imported where they are used, so that
without the extra the command can say what to install in one line.
"""
import asyncio
import functools
import importlib.resources
import json
import logging
import time

import numpy as np

from colorize_tf import serving_api
from colorize_tf.data import image_files
from colorize_tf.serving import graph
from colorize_tf.serving import rest_api

DEFAULT_MAX_BODY_BYTES = 64 << 20
INLINE_PARSE_BYTES = 256 << 10  # predict bodies up to this are parsed on the event loop

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


def create_app(versions, max_body_bytes=DEFAULT_MAX_BODY_BYTES, scheduler=None, study=None):
    """The Starlette app serving servables.ModelVersions `versions`; with a
    batching.BatchScheduler (server.make_scheduler), concurrent predictions are merged;
    with a realism_study.RealismStudy (study_routes.make_study), the study's pages."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    from colorize_tf.serving import study_routes

    async def v1(request):
        try:
            return await _v1(request, versions, max_body_bytes, scheduler)
        except rest_api.ApiError as e:
            return JSONResponse(e.body(), status_code=e.http_status)
        except Exception as e:  # a bug: still TF Serving's error shape, and the server goes on
            log.exception("internal error on %s %s", request.method, request.url.path)
            return JSONResponse({"error": f"internal error: {type(e).__name__}: {e}"},
                                status_code=500)

    async def page(request):
        return HTMLResponse(page_html(versions, max_body_bytes))

    async def not_found(request):
        return JSONResponse({"error": f"Malformed request: {request.method} "
                             f"{request.url.path}"}, status_code=404)

    app = Starlette(routes=[Route("/", page, methods=["GET"]),
                            *study_routes.study_routes(study, versions.name),
                            Route("/v1/{rest:path}", v1, methods=["GET", "POST"]),
                            Route("/{rest:path}", not_found, methods=["GET", "POST"])])
    return _LoggedApp(app)


async def _v1(request, versions, max_body_bytes, scheduler):
    """One /v1/ request -> its Response; rest_api.ApiError for what TF Serving refuses."""
    from starlette.responses import JSONResponse
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
    return await _predict(request, servable, max_body_bytes, scheduler)


async def _predict(request, servable, max_body_bytes, scheduler):
    """A :predict request's answer (JSON), through the batching when there is one."""
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import Response
    body = await read_body(request, max_body_bytes)
    # JSON and base64 of large bodies off the event loop; a small body is parsed here
    # (~0.1 ms per 100 KB), which saves a thread hand-off per request.
    if len(body) <= INLINE_PARSE_BYTES:
        signature, inputs, form = parse_checked_body(body, servable.input_dtypes)
    else:
        signature, inputs, form = await run_in_threadpool(
            parse_checked_body, body, servable.input_dtypes)
    # The answer's base64 and JSON (~0.3 ms for a 512 px photo's) are rendered off the
    # event loop, in the thread that ran the signature.
    render = functools.partial(rest_api.predict_response, format=form)
    if scheduler is None:
        answer = await run_in_threadpool(lambda: render(servable.predict(signature, inputs)))
    else:
        answer = await asyncio.wrap_future(
            scheduler.submit((servable, signature), inputs, finish=render))
    return Response(answer, media_type="application/json")


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


# The page's temperature slider: every stop is rendered by the photo's one request.
TEMPERATURE_STOPS = (0.1, 0.2, 0.3, 0.38, 0.5, 0.7, 1.0)


def page_html(versions, max_body_bytes):
    """The web page (colorize_tf/serving/web/index.html) with this server's settings in it."""
    return web_page("index.html", page_config(versions, max_body_bytes))


def web_page(name, config):
    """The page `name` of serving/web with config (JSON) in its /*CONFIG*/ slot."""
    html = importlib.resources.files("colorize_tf.serving").joinpath("web", name).read_text()
    return html.replace("/*CONFIG*/null", json.dumps(config).replace("</", "<\\/"))


def model_default_temperature(versions):
    """The latest version's own default temperature (its export.json), else 0.38."""
    try:
        return graph.ExportInfo.load(versions.servable().path).default_temperature
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
