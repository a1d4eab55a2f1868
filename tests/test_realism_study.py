import sqlite3

import cv2
import numpy as np
import pytest

from colorize_tf.serving import realism_study
from colorize_tf.testing.fake_data import make_photo, write_png


def test_wilson_interval_by_hand():
    # 1 of 4: p = 0.25, z^2 = 3.8415; centre (0.25 + 0.4802) / 1.9604 = 0.3725,
    # half 1.96 * sqrt(0.046875 + 0.060025) / 1.9604 = 0.3269.
    low, high = realism_study.wilson_interval(1, 4)
    assert low == pytest.approx(0.0456, abs=1e-4) and high == pytest.approx(0.6994, abs=1e-4)
    assert realism_study.wilson_interval(0, 0) == (0.0, 1.0)
    assert realism_study.wilson_interval(10, 10)[1] == pytest.approx(1.0)


def test_store_counts_the_fooled_per_version_and_temperature(tmp_path):
    store = realism_study.StudyStore(str(tmp_path / "s.sqlite"))
    trials = [store.new_trial("sessionA1", f"p{i}.jpg", "m", 1, 0.38, "left") for i in range(3)]
    other = store.new_trial("sessionB2", "p0.jpg", "m", 2, 0.38, "right")
    # Fooled = the colorized side (not real_side) was picked.
    assert store.answer(trials[0], "sessionA1", "right", 900) is True
    assert store.answer(trials[1], "sessionA1", "left", 800) is False
    assert store.answer(trials[2], "sessionA1", "right", 700) is True
    assert store.answer(other, "sessionB2", "right", 500) is False
    with pytest.raises(realism_study.StudyError, match="already answered"):
        store.answer(trials[0], "sessionA1", "left", 1)
    with pytest.raises(realism_study.StudyError, match="no trial"):
        store.answer(trials[1], "sessionB2", "left", 1)
    with pytest.raises(realism_study.StudyError, match="choice must be"):
        store.answer(store.new_trial("sessionA1", "x", "m", 1, 0.38, "left"), "sessionA1",
                     "middle", 1)
    rows = store.results()
    assert [(r["version"], r["answers"], r["fooled"]) for r in rows] == [(1, 3, 2), (2, 1, 0)]
    assert rows[0]["rate"] == pytest.approx(2 / 3) and rows[0]["sessions"] == 1
    lines = store.csv_text().strip().splitlines()
    assert lines[0].startswith("id,session,photo,model,version,temperature,real_side")
    assert len(lines) == 5  # the unanswered trial is not exported
    with sqlite3.connect(str(tmp_path / "s.sqlite")) as db:
        assert db.execute("SELECT COUNT(*) FROM trials").fetchone()[0] == 5


def test_study_shows_each_photo_once_beside_its_colorized_copy(tmp_path):
    for i in range(3):
        write_png(str(tmp_path / "photos" / f"{i}.png"), make_photo(12, 16, seed=i))
    fake = cv2.imencode(".png", np.zeros((12, 16, 3), np.uint8))[1].tobytes()
    store = realism_study.StudyStore(str(tmp_path / "s.sqlite"))
    study = realism_study.RealismStudy(str(tmp_path / "photos"), store, "m",
                                       lambda photo, t: fake, lambda: 7, 0.38, pairs=2)
    seen = []
    for _ in range(2):
        trial = study.next_trial("session123")
        real = trial["left"] if trial["right"] == fake else trial["right"]
        assert {trial["left"], trial["right"]} == {real, fake} and real != fake
        assert cv2.imdecode(np.frombuffer(real, np.uint8), cv2.IMREAD_COLOR).shape == (12, 16, 3)
        store.answer(trial["trial"], "session123", "left", 100)
        seen.append(trial["index"])
    assert seen == [1, 2] and study.next_trial("session123") == {"done": True, "pairs": 2}
    assert {r[0] for r in sqlite3.connect(str(tmp_path / "s.sqlite")).execute(
        "SELECT version FROM trials")} == {7}


def test_results_csv_escapes_formulas_and_answers_are_checked(tmp_path):
    store = realism_study.StudyStore(str(tmp_path / "s.sqlite"))
    # OWASP's list: = + - @, and tab and carriage return, which spreadsheets also take.
    names = ["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "\t=1+1", "\r=1+1",
             "plain.jpg"]
    for name in names:
        store.answer(store.new_trial("sessionA1", name, "m", 1, 0.38, "left"), "sessionA1",
                     "left", 10)
    import csv
    import io
    rows = list(csv.DictReader(io.StringIO(store.csv_text())))
    assert [r["photo"] for r in rows] == ["'" + n for n in names[:6]] + ["plain.jpg"]
    assert [r["milliseconds"] for r in rows] == ["10"] * 7  # numbers are not escaped
    trial = store.new_trial("sessionA1", "x.jpg", "m", 1, 0.38, "left")
    for bad_trial, bad_ms, message in [(trial, float("inf"), "milliseconds"),
                                       (trial, 10 ** 30, "milliseconds"),
                                       (trial, -1, "milliseconds"), (trial, "9", "milliseconds"),
                                       (10 ** 30, 1, "trial"), (1.5, 1, "trial"),
                                       (None, 1, "trial"), (True, 1, "trial")]:
        with pytest.raises(realism_study.StudyError, match=message):
            store.answer(bad_trial, "sessionA1", "left", bad_ms)
    assert store.answer(trial, "sessionA1", "left", 86_400_000) is False


def test_an_unanswered_trial_is_shown_again_and_clients_are_capped(tmp_path):
    for i in range(3):
        write_png(str(tmp_path / "photos" / f"{i}.png"), make_photo(12, 16, seed=i))
    fake = cv2.imencode(".png", np.zeros((12, 16, 3), np.uint8))[1].tobytes()
    store = realism_study.StudyStore(str(tmp_path / "s.sqlite"))
    version = [1]
    study = realism_study.RealismStudy(str(tmp_path / "photos"), store, "m",
                                       lambda photo, t: fake, lambda: version[0], 0.38)
    first = study.next_trial("session123", "10.0.0.1")
    assert all(study.next_trial("session123", "10.0.0.1") == first for _ in range(200))
    version[0] = 2  # a new model version: a new trial, the old one left unanswered
    assert study.next_trial("session123", "10.0.0.1")["trial"] != first["trial"]
    count = sqlite3.connect(str(tmp_path / "s.sqlite")).execute(
        "SELECT COUNT(*) FROM trials").fetchone()[0]
    assert count == 2
    cap = realism_study.MAX_SESSIONS_PER_CLIENT
    for i in range(cap - 1):
        study.next_trial(f"other{i:05d}", "10.0.0.1")
    with pytest.raises(realism_study.StudyError, match="sessions"):
        study.next_trial("onetoomany", "10.0.0.1")
    study.next_trial("onetoomany", "10.0.0.2")  # another address
    study.next_trial("session123", "10.0.0.1")  # a session it has opened already


def test_photos_that_cannot_be_shown_are_left_out_and_every_session_completes(
        tmp_path, capsys):
    # A 0-byte photo, a truncated JPEG, a TIFF the model refuses, a FIFO: each left
    # out once with a line, and 8 sessions each get their 2 pairs of the good photos.
    import os
    photos = tmp_path / "photos"
    for i in range(2):
        write_png(str(photos / f"good{i}.png"), make_photo(12, 16, seed=i))
    (photos / "empty.jpg").write_bytes(b"")
    jpeg = cv2.imencode(".jpg", make_photo(40, 40, seed=3))[1].tobytes()
    (photos / "truncated.jpg").write_bytes(jpeg[:len(jpeg) // 3])
    (photos / "scan.tif").write_bytes(cv2.imencode(".tif", make_photo(12, 16, seed=4))[1])
    os.mkfifo(photos / "pipe.jpg")
    fake = cv2.imencode(".png", np.zeros((12, 16, 3), np.uint8))[1].tobytes()

    def colorize(photo, temperature):
        if photo[:2] in (b"II", b"MM"):  # the served model decodes no TIFF
            raise realism_study.PhotoUnusable("not an image TensorFlow can decode")
        if photo[-2:] != b"\xff\xd9" and photo[:4] != b"\x89PNG":
            raise realism_study.PhotoUnusable("truncated JPEG")
        return fake
    store = realism_study.StudyStore(str(tmp_path / "s.sqlite"))
    study = realism_study.RealismStudy(str(photos), store, "m", colorize, lambda: 1, 0.38,
                                       pairs=2)
    for session in range(8):
        name = f"session{session:03d}"
        for index in (1, 2):
            trial = study.next_trial(name)
            assert trial["index"] == index and trial["pairs"] == 2, trial
            store.answer(trial["trial"], name, "left", 10)
        assert study.next_trial(name) == {"done": True, "pairs": 2}
    assert set(study.unusable) == {str(photos / n) for n in
                                   ("empty.jpg", "truncated.jpg", "scan.tif", "pipe.jpg")}
    err = capsys.readouterr().err.splitlines()
    assert len(err) <= 4 and all(line.startswith("study: ") for line in err), err
    assert any("pipe.jpg: left out of the study: a FIFO" in line for line in err), err
    assert any("empty.jpg: left out of the study: OpenCV cannot decode it" in line
               for line in err), err


def test_a_locked_or_read_only_database_is_busy_not_an_error(tmp_path):
    import os
    import stat
    import time
    path = str(tmp_path / "s.sqlite")
    store = realism_study.StudyStore(path)
    trial = store.new_trial("sessionA1", "p.jpg", "m", 1, 0.38, "left")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    start = time.monotonic()
    with pytest.raises(realism_study.StudyBusy, match="database is locked.*try again"):
        store.answer(trial, "sessionA1", "left", 10)
    assert time.monotonic() - start < realism_study.DB_TIMEOUT_S + 2
    with pytest.raises(realism_study.StudyBusy):
        store.new_trial("sessionA1", "q.jpg", "m", 1, 0.38, "left")
    other.execute("ROLLBACK")
    assert store.answer(trial, "sessionA1", "left", 10) is False
    if os.geteuid() != 0:  # root writes a read-only file anyway
        os.chmod(path, stat.S_IRUSR)
        with pytest.raises(realism_study.StudyBusy, match="readonly|read-only"):
            realism_study.StudyStore(path).new_trial("sessionB2", "p.jpg", "m", 1, 0.38,
                                                     "left")
