"""Seed 003's perceptual realism study (Zhang et al. 2016, section 3.1 "Perceptual
realism"): a two-alternative forced choice between a real colour photo and the same
photo colorized by the served model, side by side in random order, "which one is
real?". The fooling rate is the share of answers that picked the colorized one (50%:
indistinguishable; Nicolai et al. 2021 reports 18.8% over 10 participants and 50 photos).

Answers live in SQLite: one row per pair shown (trial), with an anonymous session id,
the photo, model, version, temperature, which side was real, the choice and the
milliseconds it took. Which side is real never leaves the server before the answer.
"""
import csv
import io
import math
import os
import random
import sqlite3
import sys
import threading
import time

import cv2
import numpy as np

from colorize_tf import errors
from colorize_tf.data import image_files

SCHEMA = """
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session TEXT NOT NULL,
    photo TEXT NOT NULL,
    model TEXT NOT NULL,
    version INTEGER NOT NULL,
    temperature REAL NOT NULL,
    real_side TEXT NOT NULL,        -- "left" or "right"
    shown_at REAL NOT NULL,         -- Unix seconds
    chosen_side TEXT,               -- NULL until answered
    fooled INTEGER,                 -- 1: the colorized photo was picked as real
    milliseconds INTEGER
);
"""
SIDES = ("left", "right")
Z95 = 1.959964  # two-sided 95% normal quantile
MAX_BODY_BYTES = 1 << 16  # a study request is a few small JSON fields
MAX_MILLISECONDS = 24 * 3600 * 1000  # an answer's time: a day at most
MAX_SESSIONS_PER_CLIENT = 20  # sessions one client address may open
# Spreadsheets run a cell that starts with one of these as a formula (OWASP, "CSV
# Injection"): such text is written with a leading ' in results.csv.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class StudyError(errors.Error):
    """A request the study refuses (unknown trial, answered twice, bad session)."""


class PhotoUnusable(StudyError):
    """A photo of the study's folder that cannot be shown (unreadable, undecodable,
    refused by the model): it is left out of every later session."""


class StudyBusy(errors.Error):
    """The study's database cannot take the request now (locked by another process,
    or not writable): the client may retry later (HTTP 503)."""


DB_TIMEOUT_S = 1.0  # how long a request waits for a database another process locked


def as_png(photo):
    """A photo's bytes -> PNG bytes of the same pixels (EXIF orientation applied, as the
    serving graph does), so the real photo and the colorized one differ only in colour,
    not in format or compression."""
    image = cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR) \
        if photo else None
    if image is None:
        raise PhotoUnusable("OpenCV cannot decode it")
    return cv2.imencode(".png", image)[1].tobytes()


def wilson_interval(successes, n, z=Z95):
    """The Wilson score interval of a proportion -> (low, high); (0, 1) for n = 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


class StudyStore:
    """The SQLite file of trials and answers (safe to share between threads)."""

    def __init__(self, path):
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=DB_TIMEOUT_S, check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

    def _run(self, sql, parameters=()):
        """One statement under the lock; StudyBusy for a locked or read-only database
        (sqlite3.OperationalError), so a request gets a 503, not a 500."""
        try:
            return self._db.execute(sql, parameters)
        except sqlite3.OperationalError as e:
            raise StudyBusy(f"the study's database is not available now ({e}); "
                            "try again in a moment") from None

    def new_trial(self, session, photo, model, version, temperature, real_side):
        with self._lock:
            cursor = self._run(
                "INSERT INTO trials (session, photo, model, version, temperature, real_side, "
                "shown_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (session, photo, model, version, temperature, real_side, time.time()))
            return cursor.lastrowid

    def answer(self, trial_id, session, chosen_side, milliseconds):
        """Records the choice -> whether the participant was fooled. trial_id: an
        integer; milliseconds: a number in [0, MAX_MILLISECONDS] (StudyError else)."""
        if chosen_side not in SIDES:
            raise StudyError(f"choice must be one of {SIDES}, got {_shown(chosen_side)}")
        if isinstance(trial_id, bool) or not isinstance(trial_id, int) or \
                not 0 < trial_id < 2 ** 62:
            raise StudyError(f"trial must be a trial's number, got {_shown(trial_id)}")
        if isinstance(milliseconds, bool) or not isinstance(milliseconds, (int, float)) or \
                not 0 <= milliseconds <= MAX_MILLISECONDS:
            raise StudyError(f"milliseconds must be a number in [0, {MAX_MILLISECONDS}], "
                             f"got {_shown(milliseconds)}")
        with self._lock:
            row = self._run("SELECT session, real_side, chosen_side FROM trials "
                                   "WHERE id = ?", (trial_id,)).fetchone()
            if row is None or row[0] != session:
                raise StudyError(f"no trial {trial_id} in this session")
            if row[2] is not None:
                raise StudyError(f"trial {trial_id} is already answered")
            fooled = int(chosen_side != row[1])
            self._run("UPDATE trials SET chosen_side = ?, fooled = ?, milliseconds = ? "
                             "WHERE id = ?", (chosen_side, fooled, int(milliseconds),
                                              trial_id))
        return bool(fooled)

    def open_trial(self, session):
        """The session's trial shown but not answered yet -> (id, photo, version,
        temperature, real_side), or None."""
        with self._lock:
            return self._run(
                "SELECT id, photo, version, temperature, real_side FROM trials WHERE "
                "session = ? AND chosen_side IS NULL ORDER BY id DESC LIMIT 1",
                (session,)).fetchone()

    def answered_photos(self, session):
        with self._lock:
            return {r[0] for r in self._run(
                "SELECT photo FROM trials WHERE session = ? AND chosen_side IS NOT NULL",
                (session,))}

    def results(self):
        """[{model, version, temperature, answers, fooled, rate, low, high, sessions}]
        over the answered trials, per model version and temperature."""
        with self._lock:
            rows = self._run(
                "SELECT model, version, temperature, COUNT(*), SUM(fooled), "
                "COUNT(DISTINCT session) FROM trials WHERE chosen_side IS NOT NULL "
                "GROUP BY model, version, temperature ORDER BY model, version, "
                "temperature").fetchall()
        out = []
        for model, version, temperature, n, fooled, sessions in rows:
            low, high = wilson_interval(fooled, n)
            out.append({"model": model, "version": version, "temperature": temperature,
                        "answers": n, "fooled": fooled, "rate": fooled / n, "low": low,
                        "high": high, "sessions": sessions})
        return out

    def csv_text(self):
        """Every answered trial as CSV (a header row first)."""
        with self._lock:
            cursor = self._run(
                "SELECT id, session, photo, model, version, temperature, real_side, "
                "chosen_side, fooled, milliseconds, shown_at FROM trials "
                "WHERE chosen_side IS NOT NULL ORDER BY id")
            header = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows([csv_safe(v) for v in row] for row in rows)
        return out.getvalue()


def _log_unusable(photo, reason):
    print(f"study: {photo}: left out of the study: {reason}", file=sys.stderr)


def csv_safe(value):
    """A cell for results.csv: text that a spreadsheet would run as a formula gets a
    leading ' (OWASP); numbers as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _shown(value):
    """A client's value in an error message: short, and printable."""
    return ascii(value)[:60]


class RealismStudy:
    """The study over the photos of a folder (the real colour ones). colorize(photo
    bytes, temperature) -> PNG bytes colorizes with the served model, whose version
    current_version() gives; results are cached per (photo, version, temperature).
    seconds: how long the page shows each pair (0: until answered). A photo that cannot
    be shown (OSError reading it, PhotoUnusable from as_png or colorize) is logged once
    and left out; the session gets the next one."""

    def __init__(self, photos_dir, store, model, colorize, current_version, temperature,
                 pairs=50, seconds=0.0):
        self.photos_dir = photos_dir
        found, _ = image_files.list_files([photos_dir], image_files.IMAGE_EXTENSIONS)
        self.photos = [path for path, _ in found]
        if not self.photos:
            raise StudyError(f"no photos in {photos_dir}")
        self.store, self.model, self.colorize = store, model, colorize
        self.current_version = current_version
        self.temperature, self.pairs, self.seconds = temperature, pairs, seconds
        self._cache = {}
        self.unusable = {}  # photo path -> why it is left out
        self._sessions = {}  # client address -> the sessions it opened
        self._sessions_lock = threading.Lock()

    def _pair(self, photo, version, temperature):
        """(real PNG, colorized PNG) of photo, cached; None (logged once, the photo left
        out from then on) when it cannot be shown."""
        if photo in self.unusable:
            return None
        key = (photo, version, temperature)
        if key not in self._cache:
            try:
                real = image_files.read_file(photo)
                self._cache[key] = (as_png(real), self.colorize(real, temperature))
            except (OSError, PhotoUnusable) as e:
                self.unusable[photo] = getattr(e, "strerror", None) or str(e)
                _log_unusable(self.name(photo), self.unusable[photo])
                return None
        return self._cache[key]

    def name(self, photo):
        """A photo's name in the answers: its path inside the study folder."""
        return os.path.relpath(photo, self.photos_dir)

    def _check_client(self, session, client):
        """StudyError when the client address opens more than MAX_SESSIONS_PER_CLIENT
        sessions (each may add up to `pairs` rows)."""
        with self._sessions_lock:
            opened = self._sessions.setdefault(client, set())
            if session not in opened and len(opened) >= MAX_SESSIONS_PER_CLIENT:
                raise StudyError(f"this address has opened {len(opened)} sessions, the "
                                 "most one may")
            opened.add(session)

    def next_trial(self, session, client=""):
        """-> {"done": True} after `pairs` answers (or every photo), else {"trial",
        "left", "right" (PNG bytes), "index", "pairs"}. A session with a trial shown and
        not answered gets that trial again (one open trial a session: the rows a
        client can add are bounded); client: its address (sessions per address are
        capped)."""
        self._check_client(session, client)
        seen = self.store.answered_photos(session)
        total = min(self.pairs, len(self.photos) - len(self.unusable))
        if total == 0:
            raise StudyError("no photo of the study's folder can be shown")
        if len(seen) >= total:
            return {"done": True, "pairs": total}
        version, temperature = self.current_version(), self.temperature
        shown = self.store.open_trial(session)
        by_name = {self.name(p): p for p in self.photos}
        trial, pair = None, None
        if shown is not None and shown[1] in by_name and shown[2:4] == (version, temperature):
            trial, photo, real_side = shown[0], by_name[shown[1]], shown[4]
            pair = self._pair(photo, version, temperature)
        if pair is None:  # (a trial of an older model version is left unanswered)
            trial, real_side = None, random.choice(SIDES)
            order = random.Random(session).sample(self.photos, len(self.photos))
            for photo in (p for p in order if self.name(p) not in seen):
                pair = self._pair(photo, version, temperature)
                if pair is not None:
                    break
        if pair is None:  # every photo left was unusable
            return {"done": True, "pairs": len(seen)}
        total = min(self.pairs, len(self.photos) - len(self.unusable))
        real_png, fake = pair
        if trial is None:
            trial = self.store.new_trial(session, self.name(photo), self.model, version,
                                         temperature, real_side)
        left, right = (real_png, fake) if real_side == "left" else (fake, real_png)
        return {"trial": trial, "left": left, "right": right, "index": len(seen) + 1,
                "pairs": total}
