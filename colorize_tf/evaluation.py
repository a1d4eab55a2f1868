"""Evaluating a colorizer against colour ground truths, the way the colorization
literature does, fast: photos of one size go through the model in a batch, the model
runs once per photo, every temperature is decoded from the same probabilities, and
every metric of a batch is one compiled graph call.

Per method (gray, the training set's mean chroma, and the annealed mean at each
temperature): PSNR and SSIM on RGB, MSE on Lab ab, the cumulative ab-error curve over
0-150 (Zhang et al. 2016) raw and class-rebalanced (classes: Lab ab cells of side 10,
the true colour's), colourfulness (Hasler and Suesstrunk 2003) against the truth's,
and the histogram of predicted vs true bins with its KL divergence (ColorUNet
figure 9). metrics.py holds the per-image definitions these batched graphs follow
(tests/test_evaluation.py checks one against the other).
"""
import concurrent.futures
import csv
import dataclasses
import math
import os
import re
import time

import cv2
import numpy as np
import tensorflow as tf

from colorize_tf import bins as bins_lib
from colorize_tf import cli
from colorize_tf import color
from colorize_tf import decoding
from colorize_tf import figures
from colorize_tf import image_files
from colorize_tf import metrics
from colorize_tf import safe_write
from colorize_tf import serving

GRAY = "gray"
MEAN = "mean chroma"
DEFAULT_TEMPERATURES = (0.2, 0.38, 0.6, 1.0)
LAB_CLASSES = bins_lib.DEFAULT_GRIDS[color.LAB]
BATCH_SIZE = 32  # photos of one size per model call
SSIM_WINDOW = 11  # tf.image.ssim's default Gaussian window (sigma 1.5)
_NUM_THRESHOLDS = len(metrics.AUC_THRESHOLDS)
CHANCE_SHUFFLES = 2000  # permutations behind a group spread's chance figures


def method_names(temperatures):
    """[GRAY, MEAN, "T=0.2", ...] in report order."""
    return [GRAY, MEAN] + [f"T={t:g}" for t in temperatures]


def default_method(temperatures, preferred=None):
    """The method of the model's own default temperature `preferred` when it was
    evaluated, else the temperature closest to decoding.DEFAULT_TEMPERATURE."""
    if preferred is not None and preferred in temperatures:
        return f"T={preferred:g}"
    t = min(temperatures, key=lambda t: abs(t - decoding.DEFAULT_TEMPERATURE))
    return f"T={t:g}"


def result_default_method(result):
    """default_method of an evaluation's metrics.json dict."""
    return default_method(result["temperatures"], result.get("default_temperature"))


def list_photos(folder, max_images=0):
    """The image files under folder (recursive, hidden ones left out), sorted; at most
    max_images of them (0: all), evenly spread, so every sub-folder is represented."""
    files, _ = image_files.list_files([folder], image_files.IMAGE_EXTENSIONS)
    paths = [path for path, _ in files]
    if max_images and len(paths) > max_images:
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, max_images).astype(int)]
    return paths


def list_domain_photos(folders, max_images=0):
    """folders: [(name or None, folder)] -> (paths, {path: ("domain: D",)}): the photos
    of every folder (max_images as list_photos', over all of them), each photo's domain
    the folder's name when given, else its first-level sub-folder's (the folder's own
    name for photos at its top). No domains when there is only one."""
    paths, domains = [], {}
    for name, folder in folders:
        for path in list_photos(folder):
            parts = os.path.relpath(path, folder).split(os.sep)
            domain = name or (parts[0] if len(parts) > 1 else os.path.basename(
                os.path.abspath(folder)))
            paths.append(path)
            domains[path] = (f"domain: {domain}",)
    if max_images and len(paths) > max_images:
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, max_images).astype(int)]
    if len(set(domains[p] for p in paths)) < 2:
        return paths, {}
    return paths, {p: domains[p] for p in paths}


def read_label_groups(csv_path):
    """A CSV with a `path` column (relative to the CSV's folder) and label columns ->
    {real path: ("column: value", ...)}: e.g. FairFace's faces_labels.csv gives
    ("age: 20-29", "gender: Female", "race: Black"). Empty values are left out."""
    base = os.path.dirname(os.path.abspath(csv_path))
    groups = {}
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if "path" not in (reader.fieldnames or []):
            raise ValueError(f"{csv_path}: no 'path' column (columns: {reader.fieldnames})")
        for row in reader:
            path = os.path.realpath(os.path.join(base, row.pop("path")))
            groups[path] = tuple(f"{k}: {v}" for k, v in row.items() if k and v)
    return groups


class LeftOut(ValueError):
    """A photo that cannot serve as a ground truth; str() is the one-line reason."""


def read_ground_truth(path, max_pixels=image_files.DEFAULT_MAX_PIXELS, gray_threshold=None):
    """A colour photo -> RGB uint8 [H, W, 3] (EXIF orientation applied); LeftOut for
    what cannot serve as a ground truth: unreadable, bombs, truncated JPEGs,
    undecodable, and (gray_threshold given) gray or single-tint photos, whose gray
    PSNR would be infinite (color.chroma_spread below gray_threshold)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise LeftOut(e.strerror or str(e)) from None
    if not data:
        raise LeftOut("empty file (0 bytes)")
    try:
        image_files.check_pixels(data, max_pixels)
    except image_files.ImageRejected as e:
        raise LeftOut(str(e)) from None
    if data[:2] == b"\xff\xd8" and not image_files.jpeg_is_complete(data):
        raise LeftOut("truncated JPEG (no end-of-image marker): its missing part would "
                      "count as gray")
    try:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        bgr = None
    if bgr is None:
        raise LeftOut("OpenCV cannot decode it")
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    if gray_threshold is not None:
        spread = color.yuv_chroma_spread(rgb)
        if spread < gray_threshold:
            raise LeftOut(f"ground truth is gray or single-tint (chroma spread {spread:.4f})")
    return rgb


def read_ground_truths(paths, max_pixels, gray_threshold, workers=2):
    """Yields (path, RGB uint8 or LeftOut) in order, decoding in worker threads (OpenCV
    releases the GIL while it decodes)."""
    def read(path):
        try:
            return read_ground_truth(path, max_pixels, gray_threshold)
        except LeftOut as e:
            return e
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        yield from zip(paths, pool.map(read, paths))


def shape_batches(items, batch_size=BATCH_SIZE, window=4 * BATCH_SIZE, kind_of=None):
    """(key, RGB uint8 [H, W, 3]) pairs -> lists of up to batch_size pairs of one image
    size (and one kind_of(key), when given), grouped within consecutive windows of
    `window` items (memory stays bounded whatever the number of photos; a set of one
    size gives full batches)."""
    pending = {}
    for count, (key, image) in enumerate(items, 1):
        batch_key = (kind_of(key) if kind_of else None, image.shape)
        group = pending.setdefault(batch_key, [])
        group.append((key, image))
        if len(group) == batch_size:
            yield pending.pop(batch_key)
        if count % window == 0:
            yield from pending.values()
            pending = {}
    yield from pending.values()


@dataclasses.dataclass
class MethodTotals:
    """Sums over the photos seen of one method's scores."""
    num_bins: int
    per_image: dict = dataclasses.field(default_factory=lambda: {
        "psnr": [], "ssim": [], "mse_ab": [], "colourfulness": [], "colour_cast": []})
    curve: metrics.ErrorCurve = dataclasses.field(
        default_factory=lambda: metrics.ErrorCurve(LAB_CLASSES.num_cells))
    bin_counts: np.ndarray = None

    def __post_init__(self):
        if self.bin_counts is None:
            self.bin_counts = np.zeros(self.num_bins)

    def add(self, scores):
        """scores: the dict of BatchScorer for this method (numpy)."""
        for name, values in self.per_image.items():
            values.extend(float(v) for v in scores[name])
        self.curve.add_histogram(scores["error_histogram"].reshape(
            LAB_CLASSES.num_cells, _NUM_THRESHOLDS + 1))
        self.bin_counts += scores["bin_counts"]

    def summary(self, truth_colourfulness, truth_bins):
        out = {k: float(np.mean(v)) for k, v in self.per_image.items()}
        out["auc"] = self.curve.auc()
        out["auc_rebalanced"] = self.curve.rebalanced_auc()
        out["colourfulness_ratio"] = out["colourfulness"] / max(truth_colourfulness, 1e-9)
        out["kl_bins"] = metrics.kl_divergence(truth_bins, self.bin_counts)
        return out


class BatchScorer:
    """Colorizes batches of ground truths of one size by every method and scores them,
    as compiled graphs: the Colorizer's model once per photo (its `luma_probabilities`
    signature), then each method's render and metrics.

    The metrics compile with XLA for batches of at least xla_batch photos: XLA's fused
    loops make the Lab conversions about 2.5x faster on a CPU, but it compiles once per
    shape (~1 s), which sets of many photo sizes (Caltech-101: 144 sizes in 456 photos)
    or small per-group batches pay on nearly every batch; smaller batches run the same
    graphs uncompiled."""

    def __init__(self, colorizer, temperatures, xla_batch=BATCH_SIZE):
        self.colorizer = colorizer
        self.bins = colorizer.bins
        self.space = colorizer.color_space
        self.temperatures = list(temperatures)
        self.names = method_names(temperatures)
        self._mean_chroma = tf.constant(
            np.sum(np.asarray(self.bins.centres) * self.bins.prior[:, None], axis=0),
            tf.float32)
        self.xla_batch = xla_batch
        image = tf.TensorSpec([None, None, None, 3], tf.uint8)
        self._truth_stats = {jit: tf.function(self._truth_stats_graph, jit_compile=jit,
                                              input_signature=[image])
                             for jit in (False, True)}
        self._methods = tf.function(self._methods_graph, input_signature=[
            tf.TensorSpec([None, None, None, 1], tf.float32),
            tf.TensorSpec([None, None, None, colorizer.decoder.num_scores], tf.float32)])
        # SSIM never compiles with XLA (its depthwise convolutions are slow there), and
        # neither does resizing.
        self._scores = {jit: tf.function(self._scores_graph, jit_compile=jit, input_signature=[
            tf.TensorSpec([None, None, None, None, 3], tf.uint8), image,
            tf.TensorSpec([None, None, None, 2], tf.float32),
            tf.TensorSpec([None, None, None], tf.int32)]) for jit in (False, True)}
        self._ssim = tf.function(ssim, input_signature=[
            tf.TensorSpec([None, None, None, None, 3], tf.uint8), image])

    def __call__(self, truth, hint_count=None, hint_seeds=None):
        """truth: RGB uint8 [B, H, W, 3] (hint_count, hint_seeds: as
        Colorizer.probabilities') -> (results {method: RGB uint8 [B, H, W, 3]},
        confidence [B, H, W] in [0, 1] (top-1 probability), truth stats
        {"colourfulness" [B], "bin_counts" [n]}, scores {method: {"psnr" [B], "ssim" [B],
        "mse_ab" [B], "colourfulness" [B], "error_histogram" [C * 152], "bin_counts"
        [n]}}), all numpy."""
        truth = tf.convert_to_tensor(truth, tf.uint8)
        jit = truth.shape[0] >= self.xla_batch
        luma, probabilities = self.colorizer.probabilities(truth, hint_count=hint_count,
                                                           hint_seeds=hint_seeds)
        stats = self._truth_stats[jit](truth)
        results, confidence = self._methods(luma, probabilities)
        stacked = tf.stack([results[name] for name in self.names])  # [M, B, H, W, 3]
        per_method = {k: v.numpy() for k, v in self._scores[jit](
            stacked, truth, stats["ab"], stats["class"]).items()}
        if min(truth.shape[1:3]) >= SSIM_WINDOW:
            per_method["ssim"] = self._ssim(stacked, truth).numpy()
        else:  # smaller than the window: metrics.ssim shrinks it to the photo
            per_method["ssim"] = np.array([[metrics.ssim(r, t) for r, t in zip(
                method, truth.numpy())] for method in stacked.numpy()])
        scores = {name: {k: v[m] for k, v in per_method.items()}
                  for m, name in enumerate(self.names)}
        truth_stats = {"colourfulness": stats["colourfulness"].numpy(),
                       "bin_counts": stats["bin_counts"].numpy()}
        return ({k: v.numpy() for k, v in results.items()}, confidence.numpy(), truth_stats,
                scores)

    def _truth_stats_graph(self, truth):
        truth_f = tf.cast(truth, tf.float32) / 255.0  # as numpy did: a division, not * (1/255)
        ab = color.rgb_uint8_to_lab(truth)[..., 1:]
        chroma = color.rgb_to_luma_chroma(truth_f, self.space)[1]
        return {"ab": ab, "class": bins_lib.cell_index(ab, LAB_CLASSES),
                "colourfulness": colourfulness(truth),
                "bin_counts": _bin_counts(chroma[None], self.bins)[0]}

    def _methods_graph(self, luma, probabilities):
        chroma_shape = tf.concat([tf.shape(luma)[:3], [2]], 0)
        results = {
            GRAY: color.luma_chroma_to_rgb_uint8(luma, tf.zeros(chroma_shape), self.space),
            MEAN: color.luma_chroma_to_rgb_uint8(
                luma, tf.broadcast_to(self._mean_chroma, chroma_shape), self.space)}
        decoder = self.colorizer.decoder
        for t, name in zip(self.temperatures, self.names[2:]):
            results[name] = serving.render_rgb(luma, decoder.chroma(probabilities, t),
                                               self.space)
        # The top-1 probability is the same at every temperature: rendered once.
        confidence = serving.render_confidence(luma, decoder.confidence(probabilities))
        return results, tf.cast(confidence[..., 0], tf.float32) / 255.0

    def _scores_graph(self, results, truth, truth_ab, truth_class):
        """results [M, B, H, W, 3] (every method), truth [B, H, W, 3] -> per method and
        photo [M, B]: psnr, mse_ab, colourfulness, colour_cast (the Lab ab distance
        between the photo's mean chroma and the truth's: a tint over the whole photo;
        gray's is the truth's own mean chroma); per method: error_histogram
        [M, C * 152], bin_counts [M, n]."""
        results_f = tf.cast(results, tf.float32) / 255.0
        ab = color.rgb_uint8_to_lab(results)[..., 1:]
        squared = tf.reduce_sum(tf.square(ab - truth_ab), axis=-1)  # [M, B, H, W]
        # PSNR as tf.image.psnr defines it (on [0, 1] values, peak 1).
        error = tf.square(results_f - tf.cast(truth, tf.float32) / 255.0)
        psnr = -10.0 * tf.math.log(tf.reduce_mean(error, axis=[-3, -2, -1])) / math.log(10.0)
        return {
            "psnr": psnr,
            "mse_ab": tf.reduce_mean(squared, axis=[-2, -1]) / 2.0,
            "colourfulness": colourfulness(results),
            "colour_cast": tf.norm(tf.reduce_mean(ab, axis=[-3, -2])
                                   - tf.reduce_mean(truth_ab, axis=[-3, -2]), axis=-1),
            "error_histogram": error_histogram(tf.sqrt(squared), truth_class),
            "bin_counts": _bin_counts(color.rgb_to_luma_chroma(results_f, self.space)[1],
                                      self.bins)}


def _gaussian_taps(size=SSIM_WINDOW, sigma=1.5):
    """The 1-D Gaussian whose outer product is tf.image.ssim's window, [size] float32."""
    coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    taps = np.exp(-coords ** 2 / (2 * sigma ** 2))
    return (taps / taps.sum()).astype(np.float32)


def ssim(results, truth):
    """SSIM of each of M methods' RGB uint8 results [M, B, H, W, 3] against the truth
    [B, H, W, 3] -> [M, B], exactly tf.image.ssim's definition (Gaussian window 11,
    sigma 1.5, k1 0.01, k2 0.03, valid windows, mean over the channels; metrics.ssim).
    The window is applied as two 1-D passes (22 taps per pixel instead of 121), and the
    truth's blurred maps (mean, mean square) once for all M methods. H, W >= 11."""
    methods = tf.shape(results)[0]
    x = tf.cast(tf.reshape(results, tf.concat([[-1], tf.shape(truth)[1:]], 0)),
                tf.float32) / 255.0  # [M * B, H, W, 3]
    y = tf.cast(truth, tf.float32) / 255.0
    mean_x, mean_sq_x, mean_xy = tf.split(_gaussian_blur(tf.concat(
        [x, tf.square(x), x * tf.tile(y, [methods, 1, 1, 1])], axis=-1)), 3, axis=-1)
    mean_y, mean_sq_y = (tf.tile(m, [methods, 1, 1, 1]) for m in tf.split(
        _gaussian_blur(tf.concat([y, tf.square(y)], axis=-1)), 2, axis=-1))
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    num0 = 2.0 * mean_x * mean_y
    den0 = tf.square(mean_x) + tf.square(mean_y)
    luminance = (num0 + c1) / (den0 + c1)
    cs = (2.0 * mean_xy - num0 + c2) / (mean_sq_x + mean_sq_y - den0 + c2)
    return tf.reshape(tf.reduce_mean(luminance * cs, axis=[1, 2, 3]), [methods, -1])


def _gaussian_blur(maps):
    """maps [N, H, W, C] -> [N, H - 10, W - 10, C]: tf.image.ssim's 11x11 window as two
    valid 1-D passes."""
    taps = tf.constant(_gaussian_taps())
    channels = maps.shape[-1]
    along_w = tf.tile(tf.reshape(taps, [1, -1, 1, 1]), [1, 1, channels, 1])
    along_h = tf.tile(tf.reshape(taps, [-1, 1, 1, 1]), [1, 1, channels, 1])
    return tf.nn.depthwise_conv2d(tf.nn.depthwise_conv2d(maps, along_w, [1, 1, 1, 1], "VALID"),
                                  along_h, [1, 1, 1, 1], "VALID")


def colourfulness(rgb):
    """Hasler and Suesstrunk 2003 in TF: RGB uint8 [..., H, W, 3] -> [...] (0-255 units);
    metrics.colourfulness is the per-image numpy definition."""
    rgb = tf.cast(rgb, tf.float32)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    std = tf.sqrt(tf.math.reduce_variance(rg, axis=[-2, -1]) +
                  tf.math.reduce_variance(yb, axis=[-2, -1]))
    mean = tf.sqrt(tf.square(tf.reduce_mean(rg, axis=[-2, -1])) +
                   tf.square(tf.reduce_mean(yb, axis=[-2, -1])))
    return std + 0.3 * mean


def error_histogram(error, true_class):
    """error [M, ...] ab distances of M methods, true_class [...] int (the same pixels
    for every method) -> counts [M, C * 152] (each flattened [C, 152]): pixels of class
    c at the first threshold of 0, 1, ..., 150 (metrics.AUC_THRESHOLDS) they are within,
    i.e. ceil(error), the last column those over 150. metrics.ErrorCurve.add_histogram
    takes each method's."""
    columns = _NUM_THRESHOLDS + 1
    first = tf.minimum(tf.cast(tf.math.ceil(error), tf.int32), _NUM_THRESHOLDS)
    return _grouped_count(true_class[None] * columns + first,
                          LAB_CLASSES.num_cells * columns)


# A gray pixel's chroma (0, 0) lies on a cell edge of both default grids, and float
# rounding (which differs between XLA and plain kernels) would decide its cell: the
# lookup moves every chroma by 1/1000 of a cell, far more than that rounding (~1e-6).
_EDGE_NUDGE = 1e-3


def _bin_counts(chroma, bins):
    """chroma [M, ..., 2] -> pixel count of each bin [M, n] float64."""
    nudge = tf.constant(bins.grid.cell_size, tf.float32) * _EDGE_NUDGE
    return _grouped_count(bins_lib.encode_hard(chroma + nudge, bins), bins.num_bins)


def _grouped_count(ids, size):
    """int ids [M, ...] in [0, size) -> [M, size] float64: how many times each id occurs
    in each of the M groups. A segment sum: unlike bincount, XLA can compile it."""
    groups = tf.shape(ids)[0]
    flat = tf.reshape(ids, [groups, -1]) + tf.range(groups)[:, None] * size
    counts = tf.math.unsorted_segment_sum(tf.ones_like(flat, tf.float64), flat, groups * size)
    return tf.reshape(counts, [groups, size])


@dataclasses.dataclass
class Totals:
    """What the photos evaluated so far add up to."""
    methods: dict  # method name -> MethodTotals
    truth_bins: np.ndarray  # [n] pixel count of each true bin
    truth_colourfulness: list  # one value per photo
    left_out: list  # [{"file", "reason"}]
    evaluated: int = 0
    groups: dict = dataclasses.field(default_factory=dict)  # group name -> Totals

    @classmethod
    def empty(cls, names, num_bins):
        return cls({n: MethodTotals(num_bins) for n in names}, np.zeros(num_bins), [], [])

    def add(self, truth_stats, scores):
        self.truth_bins += truth_stats["bin_counts"]
        self.truth_colourfulness.extend(float(c) for c in truth_stats["colourfulness"])
        for name, method_scores in scores.items():
            self.methods[name].add(method_scores)
        self.evaluated += len(truth_stats["colourfulness"])

    def summary(self):
        """-> ({method: metrics}, ground-truth colourfulness)."""
        truth_c = float(np.mean(self.truth_colourfulness))
        return {n: m.summary(truth_c, self.truth_bins) for n, m in self.methods.items()}, \
            truth_c


def evaluate(colorizer, paths, temperatures, num_figures=6, gray_threshold=color.GRAY_SPREAD,
             max_pixels=image_files.DEFAULT_MAX_PIXELS, batch_size=BATCH_SIZE,
             on_photos=None, on_figure=None, groups=None, hint_count=None):
    """Evaluates colorizer on the colour photos at paths; -> Totals.

    hint_count (a hints model): each photo colorized with that many hints revealed
    from its own colours (Colorizer.probabilities), the same points on every run.
    groups: {path: (group name, ...)}: a photo also counts in the Totals of each of its
    groups (totals.groups; e.g. its domain, its subject's age group). on_photos(count):
    progress, photos handled so far. on_figure(index, path, results, confidence, truth):
    for the first num_figures photos in path order (results {method: RGB uint8
    [H, W, 3]}, confidence [H, W], truth RGB uint8).
    """
    scorer = BatchScorer(colorizer, temperatures, xla_batch=batch_size)
    totals = Totals.empty(scorer.names, colorizer.bins.num_bins)
    groups = groups or {}
    index = {path: i for i, path in enumerate(paths)}

    def readable():  # the photos that can serve as ground truths; the others noted
        for path, truth in read_ground_truths(paths, max_pixels, gray_threshold):
            if isinstance(truth, LeftOut):
                totals.left_out.append({"file": cli.display_path(path), "reason": str(truth)})
            else:
                yield path, truth
    # A batch holds photos of the same groups, so that its summed scores (error
    # histograms, bin counts) can go to each of them.
    for batch in shape_batches(readable(), batch_size, kind_of=lambda p: groups.get(p, ())):
        truth = np.stack([image for _, image in batch])
        results, confidence, truth_stats, scores = scorer(
            truth, hint_count, [index[path] for path, _ in batch])
        totals.add(truth_stats, scores)
        for name in groups.get(batch[0][0], ()):
            totals.groups.setdefault(name, Totals.empty(scorer.names, colorizer.bins.num_bins)
                                     ).add(truth_stats, scores)
        for j, (path, _) in enumerate(batch):
            if on_figure and index[path] < num_figures:
                on_figure(index[path], path, {k: v[j] for k, v in results.items()},
                          confidence[j], truth[j])
        if on_photos:
            on_photos(totals.evaluated + len(totals.left_out))
    if on_photos:
        on_photos(len(paths))
    return totals


def evaluate_to(output_dir, colorizer, paths, temperatures, num_figures=6,
                gray_threshold=color.GRAY_SPREAD, max_pixels=image_files.DEFAULT_MAX_PIXELS,
                batch_size=BATCH_SIZE, groups=None):
    """Evaluates colorizer on the photos at paths (groups: as evaluate's); writes
    metrics.json, report.md and figures/ to output_dir; -> the metrics.json dict."""
    figure_dir = os.path.join(output_dir, "figures")
    os.makedirs(figure_dir, exist_ok=True)
    names = method_names(temperatures)
    bar = cli.Progress(len(paths), "photo")
    start = time.time()

    def save_figures(index, path, results, confidence, truth):
        _save_photo_figures(figure_dir, index, path, results, confidence, truth, names)
    totals = evaluate(colorizer, paths, temperatures, num_figures, gray_threshold, max_pixels,
                      batch_size, on_photos=bar.update, on_figure=save_figures,
                      groups=groups)
    if totals.evaluated == 0:
        raise cli.UsageError("no photo could be evaluated")
    methods, truth_c = totals.summary()
    result = {
        "images": totals.evaluated, "left_out": totals.left_out,
        "saved_model": colorizer.path, "color_space": colorizer.color_space,
        "num_bins": colorizer.bins.num_bins, "temperatures": list(temperatures),
        "default_temperature": colorizer.export_info.default_temperature,
        "ground_truth": {"colourfulness": truth_c}, "methods": methods,
        "bin_frequencies": {"truth": list(totals.truth_bins / totals.truth_bins.sum()), **{
            n: list(m.bin_counts / max(m.bin_counts.sum(), 1.0))
            for n, m in totals.methods.items()}},
        "groups": {name: {"images": totals.groups[name].evaluated,
                          "methods": totals.groups[name].summary()[0]}
                   for name in sorted(totals.groups, key=_group_order)},
        "seconds": round(time.time() - start, 1)}
    default = result_default_method(result)
    result["group_spreads"] = group_spreads(
        {name: group.methods[default].per_image["psnr"] for name, group in
         totals.groups.items()})
    _save_summary_figures(figure_dir, totals, default)
    safe_write.write_json(os.path.join(output_dir, "metrics.json"), result)
    safe_write.write_bytes(os.path.join(output_dir, "report.md"), report_markdown(result).encode())
    return result


def _group_order(name):
    """Domains first, then each label column; numbers in natural order (age 3-9
    before 10-19)."""
    kind, _, value = name.partition(": ")
    return (kind != "domain", kind,
            [(0, int(part), "") if part.isdigit() else (1, 0, part)
             for part in re.split(r"(\d+)", value)])


def _save_photo_figures(figure_dir, index, path, results, confidence, truth, names):
    """strip_NN_<stem>.png (gray, each temperature, truth) and confidence_NN_<stem>.png."""
    stem = os.path.splitext(os.path.basename(path))[0]
    figures.save_png(os.path.join(figure_dir, f"strip_{index:02d}_{stem}.png"),
                     figures.labelled_strip([results[GRAY]] + [results[n] for n in
                                            names[2:]] + [truth],
                                            ["gray"] + names[2:] + ["truth"]))
    heat = cv2.applyColorMap(np.round(confidence * 255).astype(np.uint8),
                             cv2.COLORMAP_VIRIDIS)[..., ::-1]
    figures.save_png(os.path.join(figure_dir, f"confidence_{index:02d}_{stem}.png"),
                     figures.labelled_strip([results[GRAY], heat, truth],
                                            ["gray", "confidence (top-1 p)", "truth"]))


def _save_summary_figures(figure_dir, totals, default):
    """bin_histogram.png (truth vs the default temperature) and auc_curve.png."""
    predicted = totals.methods[default].bin_counts
    figures.save_png(os.path.join(figure_dir, "bin_histogram.png"), figures.bar_plot(
        {"truth": totals.truth_bins / totals.truth_bins.sum(),
         f"predicted ({default})": predicted / predicted.sum()},
        "bin frequencies: truth vs predicted", "bin (most frequent first)"))
    thresholds = metrics.AUC_THRESHOLDS
    figures.save_png(os.path.join(figure_dir, "auc_curve.png"), figures.line_plot(
        {n: (thresholds, totals.methods[n].curve.rebalanced_curve())
         for n in [GRAY, MEAN, default]},
        "class-rebalanced accuracy vs ab threshold", "threshold (Lab ab units)"))


def group_spreads(scores, shuffles=CHANCE_SHUFFLES, seed=0):
    """Per kind of group, the gap between the best and the worst group's mean score, and
    how large that gap is by chance alone.

    scores: {"race: Black": [per-photo PSNR dB, ...], ...}; the text before ": " is the
    kind (groups of one kind are disjoint: one race per photo). -> {"race": {"spread",
    "best", "worst", "chance_median", "chance_95", "p_value", "shuffles"}} for each kind
    with at least two groups. The chance figures are a permutation test: the kind's
    photos dealt out again at random to groups of the same sizes, shuffles times (the
    means of groups that are served equally well still differ on a finite test set;
    these say by how much). p_value: the share of shuffles with a gap at least the
    observed one, (1 + count) / (1 + shuffles) (Phipson and Smyth 2010: never 0).
    """
    kinds = {}
    for name, values in scores.items():
        if len(values):
            kind = name.partition(": ")[0] if ": " in name else "group"
            kinds.setdefault(kind, []).append((name, np.asarray(values, np.float64)))
    rng = np.random.default_rng(seed)
    out = {}
    for kind, groups in sorted(kinds.items()):
        if len(groups) < 2:
            continue
        means = {name: float(values.mean()) for name, values in groups}
        best, worst = max(means, key=means.get), min(means, key=means.get)
        spread = means[best] - means[worst]
        pooled = np.concatenate([values for _, values in groups])
        sizes = np.array([len(values) for _, values in groups])
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        chance = []  # the gap of each shuffle; dealt in chunks of ~8M values (64 MB)
        per_chunk = max(1, 8_000_000 // len(pooled))
        for done in range(0, shuffles, per_chunk):
            dealt = rng.permuted(np.broadcast_to(
                pooled, (min(per_chunk, shuffles - done), len(pooled))), axis=1)
            chance_means = np.add.reduceat(dealt, starts, axis=1) / sizes  # [n, groups]
            chance.append(chance_means.max(axis=1) - chance_means.min(axis=1))
        chance = np.concatenate(chance)
        # A shuffle that reproduces the observed grouping gives the same gap up to
        # float summation order: 1e-9 dB keeps it counted as "at least as large".
        count = int(np.sum(chance >= spread - 1e-9))
        out[kind] = {"spread": spread, "best": best, "worst": worst,
                     "chance_median": float(np.median(chance)),
                     "chance_95": float(np.percentile(chance, 95)),
                     "p_value": (1 + count) / (1 + shuffles), "shuffles": shuffles}
    return out


def _cast(m):
    """A method's mean colour cast as text ("-" in results from before it was measured)."""
    return f"{m['colour_cast']:.1f}" if "colour_cast" in m else "-"


def _p_text(p):
    """A permutation p-value as text (never 0: 1 / (1 + shuffles) at least)."""
    return f"p = {p:.3f}" if p >= 0.001 else "p < 0.001"


def groups_markdown(result):
    """The per-group table at the default temperature (empty without groups)."""
    groups = result.get("groups") or {}
    if not groups:
        return ""
    method = result_default_method(result)
    rows = [f"Per group at {method} (gray in brackets):", "",
            "| group | photos | PSNR dB | AuC rebal. | colourfulness ratio | colour cast |",
            "|---|---|---|---|---|---|"]
    for name, group in groups.items():
        m, g = group["methods"][method], group["methods"][GRAY]
        rows.append(f"| {name} | {group['images']} | {m['psnr']:.2f} ({g['psnr']:.2f}) | "
                    f"{m['auc_rebalanced']:.4f} ({g['auc_rebalanced']:.4f}) | "
                    f"{m['colourfulness_ratio']:.2f} | {_cast(m)} ({_cast(g)}) |")
    rows.append("")
    for kind, s in result.get("group_spreads", {}).items():
        rows.append(f"- {kind}: PSNR spread {s['spread']:.2f} dB (best {s['best']}, worst "
                    f"{s['worst']}); by chance alone (photos dealt to the groups at random, "
                    f"{s['shuffles']} times) median {s['chance_median']:.2f}, 95th "
                    f"percentile {s['chance_95']:.2f} dB: {_p_text(s['p_value'])}")
    return "\n".join(rows) + "\n"


def comparison_markdown(results):
    """{model name: metrics.json dict} (the same photos) -> one table: for all photos and
    each group, gray, and each model's mean chroma and default temperature: PSNR, rebalanced
    AuC, colourfulness ratio; then each model's group spreads (group_spreads)."""
    first = next(iter(results.values()))
    methods = [result_default_method(r) for r in results.values()]
    header = ["group", "photos", "gray PSNR / AuC r. / cast"]
    for name, method in zip(results, methods):
        header += [f"{name} mean chroma PSNR / AuC r.",
                   f"{name} {method} PSNR / AuC r. / col. / cast"]
    rows = [f"Models side by side ({first['images']} photos; AuC r.: rebalanced AuC; col.: "
            "colourfulness ratio to the truth; cast: colour cast, Lab ab distance of the "
            "mean chroma to the truth's; gray's is the truth's own).", "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header)]

    def cells(m, colour=False):
        text = f"{m['psnr']:.2f} / {m['auc_rebalanced']:.4f}"
        return text + (f" / {m['colourfulness_ratio']:.2f} / {_cast(m)}" if colour else "")
    for group in ["all"] + sorted(first.get("groups") or {}, key=_group_order):
        scope = [r if group == "all" else r["groups"][group] for r in results.values()]
        gray = scope[0]["methods"][GRAY]
        row = [group, str(scope[0]["images"]), f"{cells(gray)} / {_cast(gray)}"]
        for result, method in zip(scope, methods):
            row += [cells(result["methods"][MEAN]), cells(result["methods"][method], True)]
        rows.append("| " + " | ".join(row) + " |")
    spreads = [(name, kind, spread) for name, result in results.items()
               for kind, spread in result.get("group_spreads", {}).items()]
    if spreads:
        rows += ["", "PSNR spread between the best and the worst group at each model's "
                 "default temperature (by chance alone: the 95th percentile over the "
                 "photos dealt to the groups at random):", ""]
        rows += [f"- {name}, {kind}: {s['spread']:.2f} dB ({s['best']} / {s['worst']}); "
                 f"by chance {s['chance_95']:.2f} dB, {_p_text(s['p_value'])}"
                 for name, kind, s in spreads]
    return "\n".join(rows) + "\n"


def report_markdown(result):
    rows = [
        f"Evaluated {result['images']} photos ({len(result['left_out'])} left out: unreadable, "
        "or gray ground truth); "
        f"{result['num_bins']} bins in {result['color_space'].upper()}; ground-truth "
        f"colourfulness {result['ground_truth']['colourfulness']:.1f}.",
        "",
        "| method | PSNR dB | SSIM | MSE ab | AuC | AuC rebal. | colourfulness (ratio) | "
        "colour cast | KL bins |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in result["methods"].items():
        rows.append(f"| {name} | {m['psnr']:.2f} | {m['ssim']:.4f} | {m['mse_ab']:.1f} | "
                    f"{m['auc']:.4f} | {m['auc_rebalanced']:.4f} | {m['colourfulness']:.1f} "
                    f"({m['colourfulness_ratio']:.2f}) | {_cast(m)} | {m['kl_bins']:.3f} |")
    groups = groups_markdown(result)
    return "\n".join(rows) + "\n" + ("\n" + groups if groups else "")


def evaluate_hints(colorizer, paths, counts, temperature, max_pixels=image_files.DEFAULT_MAX_PIXELS,
                   batch_size=BATCH_SIZE, on_count=None):
    """Zhang et al. 2017's curve: a hints model's metrics at temperature against the
    number of hints revealed from each photo's own colours (counts, e.g. 0, 1, 2, 5,
    10, 20; the same points on every run) -> {"temperature", "images", "gray" {metric},
    "rows" [{"hints", metric, ...}]}, metrics psnr, ssim, auc_rebalanced, mse_ab."""
    keys = ("psnr", "ssim", "auc_rebalanced", "mse_ab")
    method = method_names([temperature])[2]
    rows, gray, images = [], None, 0
    for count in counts:
        totals = evaluate(colorizer, paths, [temperature], 0, max_pixels=max_pixels,
                          batch_size=batch_size, hint_count=count)
        methods, _ = totals.summary()
        rows.append({"hints": count, **{k: methods[method][k] for k in keys}})
        gray, images = {k: methods[GRAY][k] for k in keys}, totals.evaluated
        if on_count:
            on_count(rows[-1])
    return {"temperature": temperature, "images": images, "gray": gray, "rows": rows}


def hints_markdown(result):
    """The table of evaluate_hints' result."""
    lines = [f"Hints revealed from the truth ({result['images']} photos, T = "
             f"{result['temperature']:g}; gray: PSNR {result['gray']['psnr']:.2f} dB, "
             f"rebalanced AuC {result['gray']['auc_rebalanced']:.4f})", "",
             "| hints | PSNR (dB) | SSIM | AuC rebalanced | MSE ab |", "|---|---|---|---|---|"]
    for row in result["rows"]:
        lines.append(f"| {row['hints']} | {row['psnr']:.2f} | {row['ssim']:.4f} | "
                     f"{row['auc_rebalanced']:.4f} | {row['mse_ab']:.1f} |")
    return "\n".join(lines) + "\n"
