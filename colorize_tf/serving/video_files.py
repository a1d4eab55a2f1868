"""Videos colorized frame by frame through a Colorizer, their bin probabilities smoothed
over time (chroma/video_smoothing.py), written with OpenCV at the same size and rate.
"""
import os

import cv2
import numpy as np

from colorize_tf import errors
from colorize_tf import safe_write
from colorize_tf.chroma import video_smoothing
from colorize_tf.data import image_files

_FOURCC = {".mp4": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


def colorize_video(colorizer, in_path, out_path, temperature, work_size=None,
                   frames=video_smoothing.SMOOTHING_FRAMES,
                   alpha=video_smoothing.SMOOTHING_ALPHA, motion=video_smoothing.SMOOTHING_MOTION,
                   progress=None, max_pixels=image_files.DEFAULT_MAX_PIXELS):
    """Reads a video with OpenCV, colorizes every frame with temporal smoothing, writes
    the same fps and size. Returns the number of frames. The audio is not carried.
    ValueError (and nothing written) for a video with fewer readable frames than its
    header declares (a truncated or damaged file)."""
    capture = cv2.VideoCapture(in_path)
    if not capture.isOpened():
        raise errors.Error("OpenCV cannot open this video")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    if width * height > max_pixels:
        capture.release()
        raise errors.Error(f"{width}x{height} px frames are larger than the limit of "
                           f"{max_pixels} pixels (raise --max_pixels to allow it)")
    extension = os.path.splitext(out_path)[1].lower()
    smoother = colorizer.decoder.smoother(frames, alpha, motion)
    count = 0
    try:
        with safe_write.replacing(out_path) as tmp:
            writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*_FOURCC.get(extension, "mp4v")),
                                     fps, (width, height))
            if not writer.isOpened():
                raise OSError(f"OpenCV cannot write a {extension} video here")
            try:
                while True:
                    ok, frame = capture.read()
                    if not ok:
                        break
                    rgb = colorizer.colorize(frame[..., ::-1], temperature, work_size=work_size,
                                             smoother=smoother)
                    writer.write(np.ascontiguousarray(rgb[..., ::-1]))
                    count += 1
                    if progress:
                        progress(count, total)
            finally:
                writer.release()
            if count == 0:
                raise errors.Error("the video has no readable frames")
            if 0 < total and count < total:  # discarded: nothing half-written is shown
                raise errors.Error(f"the video ends after {count} of the {total} frames its "
                                   f"header declares (truncated or damaged): not written")
    finally:
        capture.release()
    return count
