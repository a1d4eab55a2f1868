r"""Colorize photos, folders and videos through an exported SavedModel.

    python -m colorize_tf.colorize examples/ --output_dir=out/colorized
    python -m colorize_tf.colorize film.mp4 --output_dir=out --temperature=0.3

Photos go through the `serving_default` signature (decode, colorize, encode: the
same graph TF Serving runs); with --work_size, or for videos, frames go through
`colorize_luma` with the same steps done here, so that video frames can have their
bin probabilities smoothed over time (ColorUNet section 4.3) before the annealed
mean. Results keep the input's name (as .png for photos), size and aspect; videos
keep fps and size (the audio track is not carried over).

Python API:
    from colorize_tf import Colorizer
    rgb = Colorizer("saved_models/colorunet_landscapes").colorize(gray_uint8, temperature=0.38)
"""
import json
import os
import sys
import time

import cv2
import numpy as np
import tensorflow as tf

from colorize_tf import bins as bins_lib
from colorize_tf import cli
from colorize_tf import color
from colorize_tf import decoding
from colorize_tf import export

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SAVED_MODEL = os.path.join(PACKAGE_ROOT, "saved_models", "colorunet_landscapes")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv")
_FOURCC = {".mp4": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


def resolve_saved_model(path):
    """A version dir, or a model base dir (its highest integer version) -> version dir."""
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    versions = sorted((int(n) for n in os.listdir(path) if n.isdigit()), reverse=True) \
        if os.path.isdir(path) else []
    if not versions:
        raise cli.UsageError(f"no SavedModel at {path!r} (export one with "
                             "python -m colorize_tf.export)")
    return os.path.join(path, str(versions[0]))


def is_gray(rgb, tolerance=2):
    """True when the three channels agree within tolerance (uint8 levels)."""
    rgb = rgb.astype(np.int16)
    return int(np.abs(rgb - rgb[..., :1]).max()) <= tolerance


class Colorizer:
    """Colorizes images with an exported SavedModel (see python -m colorize_tf.export)."""

    def __init__(self, saved_model_dir=DEFAULT_SAVED_MODEL):
        self.path = resolve_saved_model(saved_model_dir)
        self._loaded = tf.saved_model.load(self.path)
        self._serve = self._loaded.signatures[export.SERVING_SIGNATURE]
        self._luma = self._loaded.signatures[export.LUMA_SIGNATURE]
        assets = os.path.join(self.path, "assets")
        with open(os.path.join(assets, "export.json")) as f:
            self.export_info = json.load(f)
        self.bins = bins_lib.Bins.load(os.path.join(assets, bins_lib.ARTIFACT_NAME))
        self.color_space = self.bins.grid.color_space

    def colorize_bytes(self, images, temperature=decoding.DEFAULT_TEMPERATURE):
        """Encoded images [list of bytes] -> [(colorized PNG bytes, confidence PNG bytes)]."""
        out = self._serve(image_bytes=tf.constant(images, tf.string),
                          temperature=tf.constant([temperature], tf.float32))
        return list(zip(out[export.COLORIZED_PNG].numpy(), out[export.CONFIDENCE_PNG].numpy()))

    def colorize(self, image, temperature=decoding.DEFAULT_TEMPERATURE, confidence=False,
                 work_size=None, smoother=None):
        """uint8 image [H, W], [H, W, 1] or RGB [H, W, 3] -> colour RGB uint8 [H, W, 3].

        A colour image is colorized from its luma. confidence=True also returns the
        top-1 bin probability [H, W] in [0, 1]. work_size overrides the exported
        working size; smoother (decoding.TemporalSmoother) smooths video frames.
        """
        image = np.asarray(image)
        if image.ndim == 2:
            image = image[..., None]
        if image.shape[-1] == 1:
            image = np.repeat(image, 3, axis=-1)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"expected a uint8 image [H, W], [H, W, 1] or [H, W, 3], got "
                             f"{image.dtype} {image.shape}")
        if work_size is None and smoother is None:
            ok, png = cv2.imencode(".png", image[..., ::-1].copy())
            colorized, conf = self.colorize_bytes([png.tobytes()], temperature)[0]
            rgb = tf.io.decode_png(colorized, channels=3).numpy()
            if confidence:
                return rgb, tf.io.decode_png(conf).numpy()[..., 0].astype(np.float32) / 255.0
            return rgb
        return self._colorize_frame(image, temperature, confidence,
                                    work_size or self.export_info["work_size"], smoother)

    def predict_probabilities(self, rgb_uint8, work_size=None):
        """RGB uint8 [H, W, 3] -> (full-size luma [H, W, 1], bin probabilities [h, w, n] at
        the working size): the serving graph's steps up to the softmax."""
        rgb = tf.image.convert_image_dtype(rgb_uint8, tf.float32)
        luma = color.rgb_to_luma(rgb, self.color_space)
        size = tf.shape(luma)[:2]
        work = export.working_size(size[0], size[1], work_size or self.export_info["work_size"])
        small = tf.clip_by_value(tf.image.resize(luma, work, method="lanczos3", antialias=True),
                                 0.0, 1.0)
        out = self._luma(luma=small[None], temperature=tf.constant([1.0]))
        return luma, out["probabilities"][0].numpy()

    def render(self, luma, probabilities, temperature):
        """(luma [H, W, 1], probabilities [h, w, n]) -> (RGB uint8 [H, W, 3], top-1 [H, W]):
        annealed mean, chroma upsampled to the luma's size, recombined."""
        size = tf.shape(luma)[:2]
        chroma = decoding.annealed_mean_of_probabilities(probabilities, self.bins.centres,
                                                         temperature)
        chroma = tf.image.resize(chroma, size, method="bilinear")
        result = color.luma_chroma_to_rgb(luma, chroma, self.color_space)
        top1 = decoding.confidence_maps(probabilities)[0]
        return (tf.image.convert_image_dtype(result, tf.uint8, saturate=True).numpy(),
                tf.image.resize(top1[..., None], size)[..., 0].numpy())

    def _colorize_frame(self, rgb_uint8, temperature, confidence, work_size, smoother):
        luma, probabilities = self.predict_probabilities(rgb_uint8, work_size)
        if smoother is not None:
            probabilities = smoother(probabilities)
        result, top1 = self.render(luma, probabilities, temperature)
        return (result, top1) if confidence else result


def colorize_video(colorizer, in_path, out_path, temperature, work_size=None,
                   frames=decoding.SMOOTHING_FRAMES, alpha=decoding.SMOOTHING_ALPHA,
                   progress=None):
    """Reads a video with OpenCV, colorizes every frame with temporal smoothing, writes
    the same fps and size. Returns the number of frames. The audio is not carried."""
    capture = cv2.VideoCapture(in_path)
    if not capture.isOpened():
        raise ValueError("OpenCV cannot open this video")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    extension = os.path.splitext(out_path)[1].lower()
    tmp = f"{out_path}.tmp-{os.getpid()}{extension}"
    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*_FOURCC.get(extension, "mp4v")),
                             fps, (width, height))
    smoother = decoding.TemporalSmoother(frames, alpha)
    count = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            rgb = colorizer.colorize(frame[..., ::-1], temperature, work_size=work_size,
                                     smoother=smoother)
            writer.write(np.ascontiguousarray(rgb[..., ::-1]))
            count += 1
            if progress:
                progress(count, total)
    finally:
        capture.release()
        writer.release()
    if count == 0:
        os.remove(tmp)
        raise ValueError("the video has no readable frames")
    os.replace(tmp, out_path)
    return count


def list_inputs(paths):
    """Paths (files or folders, recursive) -> [(input path, output relative path, kind)]."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            base = os.path.basename(os.path.normpath(path))
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    ext = os.path.splitext(name)[1].lower()
                    if ext in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS:
                        rel = os.path.join(base, os.path.relpath(os.path.join(root, name), path))
                        found.append((os.path.join(root, name), rel,
                                      "video" if ext in VIDEO_EXTENSIONS else "image"))
        else:
            ext = os.path.splitext(path)[1].lower()
            found.append((path, os.path.basename(path),
                          "video" if ext in VIDEO_EXTENSIONS else "image"))
    return found


def _output_path(output_dir, rel, kind):
    stem, ext = os.path.splitext(rel)
    path = os.path.join(output_dir, stem + (ext if kind == "video" else ".png"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def _write_atomically(path, data):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def run(inputs, output_dir, saved_model, temperature, confidence, work_size, batch_size,
        log=print):
    """Colorizes everything; returns (done, failed [(path, reason)], notes [(path, note)])."""
    import keras
    colorizer = Colorizer(saved_model)
    items = list_inputs(inputs)
    if not items:
        raise cli.UsageError(f"no photos or videos found in {inputs}")
    images = [i for i in items if i[2] == "image"]
    videos = [i for i in items if i[2] == "video"]
    done, failed, notes = 0, [], []
    bar = keras.utils.Progbar(len(images), unit_name="photo") if images else None

    def save(item, colorized, conf):
        path = _output_path(output_dir, item[1], "image")
        _write_atomically(path, colorized)
        if confidence:
            _write_atomically(path[:-4] + ".confidence.png", conf)

    for start in range(0, len(images), batch_size):
        batch, datas = [], []
        for item in images[start:start + batch_size]:
            try:
                with open(item[0], "rb") as f:
                    data = f.read()
            except OSError as e:
                failed.append((item[0], e.strerror or str(e)))
                continue
            decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) \
                if data else None
            if decoded is not None and not is_gray(decoded):
                notes.append((item[0], "colour input: colorized from its luma"))
            batch.append(item)
            datas.append(data)
        results = None
        if batch and not work_size:
            try:
                results = colorizer.colorize_bytes(datas, temperature)
            except tf.errors.InvalidArgumentError:
                results = None  # one bad file fails the batch: retry one by one
        for i, (item, data) in enumerate(zip(batch, datas)):
            try:
                if results is not None:
                    save(item, *results[i])
                elif not work_size:
                    save(item, *colorizer.colorize_bytes([data], temperature)[0])
                else:
                    rgb = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
                    if rgb is None:
                        raise ValueError("not a readable image")
                    out, conf = colorizer.colorize(rgb[..., ::-1], temperature, True, work_size)
                    save(item, cv2.imencode(".png", out[..., ::-1].copy())[1].tobytes(),
                         cv2.imencode(".png", np.round(conf * 255).astype(np.uint8))[1]
                         .tobytes())
                done += 1
            except (tf.errors.InvalidArgumentError, ValueError) as e:
                failed.append((item[0], _short_error(e)))
        if bar:
            bar.update(min(start + batch_size, len(images)))
    for item in videos:
        out_path = _output_path(output_dir, item[1], "video")
        video_bar = [None]

        def progress(count, total):
            if video_bar[0] is None:
                video_bar[0] = keras.utils.Progbar(total or None, unit_name="frame")
            video_bar[0].update(count)
        try:
            frames = colorize_video(colorizer, item[0], out_path, temperature, work_size or None,
                                    progress=progress)
            log(f"{item[0]}: {frames} frames -> {out_path} (audio not carried over)")
            done += 1
        except (ValueError, tf.errors.InvalidArgumentError) as e:
            failed.append((item[0], _short_error(e)))
    return done, failed, notes


def _short_error(error):
    """The useful line of a TF error (its message, not the graph trace)."""
    text = getattr(error, "message", None) or str(error)
    for marker in ("image_bytes is empty", "larger than the limit", "Unknown image file format",
                   "temperature must be"):
        if marker in text:
            return marker if marker != "Unknown image file format" else \
                "not an image TensorFlow can decode (JPEG, PNG, GIF, BMP, WebP)"
    return text.strip().splitlines()[0][:200]


def define_flags(fv):
    """Defines this entry point's flags on the FlagValues fv."""
    d = cli.definer(fv)
    d.string("output_dir", None, "Where results go (inputs' names are kept).")
    d.string("saved_model", DEFAULT_SAVED_MODEL, "SavedModel version dir or model base dir "
             "(its highest version).")
    d.float("temperature", decoding.DEFAULT_TEMPERATURE, "Annealed-mean temperature in "
            "(0, 1]: lower is more vivid, 1 is the flat mean.")
    d.bool("confidence", False, "Also write NAME.confidence.png (top-1 bin probability).")
    d.integer("work_size", 0, "Longest side the model sees; 0: the exported one.")
    d.integer("batch_size", 8, "Photos per SavedModel call.")


def main(argv=None):
    f, inputs = cli.parse(define_flags, argv, positional=True)
    start = time.time()
    try:
        if not inputs:
            raise cli.UsageError("give photos, folders or videos to colorize")
        if not f["output_dir"]:
            raise cli.UsageError("--output_dir is required")
        if f["temperature"] <= 0:
            raise cli.UsageError("--temperature must be > 0")
        done, failed, notes = run(inputs, f["output_dir"], f["saved_model"], f["temperature"],
                                  f["confidence"], f["work_size"], f["batch_size"])
    except cli.UsageError as e:
        cli.fail("colorize", e)
    for path, note in notes:
        print(f"note: {path}: {note}")
    for path, reason in failed:
        print(f"failed: {path}: {reason}", file=sys.stderr)
    print(f"colorized {done}, failed {len(failed)} in {time.time() - start:.1f} s "
          f"-> {os.path.abspath(f['output_dir'])}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
