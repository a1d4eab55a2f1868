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
The base path is polled for integer-named version directories (serving/servables.py);
the app is serving/app.py, the realism study's routes serving/study_routes.py, the
process (batching, polling, uvicorn) serving/server.py. Starlette on uvicorn.
"""
from colorize_tf import cli  # first: as an entry point, hide TF start-up lines
if __name__ == "__main__":
    cli.quiet_tensorflow()
import importlib.util
import logging
import os
import sys
import threading

from colorize_tf.serving import app
from colorize_tf.serving import precision
from colorize_tf.serving import server
from colorize_tf.serving import study_routes
# starlette, uvicorn and tensorflow_serving (the "serve" extra) are imported where they
# are used, on purpose: without the extra, main() says what to install in one line.

log = logging.getLogger("colorize_tf.serve")


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
    d.integer("max_body_bytes", app.DEFAULT_MAX_BODY_BYTES, "Largest request body; larger "
              "ones get 413.")
    d.integer("max_batch_size", 32, "Rows of concurrent requests merged into one "
              "signature call (TF Serving's batching); 0: no batching.")
    d.integer("batch_timeout_micros", 0, "How long a batch may wait for more requests "
              "after its first; 0 (TF Serving's advice for CPUs): it runs as soon as a "
              "batch thread is free, and requests that come while one runs form the "
              "next batch.")
    d.integer("max_enqueued_batches", 16, "Batches waiting beyond this: 503.")
    d.string("study_images", None, "Folder of real colour photos for Nicolai et al. 2021's realism "
             "study at /study (none: no study).")
    d.string("study_db", "realism_study.sqlite", "SQLite file of the study's answers.")
    d.float("study_temperature", 0.0, "Temperature of the study's colorized photos; 0: "
            "the model's default.")
    d.integer("study_pairs", 50, "Pairs per participant (Nicolai et al. 2021: 50 photos).")
    d.float("study_seconds", 0.0, "Seconds each pair stays visible; 0: until answered.")
    d.integer("num_batch_threads", 0, "Batches run at the same time (each also uses "
              "every core through TensorFlow's own threads); 0: one per CPU core (TF "
              f"Serving's advice for CPUs), at most {server.MAX_DEFAULT_BATCH_THREADS}.")
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


def main(argv=None):
    f, _ = cli.parse(define_flags, argv)
    try:
        check_flags(f)
        sock = server.listen(f["host"], f["rest_api_port"])
    except (cli.UsageError, server.ListenError) as e:
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
    versions = server.start_versions(name, f["model_base_path"])
    stop = threading.Event()
    if f["file_system_poll_wait_seconds"] > 0:
        threading.Thread(target=server.poll_forever, daemon=True, args=(
            versions, f["file_system_poll_wait_seconds"], stop)).start()
    host, port = sock.getsockname()[:2]
    print(f"serving {name} at http://{host}:{port}/v1/models/{name}", flush=True)
    scheduler = server.make_scheduler(f["max_batch_size"], f["batch_timeout_micros"],
                               f["max_enqueued_batches"], f["num_batch_threads"])
    if scheduler:
        log.info("batching: up to %d rows a call, %d batch thread(s)", f["max_batch_size"],
                 server.batch_threads(f["num_batch_threads"]))
    try:
        study = study_routes.make_study(
            versions, f["study_images"], f["study_db"], f["study_temperature"],
            f["study_pairs"], f["study_seconds"]) if f["study_images"] else None
    except Exception as e:  # realism_study.StudyError, or a database that cannot open
        cli.fail("serve", f"the study cannot start: {e}")
    config = uvicorn.Config(app.create_app(versions, f["max_body_bytes"], scheduler, study),
                            log_level="warning", access_log=False,
                            timeout_graceful_shutdown=30, lifespan="off")
    try:
        server.serve_until_signal(config, sock)
    finally:
        stop.set()
        if scheduler:
            scheduler.stop()
    log.info("stopped")


if __name__ == "__main__":
    cli.run_main("serve", main)
