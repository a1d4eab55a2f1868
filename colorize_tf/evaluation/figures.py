"""Small figures drawn with OpenCV (no plotting dependency): image strips with
labels, line plots (training curves), grouped bar plots (bin histograms)."""
import csv

import cv2
import numpy as np

from colorize_tf import errors
from colorize_tf import safe_write

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]


def _text(canvas, text, origin, scale=0.45, colour=(0, 0, 0)):
    cv2.putText(canvas, text, origin, _FONT, scale, colour, 1, cv2.LINE_AA)


def labelled_strip(images, labels, height=160):
    """RGB uint8 images (any sizes) side by side at one height, each with a label above."""
    tiles = []
    for image, label in zip(images, labels):
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        width = max(1, round(image.shape[1] * height / image.shape[0]))
        tile = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        header = np.full((20, width, 3), 255, np.uint8)
        _text(header, label, (3, 14))
        tiles.append(np.concatenate([header, tile], axis=0))
        tiles.append(np.full((height + 20, 4, 3), 255, np.uint8))
    return np.concatenate(tiles[:-1], axis=1)


def _axes(width, height, title, x_range, y_range, margin=50):
    canvas = np.full((height, width, 3), 255, np.uint8)
    _text(canvas, title, (margin, 20), 0.55)
    left, top, right, bottom = margin, 30, width - 15, height - 35
    cv2.rectangle(canvas, (left, top), (right, bottom), (0, 0, 0), 1)
    for i in range(5):
        fraction = i / 4
        y = int(bottom - fraction * (bottom - top))
        value = y_range[0] + fraction * (y_range[1] - y_range[0])
        _text(canvas, f"{value:.3g}", (2, y + 4), 0.35)
        x = int(left + fraction * (right - left))
        value = x_range[0] + fraction * (x_range[1] - x_range[0])
        _text(canvas, f"{value:.3g}", (x - 10, bottom + 15), 0.35)

    def to_pixel(x, y):
        fx = (x - x_range[0]) / max(x_range[1] - x_range[0], 1e-12)
        fy = (y - y_range[0]) / max(y_range[1] - y_range[0], 1e-12)
        return int(left + fx * (right - left)), int(bottom - fy * (bottom - top))
    return canvas, to_pixel, (left, top, right, bottom)


def line_plot(series, title, x_label="", width=640, height=360):
    """series: {name: (xs, ys)} -> RGB uint8 plot."""
    xs = np.concatenate([np.asarray(x, float) for x, _ in series.values()])
    ys = np.concatenate([np.asarray(y, float) for _, y in series.values()])
    y_pad = 0.05 * (ys.max() - ys.min() + 1e-9)
    canvas, to_pixel, (left, top, right, bottom) = _axes(
        width, height, title, (xs.min(), xs.max()), (ys.min() - y_pad, ys.max() + y_pad))
    for i, (name, (x, y)) in enumerate(series.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        points = np.array([to_pixel(a, b) for a, b in zip(x, y)], np.int32)
        cv2.polylines(canvas, [points], False, colour, 2, cv2.LINE_AA)
        _text(canvas, name, (right - 170, bottom - 10 - 16 * (len(series) - 1 - i)), 0.45,
              colour)
    _text(canvas, x_label, ((left + right) // 2 - 20, height - 8), 0.45)
    return canvas[..., ::-1].copy()  # drawn as BGR


def bar_plot(groups, title, x_label="", width=900, height=360):
    """groups: {name: values [n]} -> RGB uint8 grouped bar plot over n categories."""
    values = np.array(list(groups.values()), float)
    n = values.shape[1]
    canvas, to_pixel, (left, top, right, bottom) = _axes(
        width, height, title, (0, n), (0, values.max() * 1.05 + 1e-12))
    slot = (right - left) / n
    bar = max(1.0, slot / (len(groups) + 1))
    for g, (name, vals) in enumerate(groups.items()):
        colour = _COLOURS[g % len(_COLOURS)]
        for i, v in enumerate(vals):
            x0 = int(left + i * slot + g * bar)
            _, y = to_pixel(0, v)
            cv2.rectangle(canvas, (x0, y), (int(x0 + bar) - 1, bottom), colour, -1)
        _text(canvas, name, (right - 200, top + 18 + 16 * g), 0.45, colour)
    _text(canvas, x_label, ((left + right) // 2 - 20, height - 8), 0.45)
    return canvas[..., ::-1].copy()


def save_png(path, rgb):
    ok, png = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise errors.Error(f"cannot PNG-encode an image of shape {rgb.shape}")
    safe_write.write_bytes(path, png.tobytes())


def training_curves(history_csv):
    """Keras CSVLogger history -> RGB plot of loss and val_loss per epoch."""
    with open(history_csv) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise errors.Error(f"{history_csv} has no epochs")
    epochs = [int(r["epoch"]) + 1 for r in rows]
    series = {k: (epochs, [float(r[k]) for r in rows]) for k in ("loss", "val_loss")
              if k in rows[0]}
    return line_plot(series, "masked rebalanced cross-entropy per epoch", "epoch")
