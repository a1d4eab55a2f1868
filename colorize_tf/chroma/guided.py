"""Guided upsampling of the chroma: the photo's own luma decides where colour edges go.

The model's chroma is coarse: the pretrained general model predicts it at a quarter of a
192 px working size, so on a 1500 px photo each chroma cell covers about 30 x 30 pixels
and bilinear upsampling spreads every colour edge over as many: a blue sky bleeds into
the white dress in front of it, a green lawn onto the legs of the people on it (halos).
The luma is known at full resolution, and colour edges nearly always sit on luma edges.
So, as in the fast guided filter (He, Sun and Tang, *Guided Image Filtering*, ECCV 2010,
section 3; He and Sun 2015, arXiv:1505.00996, *Fast Guided Filter*, algorithm 2), in
each (2r + 1)^2 window of the chroma's grid the chroma is fitted as a linear function of
the luma shrunk to that grid (c ~ a I + b, least squares, with a ridge epsilon that
keeps a near 0 where the luma is flat), a and b are averaged over the windows that hold
each cell, upsampled bilinearly (they are smooth) and applied to the full-size luma.

Measured on 400 held-out train photos (docs/eval_general/held_out_upsampling.md, T = 0.7,
the default model, radius:epsilon:subsample): 4:1e-3:4 (the fit on the model's own
quarter-resolution grid) gains +0.12 dB PSNR and +0.3 points of rebalanced AuC,
colourfulness 0.95 -> 0.93; the same fit on the working-size grid (4:1e-3:1) gains as
much PSNR, less AuC (+0.06) and costs 16x more; 8:1e-3:4 gains +0.19 dB but washes the
colours out (0.90: its wider windows average the chroma like a blur).
Everything here is core TF ops: it runs inside the SavedModel.
"""
import dataclasses

import tensorflow as tf

from colorize_tf import errors

DEFAULT_RADIUS = 4  # working-size px: one cell each side on a quarter-resolution grid
DEFAULT_EPSILON = 1e-3  # luma^2 (luma in [0, 1]): edges vary by more than 0.03
BILINEAR_RADIUS = 0  # what exports from before guided upsampling do


def box_mean(x, radius):
    """x [B, h, w, C] -> the mean of x over the (2 radius + 1)^2 window around each
    pixel, counting only the pixels inside the image (avg_pool's SAME padding divides
    by the number of those), [B, h, w, C]. (Measured at 192 x 192 x 6: 1.0 ms; as rows
    then columns 1.2 ms, from cumulative sums 3.1 ms.)"""
    return tf.nn.avg_pool2d(x, 2 * radius + 1, 1, "SAME")


def guided_coefficients(chroma, guide, radius, epsilon):
    """chroma [B, h, w, C], guide (the luma on the chroma's grid) [B, h, w, 1] ->
    (a, b) [B, h, w, C] each: the window-averaged linear coefficients with which
    a * guide + b approximates chroma (He et al. 2010, equations 5, 6 and 8). The
    window means are taken in one pool for all of them."""
    c = tf.shape(chroma)[-1]
    means = box_mean(tf.concat([guide, guide * guide, chroma, guide * chroma], -1), radius)
    mean_guide, mean_square = means[..., :1], means[..., 1:2]
    mean_chroma, mean_product = means[..., 2:2 + c], means[..., 2 + c:]
    covariance = mean_product - mean_guide * mean_chroma
    variance = mean_square - mean_guide * mean_guide
    a = covariance / (variance + epsilon)
    b = mean_chroma - a * mean_guide
    both = box_mean(tf.concat([a, b], -1), radius)
    return both[..., :c], both[..., c:]


@dataclasses.dataclass(frozen=True)
class ChromaUpsampling:
    """How chroma at the working size reaches the photo's size: radius 0 bilinearly,
    otherwise guided by the full-size luma with windows of this radius (working-size
    px) and this ridge epsilon (luma^2). subsample: the fit runs on a grid that many
    times coarser (the fast guided filter's s; the model's output stride, where its
    chroma has its own resolution), with a radius of radius / subsample cells (at
    least 1): at a quarter of 192 px, 16x fewer pixels and 9-tap windows, not 81."""
    radius: int = BILINEAR_RADIUS
    epsilon: float = DEFAULT_EPSILON
    subsample: int = 1

    def __post_init__(self):
        if self.radius < 0 or not self.epsilon > 0 or self.subsample < 1:
            raise errors.Error(f"chroma upsampling needs a radius >= 0, an epsilon > 0 and "
                               f"a subsample >= 1, got {self.radius}, {self.epsilon} and "
                               f"{self.subsample}")

    @property
    def grid_radius(self):
        """The window radius on the fit's grid, in its cells."""
        return max(1, round(self.radius / self.subsample))

    def __call__(self, chroma, luma):
        """chroma [h, w, C] (or [B, h, w, C]), full-size luma [H, W, 1] in [0, 1] (or
        [B, H, W, 1]), h <= H, w <= W -> chroma [H, W, C] (or [B, H, W, C])."""
        size = tf.shape(luma)[-3:-1]
        if self.radius == BILINEAR_RADIUS:
            return tf.image.resize(chroma, size, method="bilinear")
        batched = len(chroma.shape) == 4
        if not batched:
            chroma, luma = chroma[None], luma[None]
        if self.subsample > 1:
            grid = tf.maximum((tf.shape(chroma)[1:3] + self.subsample - 1) // self.subsample,
                              1)
            chroma = tf.image.resize(chroma, grid, method="area")
        # The guide on the fit's grid: the luma averaged over each cell's pixels.
        guide = tf.image.resize(luma, tf.shape(chroma)[1:3], method="area")
        a, b = guided_coefficients(chroma, guide, self.grid_radius, self.epsilon)
        # Two resizes of the chroma's channel count: 3x faster than one of twice as
        # many channels (TF 2.21 CPU kernel, measured at 3000 x 2000).
        upsampled = (tf.image.resize(a, size, method="bilinear") * luma
                     + tf.image.resize(b, size, method="bilinear"))
        return upsampled if batched else upsampled[0]


BILINEAR = ChromaUpsampling(BILINEAR_RADIUS)
