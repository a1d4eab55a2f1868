"""The devices a training run uses: the CPU split into logical devices (to exercise the
mirrored strategy without GPUs), and the tf.distribute strategy a run's setting names.
"""
import tensorflow as tf

from colorize_tf.training import multi_worker


def configure_logical_cpus(count):
    """Splits the CPU into count logical devices (count > 1), to exercise
    --strategy=mirrored without GPUs. Process-wide and possible only before TensorFlow
    starts its runtime: call it from main, first."""
    if count > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * count)


def make_strategy(name):
    """The tf.distribute strategy of strategy. multi_worker reads TF_CONFIG and must
    be made before TensorFlow runs anything (collectives are set at start-up): main
    makes it first."""
    if name == "multi_worker":
        return multi_worker.make_strategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()
