"""Keras callbacks of a training run besides its checkpoints (training_state.py): a
one-line summary per epoch, and colorized validation images in TensorBoard."""
import os
import time

import keras
import tensorflow as tf

from colorize_tf import color
from colorize_tf import decoding
from colorize_tf import input_pipeline


class EpochSummary(keras.callbacks.Callback):
    """Prints `epoch E/N: metrics | seconds, images/s` at the end of every epoch."""

    def __init__(self, epochs, images_per_epoch):
        super().__init__()
        self.epochs, self.images_per_epoch = epochs, images_per_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.time() - self.start
        rate = self.images_per_epoch / max(seconds, 1e-9)
        values = " ".join(f"{k} {v:.4g}" for k, v in sorted((logs or {}).items()))
        print(f"epoch {epoch + 1}/{self.epochs}: {values} | {seconds:.0f} s, "
              f"{rate:.1f} images/s", flush=True)


class ColorizedImages(keras.callbacks.Callback):
    """A few val images (gray input | prediction at T = 0.38 | truth) into TensorBoard
    under log_dir, once per epoch."""

    def __init__(self, log_dir, val_dataset, bins, num_images):
        super().__init__()
        self.writer = tf.summary.create_file_writer(log_dir)
        self.batch = next(iter(val_dataset.unbatch().batch(num_images)))
        self.bins, self.num_images = bins, num_images

    def on_epoch_end(self, epoch, logs=None):
        luma, packed = self.batch
        if isinstance(packed, dict):
            packed = packed["logits"]
        logits = self.model(luma, training=False)
        if isinstance(logits, dict):
            logits = logits["logits"]
        space = self.bins.grid.color_space
        chroma = decoding.annealed_mean(logits, self.bins.centres)
        truth = color.luma_chroma_to_rgb(luma, input_pipeline.unpack_targets(packed).chroma,
                                         space)
        predicted = color.luma_chroma_to_rgb(luma, chroma, space)
        with self.writer.as_default():
            tf.summary.image("val/gray_predicted_truth",
                             tf.concat([tf.image.grayscale_to_rgb(luma), predicted, truth],
                                       axis=2), step=epoch, max_outputs=self.num_images)


def log_dir(model_dir, name=""):
    return os.path.join(model_dir, "logs", name) if name else os.path.join(model_dir, "logs")
