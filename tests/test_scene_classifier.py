"""The scene classifier of the seed study: learns a colour-separable toy set; the
confusion matrix by hand."""
import numpy as np

from colorize_tf.modeling import scene_classifier
from tests.conftest import write_png


def _tinted(tint, seed, size=24):
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 60, (size, size, 3))
    return np.clip(np.asarray(tint) + noise, 0, 255).astype(np.uint8)


def test_learns_a_separable_toy_set(tmp_path):
    from data_prep import builder
    from data_prep import prepare
    tints = {"reds": (180, 20, 20), "blues": (20, 20, 180)}
    for name, tint in tints.items():
        for i in range(12):
            write_png(str(tmp_path / "photos" / name / f"{i}.png"), _tinted(tint, i))
    sources, _, _ = builder.list_dir_sources(str(tmp_path / "photos"))
    report = builder.build_records(
        sources, str(tmp_path / "records"), prepare.PrepConfig(frame_size=24, min_size=8),
        num_bins=4, val_fraction=0.2, log=lambda *_: None)
    model = scene_classifier.train_scene_classifier(
        str(tmp_path / "records"), str(tmp_path / "scene.keras"), len(report.classes),
        epochs=12, batch_size=8, size=16, verbose=0)
    assert (tmp_path / "scene.keras").exists()
    fresh = [_tinted(tints[c], 100 + i) for c in report.classes for i in range(4)]
    labels = [k for k in range(len(report.classes)) for _ in range(4)]
    accuracy, matrix = scene_classifier.confusion(
        labels, scene_classifier.classify(model, fresh, size=16), len(report.classes))
    assert accuracy == 1.0 and matrix.trace() == 8
    # A second call loads the saved model instead of training again.
    again = scene_classifier.train_scene_classifier(
        str(tmp_path / "records"), str(tmp_path / "scene.keras"), len(report.classes))
    np.testing.assert_allclose(again.get_weights()[0], model.get_weights()[0])


def test_confusion_by_hand():
    accuracy, matrix = scene_classifier.confusion([0, 0, 1, 2, 2], [0, 1, 1, 2, 0], 3)
    assert accuracy == 3 / 5
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
