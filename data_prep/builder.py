"""Building records: photos -> sharded TFRecords, colour bins and report, as a library.

The steps of python -m data_prep.build_records (its entry point): list the inputs,
hash them (duplicates dropped, train/val from a stable content hash), prepare each
photo in worker processes, write the shards in order (temp name, then rename), count
the train split's chroma histogram, fit the bins and write the report. The Beam path
(beam_pipeline.py) reuses the per-photo task and the last step.
"""
import dataclasses
import hashlib
import os
import time

from colorize_tf import cli
from colorize_tf import errors
from colorize_tf import safe_write
from colorize_tf.chroma.bins import (
    BINS_NAME,
    ChromaHistogram,
    DEFAULT_GRIDS,
    DEFAULT_NUM_BINS,
    DEFAULT_REBALANCE_LAMBDA,
    fit_bins,
    recount_bins,
)
from colorize_tf.data import image_files
from colorize_tf.data import records
from data_prep import prepare
from data_prep import processes
from data_prep.prepare import Source  # noqa: F401 (the input's type, named here too)

_CHUNK = 32  # photos per worker task: small enough for smooth progress
DEFAULT_VAL_FRACTION = 0.1
DEFAULT_IMAGES_PER_SHARD = 1000  # ~100 MB shards at 256 px frames


class InputError(errors.Error):
    """The input as a whole is unusable (missing, empty): one line, exit code 2."""


def list_dir_sources(input_dir):
    """Recursive walk -> (sources sorted by id, skipped [(id, reason, detail)],
    ignored [(id, why)]): non-image files and hidden files and folders are ignored
    (and listed in the report), never read."""
    if not os.path.isdir(input_dir):
        raise InputError(f"--input_dir {input_dir!r} does not exist or is not a directory")
    sources, skipped, ignored = [], [], []
    for root, dirs, files in os.walk(input_dir):
        rel_root = os.path.relpath(root, input_dir)
        for name in sorted(dirs):
            rel = os.path.normpath(os.path.join(rel_root, name))
            if image_files.is_hidden(name):
                ignored.append((rel, "hidden folder"))
            elif image_files.has_image_extension(name):
                skipped.append((rel, prepare.UNREADABLE, "a directory named like an image"))
        dirs[:] = sorted(d for d in dirs if not image_files.is_hidden(d))
        for name in sorted(files):
            rel = os.path.normpath(os.path.join(rel_root, name))
            if image_files.is_hidden(name):
                ignored.append((rel, "hidden file"))
                continue
            if not image_files.has_image_extension(name):
                ignored.append((rel, "not an image file name"))
                continue
            parts = rel.split(os.sep)
            label = parts[0] if len(parts) > 1 else ""
            sources.append(Source(rel, os.path.join(root, name), label))
    return sources, skipped, ignored


def list_file_sources(file_list):
    """A text file with one path per line (optional ' label' after a tab)."""
    if not os.path.isfile(file_list):
        raise InputError(f"--file_list {file_list!r} does not exist")
    base = os.path.dirname(os.path.abspath(file_list))
    sources, skipped = [], []
    with open(file_list, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            path, _, label = line.partition("\t")
            full = path if os.path.isabs(path) else os.path.join(base, path)
            if os.path.isdir(full):
                skipped.append((path, prepare.UNREADABLE, "is a directory, not a file"))
            else:
                sources.append(Source(path, full, label.strip()))
    return sources, skipped, []


def cap_per_class(sources, max_per_class):
    """-> (sources with at most max_per_class of each class, evenly spread over that
    class's listing order, in the listing order; how many were left out). A balanced
    mix of domains of unequal size; 0 keeps all. Photos without a class count as one."""
    if not max_per_class:
        return list(sources), 0
    by_class = {}
    for i, source in enumerate(sources):
        by_class.setdefault(source.label_text, []).append(i)
    kept = set()
    for indices in by_class.values():
        n, k = len(indices), min(max_per_class, len(indices))
        kept.update(indices[(j * (n - 1)) // max(k - 1, 1)] for j in range(k))
    return [s for i, s in enumerate(sources) if i in kept], len(sources) - len(kept)


def list_tfds_sources(name, split, data_dir):
    """A TFDS dataset prepared on disk, read offline with the images still encoded."""
    import tensorflow_datasets as tfds  # only this input needs it
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        dataset = builder.as_dataset(split=split,
                                     decoders={"image": tfds.decode.SkipDecoding()})
    except Exception as e:  # TFDS raises several types for "not prepared"
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"TFDS dataset {name!r} split {split!r} is not readable from "
                         f"{data_dir!r} (prepare it first; nothing is downloaded): {detail}")
    features = builder.info.features
    label_feature = features["label"] if "label" in features.keys() else None
    sources = []
    for i, example in enumerate(dataset.as_numpy_iterator()):
        label = ""
        if label_feature is not None and "label" in example:
            label = label_feature.int2str(int(example["label"]))
        sources.append(Source(f"tfds:{name}/{split}/{i:08d}", label_text=label,
                              data=bytes(example["image"])))
    return sources, [], []


def split_of(digest, val_fraction):
    """Stable train/val assignment from a content hash (same file, same split)."""
    return records.VAL if int(digest[:8], 16) / 2 ** 32 < val_fraction else records.TRAIN


def plan_splits(sources, val_fraction):
    """Hashes every source -> ({split: [Source]}, skipped): drops unreadable and duplicates."""
    plan, skipped, first_by_digest = {records.TRAIN: [], records.VAL: []}, [], {}
    for source in sorted(sources, key=lambda s: s.source_id):
        try:
            digest = hashlib.sha256(source.read()).hexdigest()
        except OSError as e:
            skipped.append((source.source_id, prepare.UNREADABLE, e.strerror or str(e)))
            continue
        if digest in first_by_digest:
            skipped.append((source.source_id, prepare.DUPLICATE,
                            f"same bytes as {first_by_digest[digest]}"))
            continue
        first_by_digest[digest] = source.source_id
        plan[split_of(digest, val_fraction)].append(source)
    return plan, skipped


class _ShardWriter:
    """Writes examples to a split's shards in order; each shard is a temp file until done."""

    def __init__(self, output_dir, split, num_examples, num_shards):
        import tensorflow as tf
        self._tf = tf
        self.output_dir, self.split = output_dir, split
        self.num_examples, self.num_shards = num_examples, num_shards
        self.index, self.written, self.shards = -1, 0, []
        self._writer = None
        self._shard_count = 0

    def write(self, position, example):
        """position: index of the source in the split (sets its shard even when some skip)."""
        shard = position * self.num_shards // max(self.num_examples, 1)
        while self.index < shard:
            self._next_shard()
        self._writer.write(example)
        self._shard_count += 1
        self.written += 1

    def _next_shard(self):
        self._close_current()
        self.index += 1
        name = records.shard_name(self.split, self.index, self.num_shards)
        self._final = os.path.join(self.output_dir, name)
        self._tmp = safe_write.temp_path(self._final)
        self._writer = self._tf.io.TFRecordWriter(self._tmp)
        self._shard_count = 0

    def _close_current(self):
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        os.replace(self._tmp, self._final)
        self.shards.append({"file": os.path.basename(self._final), "examples": self._shard_count,
                            "bytes": os.path.getsize(self._final),
                            "sha256": records.file_sha256(self._final)})

    def abort(self):
        """Closes and removes the shard being written (a failed or interrupted build)."""
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:  # a full disk can fail the close too
                pass
            self._writer = None
            if os.path.exists(self._tmp):
                os.remove(self._tmp)

    def close(self):
        while self.index < self.num_shards - 1:  # every shard exists, even if empty
            self._next_shard()
        self._close_current()
        return self.shards


def _num_shards(count, images_per_shard, num_shards):
    if num_shards > 0:
        return num_shards
    return max(1, -(-count // images_per_shard))


def build_records(sources, output_dir, config, num_bins=DEFAULT_NUM_BINS,
                  rebalance_lambda=DEFAULT_REBALANCE_LAMBDA,
                  val_fraction=DEFAULT_VAL_FRACTION,
                  images_per_shard=DEFAULT_IMAGES_PER_SHARD, num_shards=0, workers=1,
                  listing_skipped=(), ignored=(), progress_every=500, log=print,
                  earlier_bins=None):
    """Writes shards, bins.json and report.json to output_dir; returns the records.Report.

    config: prepare.PrepConfig; num_shards (train; 0 = from images_per_shard), workers:
    processes (1: in-process). earlier_bins: a bins.Bins whose classes the new bins keep
    (bins.recount_bins; num_bins is then unused), or None to fit them. report.json is
    written last and removed first: it is the mark of a complete build, so a build
    killed half-way leaves no records that training would accept. When no photo is
    usable the report is still written (with the reasons), then InputError is raised.
    """
    start = time.time()
    if not sources and not listing_skipped:
        raise InputError("no input photos found")
    _clear_earlier_build(output_dir)
    # The workers start while this process hashes the inputs.
    with processes.task_runner(workers) as run:
        return _build(run, sources, output_dir, config, num_bins, rebalance_lambda,
                      val_fraction, images_per_shard, num_shards, workers,
                      listing_skipped, ignored, progress_every, log, start, earlier_bins)


def _build(run, sources, output_dir, config, num_bins, rebalance_lambda, val_fraction,
           images_per_shard, num_shards, workers, listing_skipped, ignored, progress_every,
           log, start, earlier_bins):
    """build_records' work once its workers are starting: run(fn, tasks) maps over them."""
    plan, skipped = plan_splits(sources, val_fraction)
    classes = sorted({s.label_text for s in sources if s.label_text})
    log(f"build_records: {len(sources)} inputs, {sum(len(v) for v in plan.values())} unique "
        f"to prepare ({len(plan[records.TRAIN])} train, {len(plan[records.VAL])} val), "
        f"{workers} worker(s)")
    writers = {split: _ShardWriter(output_dir, split, len(plan[split]), _num_shards(
        len(plan[split]), images_per_shard, num_shards if split == records.TRAIN else 0))
        for split in records.SPLITS}
    outcome = _prepare_and_write(plan, config, classes, writers, run, progress_every, log,
                                 start)
    settings = build_settings(config, num_bins, rebalance_lambda, val_fraction, earlier_bins,
                              workers=workers)
    return finish_build(output_dir, outcome, list(listing_skipped) + skipped, ignored,
                        classes, settings, len(sources) + len(listing_skipped), start,
                        earlier_bins)


def build_settings(config, num_bins, rebalance_lambda, val_fraction, earlier_bins=None,
                   **engine):
    """The report's settings: the per-photo config, the bins' and the split's, and
    what ran the build (workers=N, or runner=NAME on Beam). With earlier_bins,
    num_bins is theirs and bins_from their fingerprint."""
    bins_settings = {"num_bins": num_bins}
    if earlier_bins is not None:
        bins_settings = {"num_bins": earlier_bins.num_bins,
                         "bins_from": earlier_bins.fingerprint}
    return {**dataclasses.asdict(config), **bins_settings,
            "rebalance_lambda": rebalance_lambda, "val_fraction": val_fraction, **engine}


def finish_build(output_dir, outcome, skipped, ignored, classes, settings, inputs_seen,
                 start, earlier_bins=None):
    """After the shards: the bins of the train histogram (fitted, or earlier_bins
    recounted), bins.json and report.json (last: the mark of a complete build); -> the
    records.Report. skipped: those before preparing (listing, unreadable, duplicates);
    the outcome adds its own."""
    skipped = list(skipped) + outcome.skipped
    num_bins, rebalance_lambda = settings["num_bins"], settings["rebalance_lambda"]
    fitted = None
    if outcome.written[records.TRAIN] > 0 and earlier_bins is not None:
        fitted = recount_bins(outcome.histogram, earlier_bins, rebalance_lambda)
    elif outcome.written[records.TRAIN] > 0:
        fitted = fit_bins(outcome.histogram, num_bins, rebalance_lambda)
    if fitted is not None:
        fitted.save(os.path.join(output_dir, BINS_NAME))
    report = _make_report(inputs_seen, outcome, skipped, ignored, classes, settings, fitted,
                          time.time() - start)
    safe_write.write_json(os.path.join(output_dir, records.REPORT_NAME), report.to_dict())
    if fitted is None:
        raise InputError("no usable training photos: every input was skipped (reasons "
                         f"below and in {os.path.join(output_dir, records.REPORT_NAME)})\n"
                         f"{_format_skipped(skipped)}")
    return report


def _clear_earlier_build(output_dir):
    """Removes an earlier build's marks of completeness (report, bins) and the temp
    shards of killed builds, before anything is written."""
    os.makedirs(output_dir, exist_ok=True)
    for name in (records.REPORT_NAME, BINS_NAME):
        if os.path.exists(os.path.join(output_dir, name)):
            os.remove(os.path.join(output_dir, name))
    safe_write.remove_stale_temps(output_dir)


@dataclasses.dataclass
class _Outcome:
    """What preparing and writing every planned photo gave."""
    written: dict  # split -> examples written
    shards: dict  # split -> [{"file", "examples", "bytes", "sha256"}]
    skipped: list  # [(source_id, reason, detail)]
    notes: list  # [(source_id, note)]
    histogram: ChromaHistogram  # of the train split
    prepared: int  # photos handled (written or skipped)


def _prepare_and_write(plan, config, classes, writers, run, progress_every, log, start):
    """Prepares every planned photo (in chunks, over the workers of run) and writes each to its
    split's shards in plan order; -> _Outcome. A failure removes the shard being
    written; a write error (full disk) becomes InputError."""
    class_ids = {name: i for i, name in enumerate(classes)}
    grid = DEFAULT_GRIDS[config.color_space]
    tasks = []
    for split in records.SPLITS:
        # the bins are learned from the train split only
        items = [(s, split == records.TRAIN, class_ids.get(s.label_text, records.NO_LABEL))
                 for s in plan[split]]
        tasks += [(items[i:i + _CHUNK], config) for i in range(0, len(items), _CHUNK)]
    positions = {s.source_id: (split, i) for split in records.SPLITS
                 for i, s in enumerate(plan[split])}
    total = len(positions)
    outcome = _Outcome({}, {}, [], [], ChromaHistogram(grid), 0)
    last_report = 0
    try:
        for results, (counts, sums) in run(prepare.prepare_chunk, tasks):
            for result in results:
                _add_result(outcome, result, writers, positions)
            outcome.histogram.counts += counts
            outcome.histogram.sums += sums
            if outcome.prepared - last_report >= progress_every or \
                    outcome.prepared == total:
                last_report = outcome.prepared
                rate = outcome.prepared / max(time.time() - start, 1e-9)
                log(f"  {outcome.prepared}/{total} photos, {rate:.0f} photos/s, "
                    f"{len(outcome.skipped)} skipped")
        outcome.shards = {split: writers[split].close() for split in records.SPLITS}
    except BaseException as e:
        for writer in writers.values():
            writer.abort()
        if isinstance(e, OSError):
            raise InputError(f"cannot write to {writers[records.TRAIN].output_dir!r}: "
                             f"{e.strerror or e} (the shards written so far are not "
                             "usable; nothing else changed)")
        raise
    _remove_stale_shards(writers[records.TRAIN].output_dir, outcome.shards)
    outcome.written = {split: writers[split].written for split in records.SPLITS}
    return outcome


def _add_result(outcome, result, writers, positions):
    """One worker result -> its example in its shard, or the skipped list; its notes."""
    source, example, skip, source_notes = result
    outcome.notes.extend((source.source_id, note) for note in source_notes)
    split, position = positions[source.source_id]
    if example is None:
        outcome.skipped.append((source.source_id, *skip))
    else:
        writers[split].write(position, example)
    outcome.prepared += 1


def _make_report(inputs_seen, outcome, skipped, ignored, classes, settings, fitted,
                 elapsed):
    """-> records.Report of a build (names shown with U+FFFD where not UTF-8)."""
    return records.Report(
        inputs_seen=inputs_seen,
        written=outcome.written,
        skipped_count={r: sum(1 for s in skipped if s[1] == r) for r in prepare.SKIP_REASONS},
        skipped=[{"source": cli.display_path(s), "reason": r, "detail": d}
                 for s, r, d in sorted(skipped)],
        notes=[{"source": cli.display_path(s), "note": n} for s, n in sorted(outcome.notes)],
        ignored=[{"source": cli.display_path(s), "why": why} for s, why in ignored],
        classes=[cli.display_path(c) for c in classes],
        shards=outcome.shards,
        settings=settings,
        bins=None if fitted is None else {
            "file": BINS_NAME, "fingerprint": fitted.fingerprint,
            "num_bins": fitted.num_bins,
            "table": [{"bin": b, "centre": list(c), "prior": float(p), "weight": float(w)}
                      for b, (c, p, w) in enumerate(zip(fitted.centres, fitted.prior,
                                                        fitted.weights))]},
        elapsed_seconds=round(elapsed, 2),
        photos_per_second=round(outcome.prepared / max(elapsed, 1e-9), 1))


def _remove_stale_shards(output_dir, shards):
    keep = {s["file"] for split in shards.values() for s in split}
    for name in os.listdir(output_dir):
        if name.endswith(".tfrecord") and name not in keep:
            os.remove(os.path.join(output_dir, name))


def _format_skipped(skipped, limit=20):
    lines = [f"    {cli.display_path(s)}: {r} ({d})" for s, r, d in sorted(skipped)[:limit]]
    if len(skipped) > limit:
        lines.append(f"    ... and {len(skipped) - limit} more (see report.json)")
    return "\n".join(lines)


def summary(report, output_dir):
    """The short human summary printed at the end."""
    counts = ", ".join(f"{r} {n}" for r, n in report.skipped_count.items() if n)
    lines = [
        f"wrote {report.written[records.TRAIN]} train + {report.written[records.VAL]} "
        f"val photos "
        f"in {report.elapsed_seconds} s ({report.photos_per_second} photos/s)",
        f"skipped {len(report.skipped)}" + (f": {counts}" if counts else ""),
    ]
    if report.skipped:
        lines.append(_format_skipped([(s["source"], s["reason"], s["detail"])
                                      for s in report.skipped]))
    if report.notes:
        lines.append(f"written with notes {len(report.notes)}:")
        lines += [f"    {n['source']}: {n['note']}" for n in report.notes[:20]]
    lines += [
        f"bins: {report.bins['num_bins']} bins, fingerprint {report.bins_fingerprint}",
        f"records: {os.path.abspath(output_dir)}",
        f"report:  {os.path.abspath(os.path.join(output_dir, records.REPORT_NAME))}",
    ]
    return "\n".join(lines)
