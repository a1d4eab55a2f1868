"""Keras callbacks of a training run besides its checkpoints (training/state.py): a
one-line summary per epoch, and colorized validation images in TensorBoard."""
import os
import time

import keras
import tensorflow as tf

from colorize_tf import serving_api
from colorize_tf.chroma import color
from colorize_tf.chroma import decoding
from colorize_tf.data import input_pipeline


class EpochSummary(keras.callbacks.Callback):
    """Prints `epoch E/N: metrics | seconds, images/s` at the end of every epoch, and
    adds the epoch's training time to the logs as "epoch_seconds" (so put it before
    the CSV logger: history.csv then has it)."""

    def __init__(self, epochs, images_per_epoch):
        super().__init__()
        self.epochs, self.images_per_epoch = epochs, images_per_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.time() - self.start  # training and validation of the epoch
        rate = self.images_per_epoch / max(seconds, 1e-9)
        values = " ".join(f"{k} {v:.4g}" for k, v in sorted((logs or {}).items()))
        print(f"epoch {epoch + 1}/{self.epochs}: {values} | {seconds:.0f} s, "
              f"{rate:.1f} images/s", flush=True)
        if logs is not None:
            logs["epoch_seconds"] = seconds


class ColorizedImages(keras.callbacks.Callback):
    """A few val images (gray input | prediction at T = 0.38 | truth) into TensorBoard
    under log_dir, once per epoch. decoder: decoding.Decoder of the model's output."""

    def __init__(self, log_dir, val_dataset, decoder, color_space, num_images):
        super().__init__()
        self.writer = tf.summary.create_file_writer(log_dir)
        self.batch = next(iter(val_dataset.unbatch().batch(num_images)))
        self.decoder, self.color_space, self.num_images = decoder, color_space, num_images

    def on_epoch_end(self, epoch, logs=None):
        inputs, targets = self.batch
        scores = self.model(inputs, training=False)
        luma = inputs[serving_api.LUMA] if isinstance(inputs, dict) else inputs
        if isinstance(scores, dict):  # the decoded output, not the heads
            name = "chroma" if self.decoder.kind == decoding.REGRESSION else "logits"
            targets, scores = targets[name], scores[name]
        if self.decoder.kind == decoding.REGRESSION:
            truth_chroma = input_pipeline.unpack_regression(targets)[0]
        else:
            truth_chroma = input_pipeline.unpack_targets(targets).chroma
        # A model whose logits have a lower resolution (output stride 4) is shown with
        # its chroma and the true one (pooled to its targets) upsampled to the luma's.
        size = tf.shape(luma)[1:3]
        chroma = tf.image.resize(
            self.decoder.chroma_of_scores(scores, decoding.DEFAULT_TEMPERATURE), size)
        truth_chroma = tf.image.resize(truth_chroma, size)
        truth = color.luma_chroma_to_rgb(luma, truth_chroma, self.color_space)
        predicted = color.luma_chroma_to_rgb(luma, chroma, self.color_space)
        with self.writer.as_default():
            tf.summary.image("val/gray_predicted_truth",
                             tf.concat([tf.image.grayscale_to_rgb(luma), predicted, truth],
                                       axis=2), step=epoch, max_outputs=self.num_images)


def log_dir(model_dir, name=""):
    return os.path.join(model_dir, "logs", name) if name else os.path.join(model_dir, "logs")
