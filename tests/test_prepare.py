"""Data prep's per-photo work without TensorFlow: the import, the Lanczos resize against
TF's own op, a worker task's results."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from colorize_tf.chroma.bins import DEFAULT_GRIDS, cell_index
from colorize_tf.chroma import color
from colorize_tf.data import records
from data_prep import prepare
from tests.conftest import make_photo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_worker_code_and_the_entry_point_load_no_tensorflow():
    # Spawned workers import prepare and, as their __main__, the entry point: with
    # TensorFlow each would take ~2 s to start instead of ~0.1 s (issue 13).
    code = ("import sys, data_prep.prepare, data_prep.build_records; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"


_MMAPPED_BLOCKS = """
import ctypes, sys, numpy as np
from data_prep import prepare
tuned = prepare.tune_malloc() if sys.argv[1] == "tune" else None
class MallInfo2(ctypes.Structure):  # glibc's struct mallinfo2 (malloc.h)
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]
mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2
before = mallinfo2().hblks
band = np.ones((32, 8192), np.float32)  # 1 MiB: a Lanczos band of a large photo
print(tuned, mallinfo2().hblks - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_tune_malloc_keeps_photo_sized_arrays_in_the_heap():
    # Without it glibc maps a 1 MiB array as its own block (and unmaps it when freed);
    # with it the array comes from the heap. In fresh processes: it changes the process.
    def mapped_blocks(mode):
        out = subprocess.run([sys.executable, "-c", _MMAPPED_BLOCKS, mode], cwd=REPO,
                             capture_output=True, text=True, check=True)
        return out.stdout.split()
    assert mapped_blocks("default") == ["None", "1"]
    assert mapped_blocks("tune") == ["True", "0"]

def _tf_lanczos(image, size):
    resized = tf.image.resize(tf.cast(image, tf.float32), size, method="lanczos3",
                              antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8).numpy()


@pytest.mark.parametrize("shape,size", [
    ((150, 150), (128, 128)),   # the landscapes' one step
    ((113, 150), (96, 128)),    # non-integer scale
    ((600, 400), (128, 85)),    # large factor (kernel stretched 4.7x)
    ((37, 1000), (5, 128)),     # extreme aspect: the kernel wider than the rows
    ((64, 64), (63, 63)),       # barely smaller
])
def test_lanczos_resize_is_tf_antialiased_lanczos3(shape, size):
    image = make_photo(*shape, seed=sum(shape))
    image[::7, ::5] = 255  # hard edges, where the kernel's negative lobes show
    ours = prepare.lanczos_resize(image, size).astype(int)
    theirs = _tf_lanczos(image, size).astype(int)
    assert ours.shape == theirs.shape == (*size, 3)
    assert np.abs(ours - theirs).max() <= 1  # float32 sums in another order
    assert np.mean(ours != theirs) < 0.002


def test_lanczos_weights_by_hand():
    # 4 -> 2: output 0 samples at 1.0, the kernel stretched 2x: taps at x = 0.5, 1.5, 2.5,
    # 3.5 input px -> kernel(0.25), kernel(0.25), kernel(0.75), kernel(1.25), normalised.
    def lanczos3(x):
        return 3 * np.sin(np.pi * x) * np.sin(np.pi * x / 3) / (np.pi * x) ** 2
    w = prepare.lanczos_weights(4, 2)
    raw = np.array([lanczos3(0.25), lanczos3(0.25), lanczos3(0.75), lanczos3(1.25)])
    np.testing.assert_allclose(w[0], raw / raw.sum(), rtol=1e-6)
    np.testing.assert_allclose(w[1], w[0][::-1], rtol=1e-6)  # symmetric
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("space", color.COLOR_SPACES)
def test_worker_task_counts_the_photo_not_the_padding(space, tmp_path):
    # A 40x20 photo in a 32 px frame: the histogram holds its 32x16 fitted pixels (their
    # cells by TF's own conversion and lookup), nothing of the frame's zero padding;
    # photos not counted (val) add nothing; the example's PNG is the frame, its label
    # the one given.
    photo = make_photo(40, 20, seed=5)
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), photo[..., ::-1])
    source = prepare.Source("a.png", str(path), "sea")
    config = prepare.PrepConfig(frame_size=32, min_size=8, color_space=space)
    (result,), (counts, sums) = prepare.prepare_chunk(([(source, True, 4)], config))
    _, example, skip, notes = result
    assert skip is None and notes == []
    parsed = records.parse_examples(tf.constant([example]))
    assert list(parsed[records.MASK_BOX].numpy()[0]) == [0, 0, 32, 16]
    assert parsed[records.LABEL].numpy()[0] == 4
    assert parsed[records.LABEL_TEXT].numpy()[0] == b"sea"
    assert parsed[records.SOURCE_ID].numpy()[0] == b"a.png"
    assert (parsed[records.ORIGINAL_HEIGHT].numpy()[0],
            parsed[records.ORIGINAL_WIDTH].numpy()[0]) == (40, 20)
    frame = tf.io.decode_png(parsed[records.ENCODED][0]).numpy()
    np.testing.assert_array_equal(frame[:, :16], prepare.lanczos_resize(photo, (32, 16)))
    assert frame[:, 16:].max() == 0
    chroma = color.rgb_to_luma_chroma(frame[:, :16].astype(np.float32) / 255.0, space)[1]
    grid = DEFAULT_GRIDS[space]
    expected = np.bincount(cell_index(chroma, grid).numpy().ravel(),
                           minlength=grid.num_cells)
    np.testing.assert_array_equal(counts, expected)
    np.testing.assert_allclose(sums.sum(axis=0), chroma.numpy().reshape(-1, 2).sum(axis=0),
                               rtol=1e-4, atol=1e-3)
    (_, (counts, _)) = prepare.prepare_chunk(([(source, False, 4)], config))
    assert counts.sum() == 0


@pytest.mark.parametrize("height, kept", [(48, True), (42, False), (40, False)])
def test_a_strip_too_thin_once_fitted_is_skipped(height, kept):
    # 48x1536 fits a 256 px frame as 8x256 px (48 * 256 / 1536 = 8, the smallest kept);
    # 42x1536 as 7x256 and 40x1536 (issue 41's 40x6000, shorter) as 7x256: skipped as
    # too small, naming both sizes, where they used to be stored with a 1-2 px box.
    photo = make_photo(height, 1536, seed=3)
    ok, png = cv2.imencode(".png", photo[..., ::-1])
    config = prepare.PrepConfig(frame_size=256, min_size=32)
    if kept:
        assert prepare.prepare_image(png.tobytes(), config).box == (0, 0, 8, 256)
        return
    with pytest.raises(prepare.SkipImage) as caught:
        prepare.prepare_image(png.tobytes(), config)
    assert caught.value.reason == prepare.TOO_SMALL
    assert f"1536x{height} px fits the 256 px frame as 256x7 px" in str(caught.value)
