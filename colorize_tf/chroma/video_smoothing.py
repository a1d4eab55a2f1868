"""Video frames' bin probabilities smoothed over time (the ColorUNet paper, Billaut et al.
2018, section 4.3): at fixed pixels (TemporalSmoother), or along the optical flow, each
scene point averaging its own past and a scene cut starting afresh (MotionSmoother).
Both hold a bounded window, so memory does not grow with a video's length; both work
on numpy arrays [H, W, n] (decoding.Decoder's "probabilities").
"""
import collections
import math

import cv2
import numpy as np

SMOOTHING_FRAMES = 20  # ColorUNet paper, section 4.3: T = 20 frames
# The paper's alpha is 0.2. Measured with evaluate --video (flicker at the same scene
# point on pan-and-zoom clips of test photos, docs/reference.md), 0.1 cuts more flicker
# with the same window and cost: landscapes model 2.11x vs 2.01x (PSNR +0.28 vs +0.24
# dB against frame by frame, 229 photos), general model 1.61x vs 1.60x (60 photos).
SMOOTHING_ALPHA = 0.1
# Smoothing along the motion (MotionSmoother) instead of at fixed pixels: measured the
# same way, alpha 0.1 cuts flicker 3.05x instead of 2.11x (landscapes model) and 2.23x
# instead of 1.61x (general model), PSNR +0.28 and +0.10 dB (docs/reference.md).
SMOOTHING_MOTION = True
# A frame whose luma differs from the previous one, moved along the flow, by more than
# this on average (luma in [0, 1]) starts a new scene: the past is dropped.
SCENE_CUT = 0.12


class TemporalSmoother:
    """Exponentially weighted window over video frames' bin probabilities.

    p_t = sum_{i=0..frames} p_{t-i} e^{-alpha i}, normalised over bins (ColorUNet
    section 4.3). Holds exactly frames + 1 maps, so memory does not grow with video
    length. Works on numpy arrays [H, W, n].
    """

    def __init__(self, frames=SMOOTHING_FRAMES, alpha=SMOOTHING_ALPHA, normalise=True):
        """normalise=False for a regression model's chroma: a weighted mean instead."""
        self.weights = [math.exp(-alpha * i) for i in range(frames + 1)]
        self.window = collections.deque(maxlen=frames + 1)
        self.normalise = normalise

    def reset(self):
        self.window.clear()

    def __call__(self, probabilities, luma=None):
        """Adds frame t's probabilities [H, W, n]; returns the smoothed [H, W, n]. luma:
        unused (MotionSmoother's interface)."""
        self.window.appendleft(np.asarray(probabilities, np.float32))
        if len(self.window) > 1 and self.window[1].shape != self.window[0].shape:
            self.window = collections.deque([self.window[0]], maxlen=self.window.maxlen)
        total = sum(w * p for w, p in zip(self.weights, self.window))
        if not self.normalise:
            return total / sum(self.weights[:len(self.window)])
        return total / np.maximum(total.sum(axis=-1, keepdims=True), 1e-12)


class MotionSmoother:
    """Exponential smoothing of video frames' bin probabilities along the motion:

        s_t = p_t + e^{-alpha} warp_t(s_{t-1}),  output s_t normalised over bins

    where warp_t moves the past to where its scene points are in frame t, by the dense
    optical flow from frame t's luma to frame t-1's (OpenCV's Farneback) on the
    probabilities' grid (the working size, or the logits' coarser grid). The
    ColorUNet's smoothing (TemporalSmoother) averages each pixel's past while the scene
    moves under it, which mixes in other points' colours; this one averages
    each scene point's own past. A frame whose luma, compared with the previous one
    moved along the flow, differs by more than scene_cut on average starts afresh (a
    cut). Holds one map; works on numpy arrays [H, W, n].
    """

    def __init__(self, alpha=SMOOTHING_ALPHA, normalise=True, scene_cut=SCENE_CUT):
        """normalise=False for a regression model's chroma: a weighted mean instead."""
        self.decay = math.exp(-alpha)
        self.normalise, self.scene_cut = normalise, scene_cut
        self.reset()

    def reset(self):
        self.state, self.weight, self.previous_luma = None, 0.0, None

    @staticmethod
    def _sample_maps(flow):
        """flow [H, W, 2] -> (map_x, map_y): where each pixel's scene point was."""
        height, width = flow.shape[:2]
        grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32),
                                     np.arange(height, dtype=np.float32))
        return grid_x + flow[..., 0], grid_y + flow[..., 1]

    @staticmethod
    def _warp(image, maps):
        """image [H, W, c] sampled at maps (bilinear, edges repeated), 4 channels per
        OpenCV call."""
        out = np.empty_like(image)
        for k in range(0, image.shape[-1], 4):
            out[..., k:k + 4] = cv2.remap(image[..., k:k + 4], *maps, cv2.INTER_LINEAR,
                                          borderMode=cv2.BORDER_REPLICATE).reshape(
                                              image.shape[:2] + (-1,))
        return out

    def __call__(self, probabilities, luma):
        """Adds frame t's probabilities [h, w, n] with its luma ([H, W] or [H, W, 1] in
        [0, 1], any size: resized to h x w); returns the smoothed [h, w, n]."""
        probabilities = np.asarray(probabilities, np.float32)
        height, width = probabilities.shape[:2]
        luma = cv2.resize(np.asarray(luma, np.float32).reshape(np.shape(luma)[:2]),
                          (width, height), interpolation=cv2.INTER_AREA)
        luma = np.clip(np.round(luma * 255.0), 0, 255).astype(np.uint8)
        if self.state is not None and self.state.shape == probabilities.shape:
            maps = self._sample_maps(cv2.calcOpticalFlowFarneback(
                luma, self.previous_luma, None, 0.5, 3, 9, 3, 5, 1.1, 0))
            moved = self._warp(self.previous_luma[..., None].astype(np.float32), maps)
            if np.mean(np.abs(moved[..., 0] - luma)) / 255.0 > self.scene_cut:
                self.state = None
            else:
                self.state = probabilities + self.decay * self._warp(self.state, maps)
                self.weight = 1.0 + self.decay * self.weight
        if self.state is None or self.state.shape != probabilities.shape:
            self.state, self.weight = probabilities.copy(), 1.0
        self.previous_luma = luma
        if not self.normalise:
            return self.state / self.weight
        return self.state / np.maximum(self.state.sum(axis=-1, keepdims=True), 1e-12)
