"""The photos an evaluation scores: listing folders and domains, the labels CSV of
subject groups, reading each colour photo as a ground truth (or saying why it is left
out), and grouping them into batches of one size."""
import concurrent.futures
import csv
import dataclasses
import os

import cv2
import numpy as np

from colorize_tf import errors
from colorize_tf.chroma import color
from colorize_tf.data import image_files


BATCH_SIZE = 32  # photos of one size per model call


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


@dataclasses.dataclass
class Labels:
    """A labels CSV as read: groups {real path: ("column: value", ...)}, and what was
    not taken, so that a report can say it: missing_files (rows naming no file),
    ragged_rows (line numbers of rows with more or fewer cells than the header), twice
    (paths labelled again with other labels: the first labels are kept)."""
    groups: dict
    missing_files: list
    ragged_rows: list
    twice: list

    def notes(self, csv_path, paths):
        """{"csv", "labelled", ...} for metrics.json: how many of paths it labels and
        each kind of row it left out (counted, the first few named)."""
        labelled = sum(os.path.realpath(p) in self.groups for p in paths)
        out = {"csv": csv_path, "labelled": labelled, "photos": len(paths)}
        for name in ("missing_files", "ragged_rows", "twice"):
            items = getattr(self, name)
            out[name] = {"count": len(items), "first": items[:5]}
        return out


def read_label_groups(csv_path):
    """A CSV with a `path` column (relative to the CSV's folder) and label columns ->
    Labels: e.g. FairFace's faces_labels.csv gives ("age: 20-29", "gender: Female",
    "race: Black"). Empty values are left out."""
    base = os.path.dirname(os.path.abspath(csv_path))
    labels = Labels({}, [], [], [])
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if "path" not in (reader.fieldnames or []):
            raise errors.Error(f"{csv_path}: no 'path' column (columns: {reader.fieldnames})")
        if not [name for name in reader.fieldnames if name and name != "path"]:
            raise errors.Error(f"{csv_path}: no label column beside 'path' (e.g. "
                               "path,age,gender)")
        for row in reader:
            # DictReader puts extra cells under None and fills missing ones with None.
            if None in row or None in row.values():
                labels.ragged_rows.append(reader.line_num)
                continue
            name = row.pop("path")
            path = os.path.realpath(os.path.join(base, name))
            groups = tuple(f"{k}: {v}" for k, v in row.items() if k and v)
            if not os.path.isfile(path):
                labels.missing_files.append(name)
            elif path in labels.groups and labels.groups[path] != groups:
                labels.twice.append(name)
            else:
                labels.groups.setdefault(path, groups)
    return labels


class LeftOut(errors.Error):
    """A photo that cannot serve as a ground truth; str() is the one-line reason."""


def read_ground_truth(path, max_pixels=image_files.DEFAULT_MAX_PIXELS, gray_threshold=None):
    """A colour photo -> RGB uint8 [H, W, 3] (EXIF orientation applied); LeftOut for
    what cannot serve as a ground truth: unreadable, bombs, truncated JPEGs,
    undecodable, and (gray_threshold given) gray or single-tint photos, whose gray
    PSNR would be infinite (color.chroma_spread below gray_threshold)."""
    try:
        data = image_files.read_file(path)
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
