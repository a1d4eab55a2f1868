"""Data prep: geometry, the bad-input corpus, idempotence, killed runs, TFDS input."""
import glob
import json
import os
import signal
import struct
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from colorize_tf.chroma.bins import BINS_NAME, Bins
from colorize_tf.data import records
from data_prep import builder
from data_prep import prepare
from data_prep import processes
from tests.conftest import make_photo, with_exif_orientation, write_png

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("shape,frame,expected", [
    ((3000, 2000), 256, (256, 171)),   # portrait
    ((2000, 3000), 256, (171, 256)),   # landscape
    ((512, 512), 256, (256, 256)),     # square
    ((100, 60), 256, (100, 60)),       # smaller: never enlarged
])
def test_fitted_size(shape, frame, expected):
    assert prepare.fitted_size(*shape, frame) == expected


def test_fit_into_frame_places_top_left_with_box():
    image = make_photo(300, 150)
    frame, box = prepare.fit_into_frame(image, 64)
    assert frame.shape == (64, 64, 3) and box == (0, 0, 64, 32)
    assert frame[:, 32:].max() == 0
    # Antialiased: shrinking a fine checkerboard gives flat gray, not aliasing.
    checker = (np.indices((256, 256)).sum(0) % 2 * 255).astype(np.uint8)
    small, _ = prepare.fit_into_frame(np.repeat(checker[..., None], 3, 2), 64)
    assert abs(float(small.mean()) - 127.5) < 2 and small.std() < 3


def _jpeg(rgb, quality=90):
    ok, data = cv2.imencode(".jpg", rgb[..., ::-1].copy(), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def _make_bad_corpus(root):
    from PIL import Image
    photos = os.path.join(root, "photos")
    os.makedirs(photos)

    def put(name, data):
        path = os.path.join(photos, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    good = make_photo(60, 80, seed=1)
    put("good.png", cv2.imencode(".png", good[..., ::-1].copy())[1].tobytes())
    put("zero.jpg", b"")
    put("text.jpg", b"this is not an image\n" * 10)
    put("truncated.jpg", _jpeg(make_photo(200, 200, seed=2))[:1500])
    gif = make_photo(50, 50, seed=3)
    with open(os.path.join(photos, "gif_named.jpg"), "wb") as f:
        Image.fromarray(gif).save(f, format="GIF")
    put("png_named.jpg", cv2.imencode(".png", make_photo(50, 50, seed=4)[..., ::-1].copy())[1]
        .tobytes())
    rgba = np.concatenate([make_photo(50, 50, seed=5)[..., ::-1],
                           np.full((50, 50, 1), 128, np.uint8)], axis=2)
    put("rgba.png", cv2.imencode(".png", rgba)[1].tobytes())
    deep = (make_photo(50, 50, seed=6).astype(np.uint16) * 257)[..., ::-1].copy()
    put("sixteen.png", cv2.imencode(".png", deep)[1].tobytes())
    put("single.png", cv2.imencode(".png", make_photo(50, 50, seed=7)[..., 0])[1].tobytes())
    put("tiny.png", cv2.imencode(".png", make_photo(1, 1, seed=8))[1].tobytes())
    put("huge.jpg", _jpeg(make_photo(4000, 6000, seed=9), quality=50))
    cmyk = Image.fromarray(make_photo(50, 50, seed=10)).convert("CMYK")
    with open(os.path.join(photos, "cmyk.jpg"), "wb") as f:
        cmyk.save(f, format="JPEG")
    # EXIF orientation 6 (rotate 90 clockwise): stored 40 x 80 (h x w), shown 80 x 40.
    put("rotated.jpg", with_exif_orientation(_jpeg(make_photo(40, 80, seed=11)), 6))
    put("dup_a.jpg", _jpeg(make_photo(50, 50, seed=12)))
    put("dup_b.jpg", _jpeg(make_photo(50, 50, seed=12)))
    gray = np.repeat(make_photo(50, 50, seed=13)[..., :1], 3, axis=2)
    put("gray.png", cv2.imencode(".png", gray)[1].tobytes())
    locked = put("locked.jpg", _jpeg(make_photo(50, 50, seed=14)))
    os.chmod(locked, 0)
    os.makedirs(os.path.join(photos, "folder.jpg"))
    put("notes.txt", b"not a photo")
    return photos


def _run(photos, out, workers=1, **kwargs):
    sources, skipped, ignored = builder.list_dir_sources(photos)
    return builder.build_records(
        sources, out, prepare.PrepConfig(frame_size=256, min_size=8), num_bins=8,
        val_fraction=0.0, workers=workers, listing_skipped=skipped, ignored=ignored,
        log=lambda *_: None, **kwargs)


def test_bad_input_corpus_every_file_reported(tmp_path):
    photos = _make_bad_corpus(str(tmp_path))
    out = str(tmp_path / "out")
    report = _run(photos, out)
    reasons = {s["source"]: s["reason"] for s in report.skipped}
    expected = {
        "zero.jpg": "not_an_image", "text.jpg": "not_an_image",
        "truncated.jpg": "truncated", "tiny.png": "too_small", "dup_b.jpg": "duplicate",
        "gray.png": "grayscale", "single.png": "grayscale", "folder.jpg": "unreadable",
    }
    if os.geteuid() != 0:  # root reads files whatever their permissions
        expected["locked.jpg"] = "unreadable"
    for name, reason in expected.items():
        assert reasons.get(name) == reason, (name, reasons.get(name))
    written = {e[records.SOURCE_ID].decode(): e for path in
               glob.glob(os.path.join(out, "train-*.tfrecord"))
               for e in records.read_examples(path)}
    for name in ["good.png", "gif_named.jpg", "png_named.jpg", "rgba.png", "sixteen.png",
                 "huge.jpg", "cmyk.jpg", "rotated.jpg", "dup_a.jpg"]:
        assert name in written, name
    assert len(written) + len(report.skipped) == report.inputs_seen
    notes = {(n["source"], n["note"]) for n in report.notes}
    assert ("gif_named.jpg", "GIF data in a .jpg file") in notes
    assert ("png_named.jpg", "PNG data in a .jpg file") in notes
    assert any(s == "rgba.png" and "composited over white" in n for s, n in notes)
    assert any(s == "sixteen.png" and "uint16" in n for s, n in notes)
    assert {"source": "notes.txt", "why": "not an image file name"} in report.ignored
    rotated = written["rotated.jpg"]
    assert (rotated[records.ORIGINAL_HEIGHT], rotated[records.ORIGINAL_WIDTH]) == (80, 40)
    huge = written["huge.jpg"]
    assert list(huge[records.MASK_BOX]) == [0, 0, 171, 256]
    # 16-bit input scaled to 8 bits keeps its colours.
    frame = cv2.imdecode(np.frombuffer(written["sixteen.png"][records.ENCODED], np.uint8),
                         cv2.IMREAD_COLOR)[..., ::-1]
    np.testing.assert_allclose(frame[:50, :50], make_photo(50, 50, seed=6), atol=1)
    bins = Bins.load(out)
    assert bins.fingerprint == report.bins["fingerprint"]


def test_rerun_is_idempotent_and_parallel_matches(tmp_path):
    photos = str(tmp_path / "photos")
    for i in range(12):
        write_png(os.path.join(photos, f"c{i % 3}", f"{i}.png"), make_photo(30, 40, seed=i))
    first = _run(photos, str(tmp_path / "a"), images_per_shard=4)
    again = _run(photos, str(tmp_path / "a"), images_per_shard=4)
    parallel = _run(photos, str(tmp_path / "b"), workers=2, images_per_shard=4)
    for other in (again, parallel):
        assert other.shards == first.shards
        assert other.bins == first.bins
    assert first.written["train"] == 12
    assert [s["file"] for s in first.shards["train"]] == [
        records.shard_name("train", i, 3) for i in range(3)]


def test_split_is_stable_and_by_content():
    digest = "0" * 8 + "f" * 56
    assert builder.split_of(digest, 0.1) == "val"
    assert builder.split_of("f" * 64, 0.1) == "train"


def test_killed_run_leaves_no_partial_shard(tmp_path, monkeypatch):
    photos = str(tmp_path / "photos")
    for i in range(40):  # two worker tasks of 32 photos
        write_png(os.path.join(photos, f"{i:02d}.png"), make_photo(30, 40, seed=i))
    out = str(tmp_path / "out")
    calls = {"n": 0}
    real = prepare.prepare_image

    def dying(data, config, name=""):
        calls["n"] += 1
        if calls["n"] == 35:
            raise KeyboardInterrupt  # the process is stopped mid-shard
        return real(data, config, name)

    monkeypatch.setattr(prepare, "prepare_image", dying)
    with pytest.raises(KeyboardInterrupt):
        _run(photos, out, images_per_shard=8)
    # Photos 0-31 were written: shards 0-2 are closed and complete, shard 3 was still
    # open: its temp file is removed, and there is no report (the build is incomplete).
    finished = sorted(glob.glob(os.path.join(out, "*.tfrecord")))
    assert [os.path.basename(p) for p in finished] == [
        records.shard_name("train", i, 5) for i in range(3)]
    assert all(len(records.read_examples(p)) == 8 for p in finished)
    assert not [n for n in os.listdir(out) if ".tmp-" in n]
    assert not os.path.exists(os.path.join(out, records.REPORT_NAME))
    # A process killed outright (no cleanup) leaves a temp file: the next run removes it.
    open(os.path.join(out, ".train-00003-of-00005.tfrecord.tmp-999999999.tfrecord"), "wb").close()
    monkeypatch.setattr(prepare, "prepare_image", real)
    report = _run(photos, out, images_per_shard=8)
    assert report.written["train"] == 40
    assert not [n for n in os.listdir(out) if ".tmp-" in n]


def _cli(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "data_prep.build_records", *args],
                          cwd=REPO, capture_output=True, text=True, env=env, timeout=300)


def test_cli_missing_and_empty_input_exit_2(tmp_path):
    missing = _cli(f"--input_dir={tmp_path}/nope", f"--output_dir={tmp_path}/out")
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
    assert len([l for l in missing.stderr.splitlines() if "build_records: error" in l]) == 1
    os.makedirs(tmp_path / "empty")
    empty = _cli(f"--input_dir={tmp_path}/empty", f"--output_dir={tmp_path}/out")
    assert empty.returncode == 2 and "no image files found" in empty.stderr


def test_cli_file_list_prints_summary(tmp_path):
    photo = write_png(str(tmp_path / "a.png"), make_photo(40, 40, seed=1))
    write_png(str(tmp_path / "b.png"), make_photo(40, 40, seed=2))
    (tmp_path / "list.txt").write_text(f"{photo}\tsea\nb.png\tforest\n")
    result = _cli(f"--file_list={tmp_path}/list.txt", f"--output_dir={tmp_path}/out",
                  "--frame_size=32", "--val_fraction=0", "--workers=1")
    assert result.returncode == 0, result.stderr
    assert "wrote 2 train + 0 val" in result.stdout
    assert f"report:  {tmp_path}/out/report.json" in result.stdout
    report = json.load(open(tmp_path / "out" / "report.json"))
    assert report["classes"] == ["forest", "sea"]


def test_tfds_dataset_read_offline(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    import tensorflow as tf
    images = np.stack([make_photo(32, 32, seed=i) for i in range(4)])
    features = tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(32, 32, 3)),
        "label": tfds.features.ClassLabel(names=["sea", "forest"])})
    data_dir = str(tmp_path / "tfds")
    tfds.dataset_builders.store_as_tfds_dataset(
        name="tiny_photos", version="1.0.0", features=features,
        split_datasets={"train": tf.data.Dataset.from_tensor_slices(
            {"image": images, "label": np.array([0, 1, 0, 1])})},
        data_dir=data_dir)
    sources, _, _ = builder.list_tfds_sources("tiny_photos", "train", data_dir)
    assert len(sources) == 4 and {s.label_text for s in sources} == {"sea", "forest"}
    report = builder.build_records(sources, str(tmp_path / "out"),
                                   prepare.PrepConfig(frame_size=32, min_size=8),
                                   val_fraction=0.0, log=lambda *_: None)
    assert report.written["train"] == 4
    with pytest.raises(builder.InputError, match="not readable"):
        builder.list_tfds_sources("not_there", "train", data_dir)


def test_weather_mixed_oddities_reported(shared_data, tmp_path):
    photos = os.path.join(shared_data, "weather_mixed")
    report = _run(photos, str(tmp_path / "out"), workers=1)
    notes = {(n["source"], n["note"]) for n in report.notes}
    assert ("rain141.jpg", "GIF data in a .jpg file") in notes
    assert ("shine131.jpg", "GIF data in a .jpg file") in notes
    assert any(s == "shine127.jpg" and "alpha" in n for s, n in notes)
    duplicates = {s["source"] for s in report.skipped if s["reason"] == "duplicate"}
    assert duplicates & {"rain26.jpg", "rain136.jpg"}


@pytest.mark.parametrize("workers", [1, 2])  # 2: the names cross the process boundary
def test_awkward_names_bombs_trailers_hidden(tmp_path, workers):
    photos = tmp_path / "photos"
    photos.mkdir()
    good = _jpeg(make_photo(40, 60, seed=1))
    # A file name that is not valid UTF-8 (bytes from a Latin-1 system).
    with open(os.path.join(os.fsencode(str(photos)), b"caf\xe9.jpg"), "wb") as f:
        f.write(good)
    # Data after the end-of-image marker, as phones write (a valid photo).
    (photos / "phone.jpg").write_bytes(_jpeg(make_photo(40, 60, seed=2)) + b"\x00" * 3000 +
                                       b"SEFT trailer" * 100)
    # A 74-byte PNG whose header claims 100000 x 100000 pixels.
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(
        ">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    (photos / "bomb.png").write_bytes(header + b"\x00" * 40)
    (photos / ".hidden.jpg").write_bytes(good)
    out = str(tmp_path / "out")
    report = _run(str(photos), out, workers=workers)
    reasons = {s["source"]: s for s in report.skipped}
    assert reasons["bomb.png"]["reason"] == "too_large"
    assert "100000x100000" in reasons["bomb.png"]["detail"]
    assert "phone.jpg" not in reasons and "caf\ufffd.jpg" not in reasons
    assert report.written["train"] == 2
    assert {"source": ".hidden.jpg", "why": "hidden file"} in report.ignored
    ids = sorted(e[records.SOURCE_ID] for path in glob.glob(os.path.join(out, "train-*"))
                 for e in records.read_examples(path))
    assert ids == [b"caf\xe9.jpg", b"phone.jpg"]  # the exact bytes of the name


def test_cli_checks_flags_before_any_work(tmp_path):
    photos = str(tmp_path / "photos")
    write_png(os.path.join(photos, "a.png"), make_photo(40, 40))
    (tmp_path / "file").write_text("x")
    for flag, message in [("--frame_size=0", "--frame_size must be >= 8"),
                          ("--images_per_shard=0", "--images_per_shard must be >= 1"),
                          ("--rebalance_lambda=2", "--rebalance_lambda must be in [0, 1]"),
                          (f"--output_dir={tmp_path}/file", "is a file, not a folder"),
                          ("--beam_options=--x=1", "--beam_options needs --runner")]:
        result = _cli(f"--input_dir={photos}", f"--output_dir={tmp_path}/out", flag)
        assert result.returncode == 2, (flag, result.stderr[-500:])
        assert message in result.stderr and "Traceback" not in result.stderr, flag
        assert not os.path.exists(tmp_path / "out" / "report.json")


def test_all_skipped_still_reports_and_rerun_removes_stale_report(tmp_path):
    photos = str(tmp_path / "photos")
    write_png(os.path.join(photos, "gray.png"), np.full((40, 40, 3), 128, np.uint8))
    out = str(tmp_path / "out")
    os.makedirs(out)
    with open(os.path.join(out, records.REPORT_NAME), "w") as f:
        f.write('{"stale": true}')
    with pytest.raises(builder.InputError, match="every input was skipped"):
        _run(photos, out)
    report = json.load(open(os.path.join(out, records.REPORT_NAME)))
    assert report["written"] == {"train": 0, "val": 0} and report["bins"] is None
    assert report["skipped"][0]["reason"] == "grayscale"


def test_bins_count_exactly_the_valid_pixels_of_the_train_split(tmp_path):
    # Non-square photos leave zero padding in the frame (outside the mask), and some
    # photos go to val: neither may be counted in the bins (their counts sum to the
    # number of valid train pixels, from the examples' boxes).
    photos = str(tmp_path / "photos")
    for i in range(10):
        write_png(os.path.join(photos, f"{i}.png"), make_photo(40 + 8 * (i % 3), 64, seed=i))
    out = str(tmp_path / "out")
    report = builder.build_records(
        builder.list_dir_sources(photos)[0], out,
        prepare.PrepConfig(frame_size=32, min_size=8), num_bins=0, val_fraction=0.4,
        log=lambda *_: None)
    assert report.written["val"] > 0 and report.written["train"] > 0
    area = 0
    for path in glob.glob(os.path.join(out, "train-*.tfrecord")):
        for example in records.read_examples(path):
            top, left, bottom, right = example[records.MASK_BOX]
            assert (bottom - top) * (right - left) < 32 * 32  # padding exists
            area += (bottom - top) * (right - left)
    assert sum(Bins.load(out).counts) == area


def test_bins_from_an_earlier_build_keep_its_classes(tmp_path):
    # Records of other photos with --bins_from keep the earlier bins' cells, centres
    # and lookup (a model trained on them can be warm-started), recounted: the new
    # counts sum to the new train pixels.
    first, second = str(tmp_path / "first"), str(tmp_path / "second")
    write_png(os.path.join(first, "a.png"), make_photo(40, 40, seed=1))
    for i in range(3):
        write_png(os.path.join(second, f"{i}.png"), make_photo(40, 40, seed=10 + i))
    _cli(f"--input_dir={first}", f"--output_dir={tmp_path}/r1", "--frame_size=32",
         "--val_fraction=0", "--workers=1", "--num_bins=0")
    earlier = Bins.load(str(tmp_path / "r1"))
    for flags, message in [(["--num_bins=4"], "give --num_bins or --bins_from, not both"),
                           (["--color_space=lab"], "holds yuv bins; --color_space is lab")]:
        refused = _cli(f"--input_dir={second}", f"--output_dir={tmp_path}/r2",
                       f"--bins_from={tmp_path}/r1", *flags)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr
    result = _cli(f"--input_dir={second}", f"--output_dir={tmp_path}/r2", "--frame_size=32",
                  "--val_fraction=0", "--workers=1", f"--bins_from={tmp_path}/r1")
    assert result.returncode == 0, result.stderr
    recounted = Bins.load(str(tmp_path / "r2"))
    assert (recounted.kept_cells, recounted.centres, recounted.cell_to_bin) == (
        earlier.kept_cells, earlier.centres, earlier.cell_to_bin)
    assert sum(recounted.counts) == 3 * 32 * 32 != sum(earlier.counts)
    settings = json.load(open(tmp_path / "r2" / "report.json"))["settings"]
    assert settings["bins_from"] == earlier.fingerprint
    assert settings["num_bins"] == earlier.num_bins


def test_bins_from_a_model_folder_or_name_reads_its_latest_version(tmp_path):
    # A model's folder holds versions (1/, 2/, ...): --bins_from takes the bins of the
    # highest, as colorize and warm starts do; a shipped model's name, its folder's.
    from data_prep import build_records
    kept = {}
    for version, seed in [(1, 1), (2, 5)]:
        photos = str(tmp_path / f"photos{version}")
        write_png(os.path.join(photos, "a.png"), make_photo(40, 40, seed=seed))
        out = str(tmp_path / f"r{version}")
        builder.build_records(builder.list_dir_sources(photos)[0], out,
                              prepare.PrepConfig(frame_size=32, min_size=8), num_bins=0,
                              val_fraction=0.0, log=lambda *_: None)
        assets = tmp_path / "model" / str(version) / "assets"
        assets.mkdir(parents=True)
        with open(os.path.join(out, BINS_NAME)) as f:
            artifact = json.load(f)
        (assets / BINS_NAME).write_text(json.dumps(artifact))
        kept[version] = artifact["kept_cells"]
    assert kept[1] != kept[2]
    assert list(build_records._load_earlier_bins(str(tmp_path / "model"), "yuv").kept_cells) \
        == kept[2]
    assert list(build_records._load_earlier_bins(
        str(tmp_path / "model" / "1"), "yuv").kept_cells) == kept[1]
    with open(os.path.join(REPO, "saved_models", "effnet_general", "3", "assets",
                           BINS_NAME)) as f:
        shipped = json.load(f)
    general = build_records._load_earlier_bins("general", "lab")
    assert list(general.kept_cells) == shipped["kept_cells"] and general.num_bins == 257


def test_full_disk_leaves_no_temp_shard_and_one_line(tmp_path, monkeypatch):
    import errno
    photos = str(tmp_path / "photos")
    for i in range(6):
        write_png(os.path.join(photos, f"{i}.png"), make_photo(30, 40, seed=i))
    out = str(tmp_path / "out")
    real = builder._ShardWriter.write
    calls = {"n": 0}

    def full_disk(self, position, example):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, position, example)

    monkeypatch.setattr(builder._ShardWriter, "write", full_disk)
    with pytest.raises(builder.InputError, match="No space left on device"):
        _run(photos, out, images_per_shard=4)
    assert not [n for n in os.listdir(out) if ".tmp-" in n]  # the space is given back
    assert not os.path.exists(os.path.join(out, records.REPORT_NAME))


def test_cap_per_class_keeps_an_even_spread_of_each_class_in_listing_order():
    sources = [builder.Source(f"{label}{i}", label_text=label)
               for label, count in (("a", 5), ("b", 2)) for i in range(count)]
    sources.insert(3, sources.pop(5))  # the classes interleaved: a0 a1 a2 b0 a3 a4 b1
    kept, left_out = builder.cap_per_class(sources, 3)
    assert [s.source_id for s in kept] == ["a0", "a2", "b0", "a4", "b1"]
    assert left_out == 2
    assert builder.cap_per_class(sources, 0) == (sources, 0)
    assert [s.source_id for s in builder.cap_per_class(sources, 1)[0]] == ["a0", "b0"]


def _task_and_pid(task):
    """A worker task for the runner's test: (the task, the process that ran it)."""
    return task, os.getpid()


def test_worker_results_keep_the_order_of_the_tasks():
    with processes.task_runner(2) as run:
        results = list(run(_task_and_pid, list(range(300))))
    assert [task for task, _ in results] == list(range(300))
    assert os.getpid() not in {pid for _, pid in results}  # the workers ran them
    with processes.task_runner(1) as run:  # one worker: this process
        assert {pid for _, pid in run(_task_and_pid, range(5))} == {os.getpid()}


def test_a_full_disk_at_the_report_is_one_line_about_the_disk(tmp_path):
    # The disk fills as report.json is written (after every shard): the user's disk, said
    # so in one line, not an internal error; no report.json, so training refuses them.
    import textwrap
    photos = str(tmp_path / "photos")
    for i in range(3):
        write_png(os.path.join(photos, f"{i}.png"), make_photo(30, 40, seed=i))
    script = textwrap.dedent(f"""
        import errno, sys
        from colorize_tf import safe_write
        from data_prep import build_records
        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")
        safe_write.write_json = full
        sys.argv = ["build_records", "--input_dir={photos}", "--output_dir={tmp_path}/out",
                    "--frame_size=32", "--workers=1"]
        build_records.main()
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "No space left on device" in result.stderr and "internal error" not in result.stderr
    assert "free space and run the same command again" in result.stderr
    assert not os.path.exists(tmp_path / "out" / records.REPORT_NAME)


def test_ctrl_c_during_a_build_is_one_line_and_leaves_no_temp_file(tmp_path):
    # Issue 41: Ctrl-C (SIGINT to the whole process group, as a terminal sends it) during
    # a build printed each worker's traceback. Now the workers ignore it and the parent
    # ends the pool: exit 130, one line, no temp shard left, complete shards only.
    # Photos large enough that the workers are busy decoding when the signal comes
    # (idle ones waiting for a task died quietly even with the bug).
    photos = tmp_path / "photos"
    photo = make_photo(240, 320, seed=1)
    for i in range(1500):
        write_png(str(photos / f"{i:04d}.png"), np.roll(photo, i, axis=1))
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "data_prep.build_records", f"--input_dir={photos}",
         f"--output_dir={out}", "--frame_size=128", "--workers=2", "--min_size=8",
         "--images_per_shard=100"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own group, SIGINT at its default (not inherited)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in process.stdout:  # the first progress line: the workers are mid-build
        if "photos/s" in line:
            break
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().endswith("build_records: interrupted (nothing half-written is left; "
                                "run the same command again to go on)"), err
    assert not [f for f in os.listdir(out) if f.startswith(".")]
    assert not os.path.exists(out / records.REPORT_NAME)


def _interrupt_self():
    """Run in a build's worker: Ctrl-C reaches it as it reaches the whole group."""
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)  # handled (or ignored) by now
    return "still working"


def test_a_worker_ignores_ctrl_c_so_that_the_parent_alone_handles_it():
    # The deterministic half of the test above: a worker given SIGINT goes on (with the
    # default handler it dies with a traceback and its task never answers).
    # Spawned as from a terminal: a process started in the background of a shell
    # inherits SIGINT ignored, and so would its workers, bug or not.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        pool = processes.worker_pool(1)
    finally:
        signal.signal(signal.SIGINT, previous)
    with pool:
        assert pool.apply_async(_interrupt_self).get(timeout=30) == "still working"
