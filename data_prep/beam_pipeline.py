"""build_records on Apache Beam: the same per-photo work as the local process pool, on
any Beam runner (DirectRunner, Prism, Flink, Spark, Dataflow) chosen by its pipeline
options.

    python -m data_prep.build_records --input_dir=photos --output_dir=records \
        --runner=DirectRunner [--beam_options="--direct_num_workers=2"]

Two pipelines, as the local path has two passes:
1. plan: read and hash every input, group by content hash; the first source of each
   hash (by source id) is kept and its split follows from the hash (split_of), the
   others are duplicates, unreadable files are skipped with their reason.
2. prepare: each kept photo through prepare.prepare_chunk (decode, filters with
   reasons, Lanczos into the frame, PNG, example); examples to WriteToTFRecord with the
   local shard names (train-00000-of-00004.tfrecord; Beam writes to a temp folder and
   renames when the write is complete) and the same shard counts; the train histograms
   summed by a combiner; skips and notes as JSON lines.
The driver then fits the bins and writes bins.json and report.json exactly as the local
path does (builder.finish_build). Same input, same result: split, set of
serialized examples, bins fingerprint, skipped files and reasons
(tests/test_beam_pipeline.py). Which example lands in which shard may differ (Beam
distributes them): the report's shard digests then differ, the examples do not.
The output folder must be readable and writable by the driver and the workers (a
local or network folder; object stores are not supported yet).
"""
import glob
import hashlib
import json
import os
import shutil
import time

import numpy as np

from colorize_tf import safe_write
from colorize_tf.chroma.bins import ChromaHistogram, DEFAULT_GRIDS
from colorize_tf.data import records
from data_prep import builder
from data_prep import prepare


def _hash(source):
    """Source -> (digest, source_id, None) or (None, source_id, unreadable detail)."""
    try:
        return hashlib.sha256(source.read()).hexdigest(), source.source_id, None
    except OSError as e:
        return None, source.source_id, e.strerror or str(e)


def _plan_lines(keyed):
    """(digest, [source ids]) -> JSON lines: the first id kept, the others duplicates."""
    digest, ids = keyed
    first, *others = sorted(ids)
    yield json.dumps({"source_id": first, "digest": digest})
    for other in others:
        yield json.dumps({"source_id": other, "skip": [prepare.DUPLICATE,
                                                       f"same bytes as {first}"]})


def _prepare_lines(item, config, class_ids):
    """(Source, split) -> ("example", split, bytes) | ("meta", JSON line) |
    ("histogram", (counts, sums)): one photo through the local path's worker task."""
    source, split = item
    label = class_ids.get(source.label_text, records.NO_LABEL)
    (result,), histogram = prepare.prepare_chunk(
        ([(source, split == records.TRAIN, label)], config))
    _, example, skip, notes = result
    if example is not None:
        yield "example", split, example
        if split == records.TRAIN:
            yield "histogram", histogram
    yield "meta", json.dumps({"source_id": source.source_id, "split": split,
                              "skip": list(skip) if skip else None, "notes": notes})


def _sum_histograms(histograms):
    histograms = list(histograms)
    if not histograms:
        return None
    return (sum(h[0] for h in histograms), sum(h[1] for h in histograms))


def _read_lines(pattern):
    """The JSON lines of every file matching pattern (WriteToText's shards), in order."""
    found = []
    for path in sorted(glob.glob(pattern)):
        with open(path, encoding="utf-8") as f:
            found += [json.loads(line) for line in f if line.strip()]
    return found


def _options(runner, beam_options):
    from apache_beam.options.pipeline_options import PipelineOptions
    return PipelineOptions([f"--runner={runner}", *beam_options])


def plan_splits_beam(sources, val_fraction, runner, beam_options, work):
    """plan_splits on Beam -> ({split: [Source]}, skipped), the same as the local one."""
    import apache_beam as beam
    with beam.Pipeline(options=_options(runner, beam_options)) as pipeline:
        hashed = pipeline | "Sources" >> beam.Create(sources) | "Hash" >> beam.Map(_hash)
        (hashed | "Readable" >> beam.Filter(lambda h: h[0] is not None)
         | "ByDigest" >> beam.Map(lambda h: (h[0], h[1])) | beam.GroupByKey()
         | "Plan" >> beam.FlatMap(_plan_lines)
         | "WritePlan" >> beam.io.WriteToText(os.path.join(work, "plan")))
        (hashed | "Unreadable" >> beam.Filter(lambda h: h[0] is None)
         | "UnreadableLines" >> beam.Map(lambda h: json.dumps(
             {"source_id": h[1], "skip": [prepare.UNREADABLE, h[2]]}))
         | "WriteUnreadable" >> beam.io.WriteToText(os.path.join(work, "unreadable")))
    by_id = {s.source_id: s for s in sources}
    plan, skipped = {split: [] for split in records.SPLITS}, []
    lines = _read_lines(os.path.join(work, "plan*")) + _read_lines(
        os.path.join(work, "unreadable*"))
    for line in sorted(lines, key=lambda line: line["source_id"]):
        if line.get("skip"):
            skipped.append((line["source_id"], *line["skip"]))
        else:
            source = by_id[line["source_id"]]
            plan[builder.split_of(line["digest"], val_fraction)].append(source)
    return plan, skipped


def prepare_and_write_beam(plan, config, classes, output_dir, images_per_shard, num_shards,
                           runner, beam_options, work):
    """_prepare_and_write on Beam -> builder._Outcome of the shards it wrote."""
    import apache_beam as beam
    grid = DEFAULT_GRIDS[config.color_space]
    class_ids = {name: i for i, name in enumerate(classes)}
    counts = {split: builder._num_shards(len(plan[split]), images_per_shard,
                                         num_shards if split == records.TRAIN else 0)
              for split in records.SPLITS}
    items = [(source, split) for split in records.SPLITS for source in plan[split]]
    with beam.Pipeline(options=_options(runner, beam_options)) as pipeline:
        prepared = (pipeline | "Planned" >> beam.Create(items)
                    | "Prepare" >> beam.FlatMap(_prepare_lines, config, class_ids))
        for split in records.SPLITS:
            if not plan[split]:
                continue
            (prepared
             | f"Examples{split}" >> beam.Filter(lambda x, s=split: x[0] == "example"
                                                 and x[1] == s)
             | f"Bytes{split}" >> beam.Map(lambda x: x[2])
             | f"Write{split}" >> beam.io.WriteToTFRecord(
                 os.path.join(output_dir, split), file_name_suffix=".tfrecord",
                 num_shards=counts[split], shard_name_template="-SSSSS-of-NNNNN"))
        (prepared | "Meta" >> beam.Filter(lambda x: x[0] == "meta")
         | "MetaLines" >> beam.Map(lambda x: x[1])
         | "WriteMeta" >> beam.io.WriteToText(os.path.join(work, "meta")))
        (prepared | "Histograms" >> beam.Filter(lambda x: x[0] == "histogram")
         | "HistogramValues" >> beam.Map(lambda x: x[1])
         | "SumHistograms" >> beam.CombineGlobally(_sum_histograms)
         | "HistogramLine" >> beam.Map(lambda h: json.dumps(
             None if h is None else [np.asarray(h[0]).tolist(), np.asarray(h[1]).tolist()]))
         | "WriteHistogram" >> beam.io.WriteToText(os.path.join(work, "histogram")))
    outcome = builder._Outcome({}, {}, [], [], ChromaHistogram(grid), 0)
    for line in sorted(_read_lines(os.path.join(work, "meta*")),
                       key=lambda line: line["source_id"]):
        outcome.prepared += 1
        outcome.notes.extend((line["source_id"], note) for note in line["notes"])
        if line["skip"]:
            outcome.skipped.append((line["source_id"], *line["skip"]))
    for histogram in _read_lines(os.path.join(work, "histogram*")):
        if histogram is not None:
            outcome.histogram.counts += np.asarray(histogram[0])
            outcome.histogram.sums += np.asarray(histogram[1])
    outcome.shards = {split: _describe_shards(output_dir, split) for split in records.SPLITS}
    outcome.written = {split: sum(s["examples"] for s in outcome.shards[split])
                       for split in records.SPLITS}
    builder._remove_stale_shards(output_dir, outcome.shards)
    return outcome


def _describe_shards(output_dir, split):
    """[{"file", "examples", "bytes", "sha256"}] of a split's shards on disk (what the
    local writer records as it writes)."""
    import tensorflow as tf
    described = []
    for path in sorted(glob.glob(records.shard_pattern(output_dir, split))):
        count = sum(1 for _ in tf.data.TFRecordDataset(path))
        described.append({"file": os.path.basename(path), "examples": count,
                          "bytes": os.path.getsize(path), "sha256": records.file_sha256(path)})
    return described


def build_records_beam(sources, output_dir, config, num_bins, rebalance_lambda, val_fraction,
                       images_per_shard, num_shards, runner, beam_options=(),
                       listing_skipped=(), ignored=(), log=print, earlier_bins=None):
    """builder.build_records on a Beam runner; -> the records.Report."""
    start = time.time()
    if not sources and not listing_skipped:
        raise builder.InputError("no input photos found")
    builder._clear_earlier_build(output_dir)
    work = safe_write.temp_path(os.path.join(output_dir, "beam-work"))  # removed if killed
    os.makedirs(work)
    try:
        plan, skipped = plan_splits_beam(sources, val_fraction, runner, beam_options, work)
        classes = sorted({s.label_text for s in sources if s.label_text})
        log(f"build_records: {len(sources)} inputs, {sum(len(v) for v in plan.values())} "
            f"unique to prepare ({len(plan[records.TRAIN])} train, "
            f"{len(plan[records.VAL])} val), Beam runner {runner}")
        outcome = prepare_and_write_beam(plan, config, classes, output_dir,
                                         images_per_shard, num_shards, runner,
                                         beam_options, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    settings = builder.build_settings(config, num_bins, rebalance_lambda, val_fraction,
                                      earlier_bins, runner=runner)
    return builder.finish_build(output_dir, outcome, list(listing_skipped) + skipped,
                                ignored, classes, settings,
                                len(sources) + len(listing_skipped), start, earlier_bins)
