"""Evaluating a colorizer against colour ground truths, the way the colorization
literature does, fast: photos of one size go through the model in a batch, the model
runs once per photo, every temperature is decoded from the same probabilities, and
every metric of a batch is one compiled graph call.

Per method (gray, the training set's mean chroma, and the annealed mean at each
temperature): PSNR and SSIM on RGB, MSE on Lab ab, the cumulative ab-error curve over
0-150 (Zhang et al. 2016) raw and class-rebalanced (classes: Lab ab cells of side 10,
the true colour's), colourfulness (Hasler and Suesstrunk 2003) against the truth's,
and the histogram of predicted vs true bins with its KL divergence (ColorUNet
figure 9). modeling/metrics.py holds the per-image definitions these batched graphs follow
(tests/test_evaluation.py checks one against the other).
"""
import dataclasses
import math

import numpy as np
import tensorflow as tf

from colorize_tf import cli
from colorize_tf.chroma.bins import DEFAULT_GRIDS, cell_index, encode_hard
from colorize_tf.chroma import color
from colorize_tf.chroma import decoding
from colorize_tf.data import image_files
from colorize_tf.evaluation import photos
from colorize_tf.evaluation import recognition
from colorize_tf.modeling import metrics
from colorize_tf.serving import graph


GRAY = "gray"
MEAN = "mean chroma"
DEFAULT_TEMPERATURES = (0.2, 0.38, 0.6, 1.0)
LAB_CLASSES = DEFAULT_GRIDS[color.LAB]
SSIM_WINDOW = 11  # tf.image.ssim's default Gaussian window (sigma 1.5)
_NUM_THRESHOLDS = len(metrics.AUC_THRESHOLDS)


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


@dataclasses.dataclass
class MethodTotals:
    """Sums over the photos seen of one method's scores."""
    num_bins: int
    per_image: dict = dataclasses.field(default_factory=lambda: {
        "psnr": [], "ssim": [], "mse_ab": [], "colourfulness": [], "colour_cast": []})
    curve: metrics.ErrorCurve = dataclasses.field(
        default_factory=lambda: metrics.ErrorCurve(LAB_CLASSES.num_cells))
    bin_counts: np.ndarray = None
    # With a recognition judge (evaluation/recognition.py): per photo, whether the
    # judge's top-1 on this method's photo is its top-1 on the truth, and its features.
    recognised: list = dataclasses.field(default_factory=list)
    judge_features: list = dataclasses.field(default_factory=list)

    def __post_init__(self):
        if self.bin_counts is None:
            self.bin_counts = np.zeros(self.num_bins)

    def add(self, scores):
        """scores: the dict of BatchScorer for this method (numpy), with "recognised"
        [B] and "judge_features" [B, D] when a judge saw the photos."""
        for name, values in self.per_image.items():
            values.extend(float(v) for v in scores[name])
        self.curve.add_histogram(scores["error_histogram"].reshape(
            LAB_CLASSES.num_cells, _NUM_THRESHOLDS + 1))
        self.bin_counts += scores["bin_counts"]
        if "recognised" in scores:
            self.recognised.extend(bool(v) for v in scores["recognised"])
            self.judge_features.append(np.asarray(scores["judge_features"], np.float32))

    def summary(self, truth_colourfulness, truth_bins, truth_features=None):
        """truth_features [N, D]: the judge's features of the truths (None: no FD)."""
        out = {k: float(np.mean(v)) for k, v in self.per_image.items()}
        out["auc"] = self.curve.auc()
        out["auc_rebalanced"] = self.curve.rebalanced_auc()
        out["colourfulness_ratio"] = out["colourfulness"] / max(truth_colourfulness, 1e-9)
        out["kl_bins"] = metrics.kl_divergence(truth_bins, self.bin_counts)
        if self.recognised:
            out["recognition"] = float(np.mean(self.recognised))
            features = np.concatenate(self.judge_features)
            if truth_features is not None and len(features) >= 2:  # a covariance: 2+
                out["fd"] = recognition.frechet_distance(features, truth_features)
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

    def __init__(self, colorizer, temperatures, xla_batch=photos.BATCH_SIZE):
        self.colorizer = colorizer
        self.bins = colorizer.bins
        self.space = colorizer.color_space
        self._upsampling = colorizer.export_info.upsampling
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
        return {"ab": ab, "class": cell_index(ab, LAB_CLASSES),
                "colourfulness": colourfulness(truth),
                "bin_counts": _bin_counts(chroma[None], self.bins)[0]}

    def _methods_graph(self, luma, probabilities):
        chroma_shape = tf.concat([tf.shape(luma)[:3], [2]], 0)
        results = {
            GRAY: color.luma_chroma_to_rgb_uint8(luma, tf.zeros(chroma_shape), self.space),
            MEAN: color.luma_chroma_to_rgb_uint8(
                luma, tf.broadcast_to(self._mean_chroma, chroma_shape), self.space)}
        decoder = self.colorizer.decoder
        to_work_grid = self.colorizer.to_work_grid  # decoded on the logits' grid, as served
        for t, name in zip(self.temperatures, self.names[2:]):
            results[name] = graph.render_rgb(
                luma, to_work_grid(decoder.chroma(probabilities, t), luma), self.space,
                self._upsampling)
        # The top-1 probability is the same at every temperature: rendered once.
        confidence = graph.render_confidence(
            luma, to_work_grid(decoder.confidence(probabilities)[..., None], luma)[..., 0])
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
    return _grouped_count(encode_hard(chroma + nudge, bins), bins.num_bins)


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
    truth_features: list = dataclasses.field(default_factory=list)  # judge's, [B, D] each
    # The photo of each per-image score, in the order the scores were added (batches
    # come in shape order, not path order): what pairs two evaluations photo by photo.
    files: list = dataclasses.field(default_factory=list)

    @classmethod
    def empty(cls, names, num_bins):
        return cls({n: MethodTotals(num_bins) for n in names}, np.zeros(num_bins), [], [])

    def add(self, truth_stats, scores, files):
        """truth_stats: BatchScorer's, with "judge_features" [B, D] when judged; files:
        the batch's photos (display paths), in the batch's order."""
        self.files.extend(files)
        self.truth_bins += truth_stats["bin_counts"]
        self.truth_colourfulness.extend(float(c) for c in truth_stats["colourfulness"])
        if "judge_features" in truth_stats:
            self.truth_features.append(np.asarray(truth_stats["judge_features"], np.float32))
        for name, method_scores in scores.items():
            self.methods[name].add(method_scores)
        self.evaluated += len(truth_stats["colourfulness"])

    def summary(self, frechet=True):
        """-> ({method: metrics}, ground-truth colourfulness). Judged: each method's
        "recognition", "recognition_gap_closed" (the share of gray's gap to the truth
        that it closes; recognition.gap_closed) and, frechet, "fd" (two 1,280 x 1,280
        eigendecompositions a method: the per-group summaries leave it out)."""
        truth_c = float(np.mean(self.truth_colourfulness))
        truth_features = (np.concatenate(self.truth_features)
                          if self.truth_features and frechet else None)
        methods = {n: m.summary(truth_c, self.truth_bins, truth_features)
                   for n, m in self.methods.items()}
        gray = methods.get(GRAY, {}).get("recognition")
        if gray is not None:
            for m in methods.values():
                m["recognition_gap_closed"] = recognition.gap_closed(m["recognition"], gray)
        return methods, truth_c

    def per_photo_rows(self):
        """-> [{"file", "method", "psnr", "ssim", "mse_ab", "colourfulness",
        "colour_cast"[, "recognised" 0/1]}]: one row per photo and method, the scores
        the summary's means are taken over (rebalanced AuC is pooled over every pixel
        of every photo, so it has no per-photo value)."""
        rows = []
        for name, m in self.methods.items():
            for i, file in enumerate(self.files):
                row = {"file": file, "method": name,
                       **{k: values[i] for k, values in m.per_image.items()}}
                if m.recognised:
                    row["recognised"] = int(m.recognised[i])
                rows.append(row)
        return rows


def judge_batch(judge, truth, results, truth_stats, scores):
    """Adds the recognition judge's view of one batch (recognition.Judge; truth RGB
    uint8 [B, H, W, 3], results {method: RGB uint8 [B, H, W, 3]}) to BatchScorer's
    truth_stats ("judge_features") and scores (each method's "recognised" [B] bool:
    its top-1 is the truth's, and "judge_features" [B, D]), in place."""
    truth_top1, truth_stats["judge_features"] = judge(truth)
    for name, rgb in results.items():
        top1, scores[name]["judge_features"] = judge(rgb)
        scores[name]["recognised"] = top1 == truth_top1


def evaluate(colorizer, paths, temperatures, num_figures=6, gray_threshold=color.GRAY_SPREAD,
             max_pixels=image_files.DEFAULT_MAX_PIXELS, batch_size=photos.BATCH_SIZE,
             on_photos=None, on_figure=None, groups=None, hint_count=None, judge=None):
    """Evaluates colorizer on the colour photos at paths; -> Totals.

    hint_count (a hints model): each photo colorized with that many hints revealed
    from its own colours (Colorizer.probabilities), the same points on every run.
    groups: {path: (group name, ...)}: a photo also counts in the Totals of each of its
    groups (totals.groups; e.g. its domain, its subject's age group). on_photos(count):
    progress, photos handled so far. on_figure(index, path, results, confidence, truth):
    for the first num_figures photos in path order (results {method: RGB uint8
    [H, W, 3]}, confidence [H, W], truth RGB uint8). judge (recognition.Judge or None):
    every method's photos and the truths are also classified (judge_batch).
    """
    scorer = BatchScorer(colorizer, temperatures, xla_batch=batch_size)
    totals = Totals.empty(scorer.names, colorizer.bins.num_bins)
    groups = groups or {}
    index = {path: i for i, path in enumerate(paths)}

    def readable():  # the photos that can serve as ground truths; the others noted
        for path, truth in photos.read_ground_truths(paths, max_pixels, gray_threshold):
            if isinstance(truth, photos.LeftOut):
                totals.left_out.append({"file": cli.display_path(path), "reason": str(truth)})
            else:
                yield path, truth
    # A batch holds photos of the same groups, so that its summed scores (error
    # histograms, bin counts) can go to each of them.
    for batch in photos.shape_batches(readable(), batch_size, kind_of=lambda p: groups.get(p, ())):
        truth = np.stack([image for _, image in batch])
        results, confidence, truth_stats, scores = scorer(
            truth, hint_count, [index[path] for path, _ in batch])
        if judge is not None:
            judge_batch(judge, truth, results, truth_stats, scores)
        files = [cli.display_path(path) for path, _ in batch]
        totals.add(truth_stats, scores, files)
        for name in groups.get(batch[0][0], ()):
            totals.groups.setdefault(name, Totals.empty(scorer.names, colorizer.bins.num_bins)
                                     ).add(truth_stats, scores, files)
        for j, (path, _) in enumerate(batch):
            if on_figure and index[path] < num_figures:
                on_figure(index[path], path, {k: v[j] for k, v in results.items()},
                          confidence[j], truth[j])
        if on_photos:
            on_photos(totals.evaluated + len(totals.left_out))
    if on_photos:
        on_photos(len(paths))
    return totals


def evaluate_hints(colorizer, paths, counts, temperature, max_pixels=image_files.DEFAULT_MAX_PIXELS,
                   batch_size=photos.BATCH_SIZE, on_count=None):
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
