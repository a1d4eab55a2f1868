"""Colorization as pre-processing for classification (Nicolai et al. 2021): a small Keras scene
classifier trained on colour photos, then given test photos in colour, in gray, and
colorized, to see how much of the accuracy lost to gray a colorizer gives back.

The classifier sees whole photos shrunk to SIZE x SIZE px (the records' frames,
content box only): 4 conv blocks (conv 3x3, batch norm, ReLU, max-pool), global
average pooling, a dense layer to the classes. Training mirrors photos at random.
"""
import os

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from colorize_tf import safe_write
from colorize_tf.data import records

SIZE = 64  # px: scene classes need layout and colour, not detail
FILTERS = (16, 32, 64, 128)


def build_scene_classifier(num_classes, size=SIZE, seed=0):
    """-> keras.Model: RGB float [B, size, size, 3] in [0, 1] -> class logits [B, k]."""
    images = keras.Input((size, size, 3), name="rgb")
    x = layers.Rescaling(2.0, offset=-1.0, name="center")(images)
    for i, filters in enumerate(FILTERS):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{i}_conv",
                          kernel_initializer=keras.initializers.GlorotUniform(seed + i))(x)
        x = layers.BatchNormalization(name=f"block{i}_bn")(x)
        x = layers.ReLU(name=f"block{i}_relu")(x)
        x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    logits = layers.Dense(num_classes, name="logits",
                          kernel_initializer=keras.initializers.GlorotUniform(seed + 99))(x)
    return keras.Model(images, logits, name="scene_classifier")


def _frame_and_label(example, size):
    """A parsed record -> (its content box resized to [size, size, 3], its class)."""
    rgb, _ = records.decode_frame(example)
    box = example[records.MASK_BOX]
    content = rgb[box[0]:box[2], box[1]:box[3]]
    image = tf.image.resize(content, [size, size], method="area")
    return tf.clip_by_value(image, 0.0, 1.0), example[records.LABEL]


def scene_dataset(records_dir, split, batch_size, size=SIZE, training=False, seed=0):
    """Batches of (RGB [B, size, size, 3], class [B]) from a records split; photos
    without a class (-1) are left out."""
    files = sorted(tf.io.gfile.glob(records.shard_pattern(records_dir, split)))
    dataset = tf.data.TFRecordDataset(files).batch(256).map(records.parse_examples).unbatch()
    dataset = dataset.map(lambda e: _frame_and_label(e, size),
                          num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.filter(lambda image, label: label >= 0)
    if training:
        dataset = dataset.cache().shuffle(4096, seed=seed).map(
            lambda image, label: (tf.image.random_flip_left_right(image, seed=seed), label))
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def train_scene_classifier(records_dir, model_path, num_classes, epochs=8, batch_size=64,
                           size=SIZE, seed=0, verbose=2):
    """Trains on the records' train split (val split reported), saves model_path (.keras,
    through a temp file); -> the model. A model_path that exists is loaded instead."""
    if os.path.exists(model_path):
        return keras.models.load_model(model_path)
    model = build_scene_classifier(num_classes, size, seed)
    model.compile(optimizer=keras.optimizers.Adam(2e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(scene_dataset(records_dir, records.TRAIN, batch_size, size, True, seed),
              validation_data=scene_dataset(records_dir, records.VAL, batch_size, size),
              epochs=epochs, verbose=verbose)
    os.makedirs(os.path.dirname(model_path) or ".", exist_ok=True)
    with safe_write.replacing(model_path) as tmp:
        model.save(tmp)
    return model


def classify(model, images, size=SIZE, batch_size=64):
    """RGB uint8 images [H, W, 3] (any sizes) -> predicted classes [N] int."""
    predictions = []
    for start in range(0, len(images), batch_size):
        batch = tf.stack([tf.image.resize(tf.cast(image, tf.float32) / 255.0, [size, size],
                                          method="area")
                          for image in images[start:start + batch_size]])
        predictions.append(np.argmax(model(batch, training=False).numpy(), axis=-1))
    return np.concatenate(predictions) if predictions else np.zeros([0], int)


def confusion(labels, predictions, num_classes):
    """-> (top-1 accuracy, confusion matrix [true, predicted] of counts)."""
    matrix = np.zeros((num_classes, num_classes), int)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
    return float(np.trace(matrix) / max(matrix.sum(), 1)), matrix
