r"""Colorize photos, folders and videos through an exported SavedModel.

    python -m colorize_tf.colorize examples/ --output_dir=out/colorized
    python -m colorize_tf.colorize film.mp4 --output_dir=out --temperature=0.3

Photos go through the `serving_default` signature (decode, colorize, encode: the
same graph TF Serving runs); with --work_size, or for videos, frames go through
`luma_probabilities` with the same steps (inference.Colorizer), so that video frames can
have their bin probabilities smoothed over time (ColorUNet section 4.3) before the
annealed mean. Results keep the input's name (as .png for photos), size and aspect; videos
keep fps and size (the audio track is not carried over).

Python API:
    from colorize_tf import Colorizer
    rgb = Colorizer("saved_models/colorunet_landscapes").colorize(gray_uint8, temperature=0.38)
"""
from colorize_tf import cli  # first: as an entry point, hide TF start-up lines
if __name__ == "__main__":
    cli.quiet_tensorflow()
import collections
import dataclasses
import json
import os
import sys
import time
import typing

import cv2
import numpy as np
import tensorflow as tf

from colorize_tf import presets
from colorize_tf import safe_write
from colorize_tf import serving_api
from colorize_tf.chroma import color
from colorize_tf.chroma.hints import point_arrays
from colorize_tf.data import image_files
from colorize_tf.serving import photo_decoding
from colorize_tf.serving import inference
from colorize_tf.serving import video_files

@dataclasses.dataclass(frozen=True)
class Job:
    """One input and where its result goes."""
    path: str
    output: str
    kind: str  # "image" or "video"

    @property
    def confidence_output(self):
        return self.output[:-len(".png")] + ".confidence.png"


def list_inputs(paths):
    """Paths (files or folders, recursive) -> ([(input path, output relative path, kind)],
    hidden files and folders left out)."""
    files, hidden = image_files.list_files(
        paths, image_files.IMAGE_EXTENSIONS + image_files.VIDEO_EXTENSIONS)
    found, seen = [], set()
    for path, folder in files:
        if os.path.realpath(path) in seen:  # named twice (a file and its folder, ...)
            continue
        seen.add(os.path.realpath(path))
        if folder is None:
            rel = os.path.basename(path)
        else:
            rel = os.path.join(os.path.basename(os.path.normpath(folder)),
                               os.path.relpath(path, folder))
        found.append((path, rel, "video" if image_files.has_video_extension(path) else "image"))
    return found, hidden


def _inside(path, folder):
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_outside_inputs(inputs, output_dir):
    """UsageError when results would land inside an input folder (where they could
    replace photos, and become inputs of the next run)."""
    for path in inputs:
        if os.path.isdir(path):
            target = os.path.join(output_dir, os.path.basename(os.path.normpath(path)))
            if _inside(output_dir, path) or _inside(target, path):
                raise cli.UsageError(
                    f"--output_dir {output_dir!r} would put results inside the input folder "
                    f"{path!r}; choose an output folder outside it")


def plan_jobs(inputs, output_dir, overwrite=False, confidence=False):
    """Decides every result's name before anything is written.

    -> (jobs [Job], refused [(input path, reason)], hidden [path]). Never plans a
    write over an input, never two results to one name (photo.jpg beside photo.png
    gives photo.jpg.png), and replaces an existing file only with overwrite=True and
    only when it is an earlier colorize_tf result (a PNG carrying its mark).
    Raises UsageError when results would land inside an input folder.
    """
    check_outside_inputs(inputs, output_dir)
    items, hidden = list_inputs(inputs)
    input_paths = {os.path.realpath(path) for path, _, _ in items}
    by_name = collections.defaultdict(list)
    for path, rel, kind in items:
        stem, ext = os.path.splitext(rel)
        by_name[(stem + (ext if kind == "video" else ".png")).lower()].append((path, rel, kind))
    jobs, refused, taken = [], [], set()
    for path, rel, kind in items:
        stem, ext = os.path.splitext(rel)
        name = stem + (ext if kind == "video" else ".png")
        if len(by_name[name.lower()]) > 1 and ext.lower() != ".png" and kind == "image":
            name = rel + ".png"  # photo.jpg beside photo.png -> photo.jpg.png
        out = os.path.join(output_dir, name)
        count = 1
        while out.lower() in taken:
            count += 1
            out = os.path.join(output_dir, f"{os.path.splitext(name)[0]}-{count}.png")
        taken.add(out.lower())
        job = Job(path, out, kind)
        reason = None
        for target in [out] + ([job.confidence_output] if confidence and kind == "image"
                               else []):
            if os.path.realpath(target) in input_paths:
                reason = (f"the result would replace the input {cli.display_path(target)}; "
                          "choose another --output_dir")
            elif os.path.lexists(target) and not (
                    overwrite and (kind == "video" or image_files.is_marked_png(target))):
                reason = (f"{cli.display_path(target)} exists and was not replaced "
                          "(--overwrite replaces earlier colorize_tf results only)")
            if reason:
                break
        if reason:
            refused.append((path, reason))
        else:
            jobs.append(job)
    return jobs, refused, hidden


def _read_checked(path, max_pixels):
    """-> file bytes; raises ImageRejected for empty files, decompression bombs and
    files TensorFlow's decoder would crash on (they go to the SavedModel as bytes)."""
    data = image_files.read_file(path)  # OSError for FIFOs, devices, > 64 MB
    if not data:
        raise image_files.ImageRejected("empty file (0 bytes)")
    image_files.check_pixels(data, max_pixels)
    image_files.check_decodable(data)
    return data


def _is_colour_file(data):
    """True when the photo has colour (read at 1/8 scale: cheap, and bombs are refused
    before this)."""
    try:
        small = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_COLOR_8)
    except cv2.error:
        return False
    return small is not None and not color.is_gray(small[..., ::-1])


@dataclasses.dataclass(frozen=True)
class Options:
    """How to colorize: temperature > 0 (None: the model's own default, from its
    export metadata); confidence: also write the confidence map;
    work_size: longest side the model sees (0: the exported one); max_pixels: larger
    inputs are refused before decoding."""
    temperature: typing.Optional[float] = None  # None: the model's default
    confidence: bool = False
    work_size: int = 0
    max_pixels: int = image_files.DEFAULT_MAX_PIXELS
    hints: typing.Optional[dict] = None  # {file path or name: [hint dict]} (read_hints)


def read_hints(path):
    """A --hints file -> {file path or name: [{"point": [row, column], "color": [r, g,
    b]}]}, checked (UsageError naming the file, the entry and what is wrong)."""
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise cli.UsageError(f"--hints {cli.display_path(path)!r} cannot be read as JSON: "
                             f"{getattr(e, 'strerror', None) or e}") from None
    example = '{"photo.jpg": [{"point": [0.3, 0.6], "color": [200, 30, 30]}]}'
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise cli.UsageError(f"--hints {cli.display_path(path)!r}: expected an object of "
                             f"file names and their hints, e.g. {example}")
    for name, hints in data.items():
        try:
            point_arrays([hints])
        except ValueError as e:
            raise cli.UsageError(f"--hints {cli.display_path(path)!r}: {name}: {e}") from None
    return data


def hints_of(path, hints):
    """The hints of the input at path: those of the entry that names it (its path, or
    its last path components, e.g. its file name), or None."""
    if not hints:
        return None
    parts = os.path.normpath(path).split(os.sep)
    for name, entry in hints.items():
        wanted = os.path.normpath(name).split(os.sep)
        if parts[-len(wanted):] == wanted:
            return entry
    return None


def check_one_entry_each(jobs, hints):
    """UsageError when two --hints entries name the same input (e.g. "a.jpg" and
    "photos/a.jpg"): which one was meant cannot be told."""
    for job in jobs:
        names = [name for name in (hints or {}) if hints_of(job.path, {name: hints[name]})
                 is not None]
        if len(names) > 1:
            raise cli.UsageError(f"--hints: {names[0]!r} and {names[1]!r} both name "
                                 f"{cli.display_path(job.path)}: give one entry per photo")


def unused_hints(jobs, hints):
    """The names in hints that no input matches."""
    return [name for name in (hints or {}) if not any(
        hints_of(job.path, {name: hints[name]}) is not None for job in jobs)]


@dataclasses.dataclass
class Outcome:
    """done [(input, output)], failed [(input, reason)], notes [(input, note)]."""
    done: list = dataclasses.field(default_factory=list)
    failed: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)

    def fail(self, job, error):
        """Records job as failed by an error of colorizing or writing it, in one line."""
        if isinstance(error, OSError):
            reason = f"cannot write {cli.display_path(job.output)}: {error.strerror or error}"
        else:
            reason = _short_error(error)
        self.failed.append((job.path, reason))


def run(inputs, output_dir, saved_model, options, batch_size=8, overwrite=False):
    """Colorizes every photo and video under inputs into output_dir; -> Outcome.
    One bad input is one line in Outcome.failed, the others go on."""
    jobs, failed, hidden = plan_jobs(inputs, output_dir, overwrite, options.confidence)
    if not jobs and not failed:
        raise cli.UsageError(f"no photos or videos found in {inputs}")
    check_one_entry_each(jobs, options.hints)
    outcome = Outcome(failed=failed, notes=[(path, "hidden: left out") for path in hidden])
    outcome.notes += [(name, "--hints names a file that is not among the inputs")
                      for name in unused_hints(jobs, options.hints)]
    outcome.notes += [(job.path, "hints are for photos, not videos: not used")
                      for job in jobs if job.kind == "video"
                      and hints_of(job.path, options.hints) is not None]
    if jobs:
        colorizer = inference.Colorizer(saved_model)
        if options.hints and not colorizer.takes_hints:
            raise cli.UsageError(f"--hints: {cli.display_path(saved_model)} takes no colour "
                                 "hints (use a model trained with --hints, e.g. "
                                 "saved_models/colorunet_landscapes_hints)")
        _colorize_photos(colorizer, [j for j in jobs if j.kind == "image"], batch_size,
                         options, outcome)
        for job in (j for j in jobs if j.kind == "video"):
            _colorize_one_video(colorizer, job, options, outcome)
    return outcome


def _colorize_photos(colorizer, jobs, batch_size, options, outcome):
    """Photos batch_size at a time through the SavedModel; a batch that one bad file
    fails is redone photo by photo."""
    bar = cli.Progress(len(jobs), "photo") if jobs else None
    for start in range(0, len(jobs), batch_size):
        batch = _read_batch(jobs[start:start + batch_size], options.max_pixels, outcome)
        results = None
        if batch and not options.work_size:
            try:
                results = colorizer.colorize_bytes(
                    [data for _, data in batch], options.temperature,
                    [hints_of(job.path, options.hints) for job, _ in batch]
                    if options.hints else None)
            except tf.errors.InvalidArgumentError:
                results = None  # one bad file fails the batch: retry one by one
        for i, (job, data) in enumerate(batch):
            try:
                png, confidence_png = results[i] if results is not None else \
                    _colorize_one(colorizer, job, data, options)
                _save(job, png, confidence_png if options.confidence else None)
                outcome.done.append((job.path, job.output))
            except (tf.errors.InvalidArgumentError, ValueError, cv2.error, OSError) as e:
                outcome.fail(job, e)
        if bar:
            bar.update(min(start + batch_size, len(jobs)))


def _read_batch(jobs, max_pixels, outcome):
    """-> [(job, file bytes)] of the jobs whose file can be read and is not too large."""
    batch = []
    for job in jobs:
        try:
            data = _read_checked(job.path, max_pixels)
        except OSError as e:
            outcome.failed.append((job.path, e.strerror or str(e)))
            continue
        except image_files.ImageRejected as e:
            outcome.failed.append((job.path, str(e)))
            continue
        if _is_colour_file(data):
            outcome.notes.append((job.path, "colour input: colorized from its luma"))
        batch.append((job, data))
    return batch


def _colorize_one(colorizer, job, data, options):
    """One photo's bytes -> (PNG, confidence PNG), at the exported working size or at
    options.work_size."""
    if not options.work_size:
        hints = hints_of(job.path, options.hints)
        return colorizer.colorize_bytes([data], options.temperature,
                                        None if hints is None else [hints])[0]
    # The serving graph's decoding (EXIF orientation, alpha over white).
    rgb = photo_decoding.decode_rgb(tf.constant(data)).numpy()
    out, conf = colorizer.colorize(rgb, options.temperature, True,
                                   options.work_size)
    return (cv2.imencode(".png", out[..., ::-1].copy())[1].tobytes(),
            cv2.imencode(".png", np.round(conf * 255).astype(np.uint8))[1].tobytes())


def _save(job, png, confidence_png=None):
    """Writes the result (and its confidence map), marked as colorize_tf's, atomically."""
    os.makedirs(os.path.dirname(job.output) or ".", exist_ok=True)
    safe_write.write_bytes(job.output, image_files.mark_png(png))
    if confidence_png is not None:
        safe_write.write_bytes(job.confidence_output, image_files.mark_png(confidence_png))


def _colorize_one_video(colorizer, job, options, outcome):
    os.makedirs(os.path.dirname(job.output) or ".", exist_ok=True)
    bar = []

    def progress(count, total):
        if not bar:
            bar.append(cli.Progress(total or None, "frame"))
        bar[0].update(count)
    try:
        image_files.check_regular_file(job.path)  # OpenCV would block on a FIFO
    except OSError as e:
        outcome.failed.append((job.path, e.strerror or str(e)))
        return
    try:
        frames = video_files.colorize_video(colorizer, job.path, job.output, options.temperature,
                                options.work_size or None, progress=progress,
                                max_pixels=options.max_pixels)
        outcome.notes.append((job.path, f"{frames} frames (audio not carried over)"))
        outcome.done.append((job.path, job.output))
    except (ValueError, tf.errors.InvalidArgumentError, cv2.error, OSError) as e:
        outcome.fail(job, e)


def _short_error(error):
    """The useful line of an error (a TF error's message, not the graph trace)."""
    text = serving_api.error_line(getattr(error, "message", None) or str(error))
    if "Unknown image file format" in text:
        return "not an image TensorFlow can decode (JPEG, PNG, GIF, BMP, WebP)"
    return text


def define_flags(fv):
    """Defines this entry point's flags on the FlagValues fv."""
    d = cli.definer(fv)
    d.string("output_dir", None, "Where results go (inputs' names are kept, as .png for "
             "photos); never an input folder.")
    d.string("saved_model", inference.default_saved_model(), "SavedModel version dir, model "
             "base dir (its highest version), or a shipped model's name: "
             f"{presets.help_text()}.")
    d.float("temperature", Options.temperature, "Annealed-mean temperature, > 0: lower "
            "is more vivid, 1 is the plain mean (above 1 flatter still); default: the "
            "model's own, stored at export (0.5 for the shipped general model).")
    d.bool("confidence", Options.confidence, "Also write NAME.confidence.png (top-1 bin "
           "probability).")
    d.integer("work_size", Options.work_size, "Longest side the model sees; 0: the exported "
              "one.")
    d.integer("batch_size", 8, "Photos per SavedModel call.")
    d.string("hints", None, "A hints model only: a JSON file of colour hints per photo, "
             '{"photo.jpg": [{"point": [row, column], "color": [r, g, b]}]}: row and column '
             "relative to the photo (0-1), r, g, b 0-255; a name matches an input by its "
             "path or its last components.")
    d.integer("max_pixels", Options.max_pixels, "Photos (and video frames) "
              "with more pixels are refused before decoding.")
    d.bool("overwrite", False, "Replace results of an earlier colorize run (files this tool "
           "wrote); other existing files are never replaced.")


def check_flags(f, inputs):
    """Refuses bad flags before any work (UsageError)."""
    if not inputs:
        raise cli.UsageError("give photos, folders or videos to colorize")
    if not f["output_dir"]:
        raise cli.UsageError("--output_dir is required")
    if f["temperature"] is not None:
        cli.check_temperature(f["temperature"])
    if f["batch_size"] < 1:
        raise cli.UsageError(f"--batch_size must be >= 1, got {f['batch_size']}")
    if f["work_size"] < 0:
        raise cli.UsageError(f"--work_size must be >= 0 (0: the exported one), got "
                             f"{f['work_size']}")
    if f["max_pixels"] < 1:
        raise cli.UsageError(f"--max_pixels must be >= 1, got {f['max_pixels']}")
    if f["hints"] and f["work_size"]:
        raise cli.UsageError("--hints works at the exported working size: leave --work_size "
                             "out")
    missing = [p for p in inputs if not os.path.exists(p)]
    if missing:
        raise cli.UsageError(f"no such file or folder: {cli.display_path(missing[0])}")
    check_outside_inputs(inputs, f["output_dir"])
    cli.check_output_dir(f["output_dir"])
    try:
        inference.resolve_saved_model(f["saved_model"])
    except inference.ModelNotFound as e:
        raise cli.UsageError(f"--saved_model: {e}") from None


def main(argv=None):
    f, inputs = cli.parse(define_flags, argv, positional=True)
    start = time.time()
    try:
        check_flags(f, inputs)
        options = Options(temperature=f["temperature"], confidence=f["confidence"],
                          work_size=f["work_size"], max_pixels=f["max_pixels"],
                          hints=read_hints(f["hints"]) if f["hints"] else None)
        outcome = run(inputs, f["output_dir"], f["saved_model"], options, f["batch_size"],
                      f["overwrite"])
    except (cli.UsageError, inference.ModelError) as e:
        cli.fail("colorize", e)
    for path, output in outcome.done:
        print(f"{cli.display_path(path)} -> {cli.display_path(output)}")
    for path, note in outcome.notes:
        print(f"note: {cli.display_path(path)}: {note}")
    for path, reason in outcome.failed:
        print(f"failed: {cli.display_path(path)}: {reason}", file=sys.stderr)
    print(f"colorized {len(outcome.done)}, failed {len(outcome.failed)} in "
          f"{time.time() - start:.1f} s -> "
          f"{cli.display_path(os.path.abspath(f['output_dir']))}")
    sys.exit(1 if outcome.failed else 0)


if __name__ == "__main__":
    cli.run_main("colorize", main)
