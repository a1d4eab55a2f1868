"""The realism study's routes on the local server (the protocol of Nicolai et al. 2021,
a reproduction of Zhang et al. 2016: which of two photos is the real one?): the page,
its calls and the results, over a realism_study.RealismStudy.

    GET  /study                 the page participants open
    POST /study/next            {"session"} -> the next pair (two PNGs, base64)
    POST /study/answer          {"session", "trial", "chosen", "milliseconds"}
    GET  /study/results[.csv]   the fooling rate per model version and temperature

Errors in TF Serving's shape: 400 for a bad request, 503 with Retry-After while the
study's database is busy, 404 for each route without a study.
"""
import base64
import html
import json

import numpy as np

from colorize_tf.data import image_files
from colorize_tf.serving import app
from colorize_tf.serving import realism_study
from colorize_tf.serving import rest_api

STUDY_RETRY_S = 2  # Retry-After of a 503 while the study's database is busy


def study_routes(study, model):
    """/study (the page), /study/next and /study/answer (its calls), /study/results and
    /study/results.csv, for study (None: each answers 404); model: the served name."""
    from starlette.routing import Route

    def route(path, handler, method):
        return Route(path, _guarded(study, handler), methods=[method])
    return [route("/study", _page, "GET"), route("/study/next", _next_pair, "POST"),
            route("/study/answer", _answer, "POST"),
            route("/study/results", _results, "GET"),
            route("/study/results.csv", _results_csv, "GET")]


def _guarded(study, handler):
    """handler(request, study) as a Starlette endpoint: 404 without a study; its
    StudyError a 400, StudyBusy a 503 with Retry-After, ApiError its own status."""
    from starlette.responses import JSONResponse

    async def endpoint(request):
        if study is None:
            return JSONResponse({"error": "no study here: start the server with "
                                 "--study_images=FOLDER"}, status_code=404)
        try:
            return await handler(request, study)
        except realism_study.StudyError as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        except realism_study.StudyBusy as e:
            return JSONResponse({"error": str(e)}, status_code=503,
                                headers={"Retry-After": str(STUDY_RETRY_S)})
        except rest_api.ApiError as e:
            return JSONResponse(e.body(), status_code=e.http_status)
    return endpoint


async def _read_json(request):
    """The small JSON body of a study call, with its session checked (StudyError)."""
    data = await app.read_body(request, realism_study.MAX_BODY_BYTES,
                               "the study's own limit for its small JSON requests")
    try:
        body = json.loads(data)
        session = body["session"]
    except (ValueError, KeyError, TypeError, RecursionError):
        raise realism_study.StudyError("the body must be JSON with a session") from None
    if not (isinstance(session, str) and 8 <= len(session) <= 64 and session.isalnum()):
        raise realism_study.StudyError("session must be 8-64 letters and digits")
    return body


async def _page(request, study):
    from starlette.responses import HTMLResponse
    return HTMLResponse(app.web_page("study.html", {"seconds": study.seconds}))


async def _next_pair(request, study):
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse
    body = await _read_json(request)
    client = request.client.host if request.client else ""
    trial = await run_in_threadpool(study.next_trial, body["session"], client)
    for side in ("left", "right"):
        if side in trial:
            trial[side] = base64.b64encode(trial[side]).decode("ascii")
    return JSONResponse(trial)


async def _answer(request, study):
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse
    body = await _read_json(request)
    # Off the event loop: a locked database waits there, not every request.
    await run_in_threadpool(study.store.answer, body.get("trial"), body["session"],
                            body.get("chosen"), body.get("milliseconds", 0))
    return JSONResponse({"recorded": True})


async def _results(request, study):
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import HTMLResponse
    rows = await run_in_threadpool(study.store.results)
    return HTMLResponse(study_results_html(study.model, rows))


async def _results_csv(request, study):
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import Response
    text = await run_in_threadpool(study.store.csv_text)
    return Response(text, media_type="text/csv", headers={
        "Content-Disposition": 'attachment; filename="realism_study.csv"'})


def study_results_html(model, rows):
    """The fooling rate per model version and temperature, with its 95% interval."""
    lines = ["<!doctype html><meta charset='utf-8'><title>Realism study results</title>",
             "<style>body{font-family:system-ui,sans-serif;margin:2em}td,th{padding:4px 10px;"
             "text-align:right}</style>",
             f"<h1>Realism study: {html.escape(model)}</h1>",
             "<p>Fooling rate: the share of answers that took the colorized photo for the "
             "real one (50%: indistinguishable; Nicolai et al. 2021 reports 18.8%). 95% Wilson "
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


def make_study(versions, images, db, temperature=0.0, pairs=50, seconds=0.0):
    """The realism study of the photos in folder `images` (answers in the SQLite file
    db), colorized by the served model at temperature (0: its own default); pairs per
    participant; seconds each pair stays visible (0: until answered)."""
    default = app.model_default_temperature(versions)

    def colorize(photo, temperature):
        """The served model's PNG of photo, through the guard every request goes
        through (app.parse_checked_body: a photo that would abort the process is refused
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
    return realism_study.RealismStudy(
        images, realism_study.StudyStore(db), versions.name, colorize,
        lambda: versions.servable().version, temperature or default, pairs, seconds)
