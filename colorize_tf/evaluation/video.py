"""Flicker of colorized video, measured where the truth is known.

A test clip is made from a colour photo by moving a square window over it: it pans
and zooms linearly from a start window to an end window (seeded per photo), each
frame the window resampled to side x side px. Every frame pixel is a known point of
the photo, so the motion between two frames is known exactly and can be undone.

    flicker = mean over consecutive frames (t-1, t) and over the pixels of frame t
              whose scene point is also in frame t-1, of |ab_t - ab_(t-1)| at that
              scene point (CIE Lab a*b*, frame t-1 sampled bilinearly there)

measured on the colorized clip and on the true one (which has some from resampling),
and given as their ratio too; beside it each frame's PSNR against the true frame, and
frames/s. Frame by frame and temporally smoothed colorization (video_smoothing.MotionSmoother
and TemporalSmoother) are measured from the same model outputs.
"""
import dataclasses
import time

import cv2
import numpy as np
import tensorflow as tf

from colorize_tf.chroma import color
from colorize_tf.chroma import video_smoothing
from colorize_tf.serving import graph

FRAMES = 32  # per clip
SIDE = 96  # px, the frames' side
# The window: its side a fraction of the photo's shorter side at the start and the
# end (a slow zoom in or out), its position uniform where it fits; a slow pan: at 150
# px photos about 1 px of motion per frame.
WINDOW_SIDES = (0.65, 0.85)
CLIP_SEED = 4  # the clips are the same on every run


@dataclasses.dataclass(frozen=True)
class Clip:
    """A clip's windows: corner (x, y) and side of each frame's window in photo pixels
    (pixel edges at integers): corners [F, 2], sides [F]; frames side x side px."""
    corners: np.ndarray
    sides: np.ndarray
    side: int

    def maps(self, t):
        """Photo coordinates (pixel centres at integers, cv2.remap's) of frame t's pixels:
        (map_x, map_y) float32 [side, side]."""
        steps = (np.arange(self.side, dtype=np.float64) + 0.5) * self.sides[t] / self.side
        xs = self.corners[t, 0] + steps - 0.5
        ys = self.corners[t, 1] + steps - 0.5
        map_x, map_y = np.meshgrid(xs, ys)
        return map_x.astype(np.float32), map_y.astype(np.float32)

    def to_frame(self, t, map_x, map_y):
        """Photo coordinates (as maps gives) -> frame t's pixel coordinates."""
        scale = self.side / self.sides[t]
        return (((map_x + 0.5 - self.corners[t, 0]) * scale - 0.5).astype(np.float32),
                ((map_y + 0.5 - self.corners[t, 1]) * scale - 0.5).astype(np.float32))


def make_clip(height, width, seed, frames=FRAMES, side=SIDE, window_sides=WINDOW_SIDES):
    """A pan-and-zoom Clip over a photo of height x width px (module doc)."""
    rng = np.random.default_rng([CLIP_SEED, seed])
    shorter = min(height, width)
    start_side, end_side = rng.permutation(np.asarray(window_sides) * shorter)
    corners = [rng.uniform([0, 0], [width - s, height - s]) for s in (start_side, end_side)]
    t = np.linspace(0.0, 1.0, frames)[:, None]
    return Clip(corners[0] * (1 - t) + corners[1] * t,
                start_side * (1 - t[:, 0]) + end_side * t[:, 0], side)


def render_clip(rgb_uint8, clip):
    """The true clip: RGB uint8 [F, side, side, 3], bilinear."""
    return np.stack([cv2.remap(rgb_uint8, *clip.maps(t), cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)
                     for t in range(len(clip.sides))])


def flicker(frames_uint8, clip):
    """Mean |ab_t - ab_(t-1)| at the same scene point over a clip (module doc); frames
    RGB uint8 [F, side, side, 3] -> float (Lab a*b* units)."""
    ab = color.rgb_uint8_to_lab(tf.constant(frames_uint8)).numpy()[..., 1:]
    changes = []
    for t in range(1, len(frames_uint8)):
        previous_x, previous_y = clip.to_frame(t - 1, *clip.maps(t))
        inside = ((previous_x >= 0) & (previous_x <= clip.side - 1) &
                  (previous_y >= 0) & (previous_y <= clip.side - 1))
        previous = cv2.remap(ab[t - 1], previous_x, previous_y, cv2.INTER_LINEAR)
        change = np.linalg.norm(ab[t] - previous, axis=-1)
        changes.append(change[inside].mean())
    return float(np.mean(changes))


def psnr(frames_uint8, truth_uint8):
    """Mean over frames of each frame's PSNR (dB, peak 255)."""
    error = (frames_uint8.astype(np.float64) - truth_uint8) ** 2
    mse = np.maximum(error.mean(axis=(1, 2, 3)), 1e-10)
    return float(np.mean(10.0 * np.log10(255.0 ** 2 / mse)))


def colorize_clip(colorizer, truth, temperature, settings):
    """The clip colorized from its luma, frame by frame and with each smoothing setting
    ((frames, alpha, motion) of Decoder.smoother) -> ({name: RGB uint8 [F, S, S, 3]},
    {name: seconds}): the model runs once per frame (shared), each method's time is the
    model's plus its own decoding."""
    start = time.perf_counter()
    luma, probabilities = colorizer.probabilities(truth)
    probabilities = probabilities.numpy()
    luma_frames = luma.numpy()
    model_seconds = time.perf_counter() - start
    results, seconds = {}, {}
    for name, setting in [("frame by frame", None)] + [
            (setting_name(*s), s) for s in settings]:
        start = time.perf_counter()
        smoother = colorizer.decoder.smoother(*setting) if setting else None
        smoothed = np.stack([smoother(p, y) for p, y in zip(probabilities, luma_frames)]) \
            if smoother else probabilities
        chroma = colorizer.to_work_grid(
            colorizer.decoder.chroma(tf.constant(smoothed), temperature), luma)
        results[name] = graph.render_rgb(luma, chroma, colorizer.color_space,
                                         colorizer.export_info.upsampling).numpy()
        seconds[name] = model_seconds + time.perf_counter() - start
    return results, seconds


def setting_name(frames, alpha, motion):
    """"along the flow, alpha A" (MotionSmoother) or "smoothed F:A" (TemporalSmoother)."""
    return f"along the flow, alpha {alpha:g}" if motion else f"smoothed {frames}:{alpha:g}"


def evaluate_video(colorizer, photos, temperature, settings=(
        (video_smoothing.SMOOTHING_FRAMES, video_smoothing.SMOOTHING_ALPHA,
         video_smoothing.SMOOTHING_MOTION),),
        frames=FRAMES, side=SIDE, on_clip=None):
    """Flicker, its ratio to the truth's, PSNR and frames/s of frame-by-frame and
    smoothed colorization over one clip per photo. photos: [(name, RGB uint8 [H, W, 3])].
    -> {"clips", "frames", "side", "temperature", "truth_flicker", "methods": {name:
    {"flicker", "flicker_ratio", "psnr", "frames_per_second"}}}."""
    sums, truth_flicker, clips = {}, [], 0
    for index, (name, rgb) in enumerate(photos):
        clip = make_clip(rgb.shape[0], rgb.shape[1], index, frames, side)
        truth = render_clip(rgb, clip)
        results, seconds = colorize_clip(colorizer, truth, temperature, settings)
        truth_flicker.append(flicker(truth, clip))
        for method, clip_frames in results.items():
            entry = sums.setdefault(method, {"flicker": [], "psnr": [], "seconds": 0.0})
            entry["flicker"].append(flicker(clip_frames, clip))
            entry["psnr"].append(psnr(clip_frames, truth))
            entry["seconds"] += seconds[method]
        clips += 1
        if on_clip:
            on_clip(clips)
    truth_mean = float(np.mean(truth_flicker))
    return {"clips": clips, "frames": frames, "side": side, "temperature": temperature,
            "truth_flicker": truth_mean, "methods": {
                method: {"flicker": float(np.mean(v["flicker"])),
                         "flicker_ratio": float(np.mean(v["flicker"])) / max(truth_mean, 1e-9),
                         "psnr": float(np.mean(v["psnr"])),
                         "frames_per_second": clips * frames / max(v["seconds"], 1e-9)}
                for method, v in sums.items()}}


def video_markdown(result):
    """The table of evaluate_video's result, with each smoothing's flicker cut and PSNR
    change against frame by frame."""
    base = result["methods"]["frame by frame"]
    lines = [f"Pan-and-zoom clips from {result['clips']} colour photos, {result['frames']} "
             f"frames of {result['side']} px each, T = {result['temperature']:g}; the true "
             f"clips' flicker: {result['truth_flicker']:.3f}", "",
             "| method | flicker (Lab ab) | / truth's | flicker cut | PSNR (dB) | PSNR change "
             "| frames/s |", "|---|---|---|---|---|---|---|"]
    for name, m in result["methods"].items():
        lines.append(f"| {name} | {m['flicker']:.3f} | {m['flicker_ratio']:.2f} | "
                     f"{base['flicker'] / max(m['flicker'], 1e-9):.2f}x | {m['psnr']:.2f} | "
                     f"{m['psnr'] - base['psnr']:+.2f} | {m['frames_per_second']:.0f} |")
    return "\n".join(lines) + "\n"
