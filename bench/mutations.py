r"""Mutation check: plants known bugs one at a time in a temporary copy of the
repository and reports which ones the default test suite catches.

    python bench/mutations.py                 # all mutations
    python bench/mutations.py --only=uv_swapped,alpha_over_black

A mutation is caught when the tests named for it fail with the bug planted (they
pass on the unmodified tree: that is checked first, as the baseline). Each mutation
runs only the test modules that cover the code it changes, so the whole check takes
minutes, not an hour. Exit status 1 when any mutation survives.
"""
import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    old: str
    new: str
    tests: tuple  # test files that should catch it


MUTATIONS = (
    # The five bugs of issue 8, planted by hand in an earlier review.
    Mutation("uv_swapped", "colorize_tf/chroma/color_numpy.py",
             "    [-0.14714119, -0.28886916, 0.43601035],\n"
             "    [0.61497538, -0.51496512, -0.10001026],\n",
             "    [0.61497538, -0.51496512, -0.10001026],\n"
             "    [-0.14714119, -0.28886916, 0.43601035],\n",
             ("tests/test_color.py",)),
    Mutation("grid_axes_transposed", "colorize_tf/chroma/bins.py",
             "return ij[..., 0] * grid.cells[1] + ij[..., 1]",
             "return ij[..., 1] * grid.cells[0] + ij[..., 0]",
             ("tests/test_bins.py",)),
    Mutation("first_temperature_for_batch", "colorize_tf/serving/graph.py",
             "return tf.broadcast_to(tf.reshape(values, [-1]), [batch])",
             "return tf.broadcast_to(tf.reshape(values, [-1])[:1], [batch])",
             ("tests/test_export.py",)),
    Mutation("temperature_ignored", "colorize_tf/serving/graph.py",
             "chroma, confidence = self._chroma_and_confidence(small[None], temperature[None],",
             "chroma, confidence = self._chroma_and_confidence(small[None], tf.constant([0.38]),",
             ("tests/test_export.py",)),
    Mutation("colourfulness_without_std", "colorize_tf/modeling/metrics.py",
             "np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3",
             "0.0 * np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3",
             ("tests/test_metrics.py",)),
    # Five more named by the issue.
    Mutation("mask_ignored_in_histogram", "data_prep/prepare.py",
             "fitted = frame[:box[2], :box[3]]", "fitted = frame",
             ("tests/test_build_records.py",)),
    Mutation("val_counted_in_bins", "data_prep/builder.py",
             "items = [(s, split == records.TRAIN, class_ids.get(",
             "items = [(s, True, class_ids.get(",
             ("tests/test_build_records.py",)),
    Mutation("example_features_unsorted", "colorize_tf/data/example_proto.py",
             "for key, value in sorted(features.items())", "for key, value in features.items()",
             ("tests/test_records.py",)),
    Mutation("augmentation_off", "colorize_tf/training/config.py",
             "augment = self.data.augment", "augment = False",
             ("tests/test_training_config.py", "tests/test_train.py")),
    Mutation("video_smoothing_skipped", "colorize_tf/serving/inference.py",
             "probabilities = smoother(probabilities, luma)", "smoother(probabilities, luma)",
             ("tests/test_colorize.py",)),
    Mutation("alpha_over_black", "colorize_tf/serving/photo_decoding.py",
             "ALPHA_BACKGROUND = 1.0", "ALPHA_BACKGROUND = 0.0",
             ("tests/test_export.py",)),
    # Our own: the data-loss and resume bugs this suite exists to prevent.
    Mutation("best_not_restored_on_resume", "colorize_tf/training/state.py",
             'self.best = state.get("best")', "self.best = None",
             ("tests/test_training_state.py",)),
    Mutation("colorize_overwrites_inputs", "colorize_tf/colorize.py",
             "if os.path.realpath(target) in input_paths:", "if False:",
             ("tests/test_colorize.py",)),
    Mutation("truncated_jpeg_accepted", "colorize_tf/data/image_files.py",
             'return data.find(b"\\xff\\xd9", offset + 2 + length) >= 0', "return True",
             ("tests/test_image_files.py", "tests/test_build_records.py")),
    # The seed study's methods (issue 10).
    Mutation("per_channel_joint_softmax", "colorize_tf/chroma/decoding.py",
             "return tf.concat([tf.nn.softmax(scores[..., :n0], axis=-1),",
             "return tf.concat([tf.nn.softmax(scores, axis=-1)[..., :n0],",
             ("tests/test_decoding.py",)),
    Mutation("rebalance_override_ignored", "colorize_tf/training/config.py",
             "if self.data.rebalance_lambda is None:", "if True:",
             ("tests/test_variants.py",)),
    Mutation("scene_label_smoothing_ignored", "colorize_tf/modeling/losses.py",
             "return SceneCrossEntropy(label_smoothing)", "return SceneCrossEntropy(0.0)",
             ("tests/test_losses.py",)),
    # Data prep's TensorFlow-free workers (issue 13): their twins of TF's resize and lookup.
    Mutation("lanczos_not_antialiased", "data_prep/prepare.py",
             "kernel_scale = max(inverse_scale, 1.0)", "kernel_scale = 1.0",
             ("tests/test_prepare.py",)),
    Mutation("numpy_cells_axes_transposed", "colorize_tf/chroma/grid.py",
             "index = index * self.cells[1] + ij", "index = index + ij * self.cells[0]",
             ("tests/test_bins.py",)),
    # Later features: sparse soft targets, the local server, batching.
    Mutation("soft_target_probabilities_ignored", "colorize_tf/modeling/losses.py",
             "parts.probability * picked", "picked / picked.shape[-1]",
             ("tests/test_losses.py",)),
    Mutation("soft_candidates_too_few", "colorize_tf/chroma/bins.py",
             "bound = np.sort(max_d2, axis=1)[:, k - 1:k]",
             "bound = np.sort(min_d2, axis=1)[:, k - 1:k]",
             ("tests/test_bins.py",)),
    Mutation("bytes_outputs_not_base64", "colorize_tf/serving/rest_api.py",
             "values = {name: _json_rows(array, name.endswith(BYTES_SUFFIX))",
             "values = {name: _json_rows(array, False)",
             ("tests/test_rest_api.py",)),
    Mutation("failed_batch_fails_every_request", "colorize_tf/serving/batching.py",
             "            if len(tasks) == 1:", "            if True:",
             ("tests/test_batching.py",)),
    Mutation("one_batch_thread_whatever_asked", "colorize_tf/serving/batching.py",
             "for _ in range(num_threads)]", "for _ in range(1)]",
             ("tests/test_batching.py",)),
    Mutation("answer_not_rendered_in_the_batch_thread", "colorize_tf/serving/batching.py",
             "task.future.set_result(task.finish(outputs) if task.finish else outputs)",
             "task.future.set_result(outputs)",
             ("tests/test_batching.py",)),
    Mutation("every_worker_reads_every_example", "colorize_tf/data/input_pipeline.py",
             "examples = examples.shard(count, index)", "examples = examples",
             ("tests/test_multi_worker.py",)),
    Mutation("user_hints_not_given_to_the_model", "colorize_tf/serving/graph.py",
             "        if points is not None:", "        if False:",
             ("tests/test_hints.py",)),
    Mutation("simulated_hints_cross_the_mask", "colorize_tf/chroma/hints.py",
             "inside = sums[:, 2] >= area - 0.5", "inside = sums[:, 2] >= -1.0",
             ("tests/test_hints.py",)),
    Mutation("flicker_motion_not_undone", "colorize_tf/evaluation/video.py",
             "clip.to_frame(t - 1, *clip.maps(t))", "clip.to_frame(t, *clip.maps(t))",
             ("tests/test_video_evaluation.py",)),
    Mutation("video_smoothing_not_along_the_flow", "colorize_tf/chroma/video_smoothing.py",
             "probabilities + self.decay * self._warp(self.state, maps)",
             "probabilities + self.decay * self.state",
             ("tests/test_decoding.py",)),
    # The pretrained encoder's loader: PyTorch's depthwise [C, 1, kh, kw] read with its
    # kernel axes swapped (a square kernel keeps its shape, so only values tell).
    Mutation("depthwise_weights_transposed", "colorize_tf/modeling/efficientnet_lite.py",
             'np.transpose(get("weight"), (2, 3, 0, 1))',
             'np.transpose(get("weight"), (3, 2, 0, 1))',
             ("tests/test_efficientnet_lite.py",)),
    # Issue 30, item 1: one upload of an animated WebP aborted the server's process.
    Mutation("server_passes_animated_webp", "colorize_tf/serving/app.py",
             "            image_files.check_decodable(bytes(data))\n",
             "            pass\n",
             ("tests/test_bad_inputs.py",)),
    # Issue 30, item 5: an infinite temperature gave a flat photo instead of an error.
    Mutation("infinite_temperature_served", "colorize_tf/serving/graph.py",
             "tf.reduce_all(tf.math.is_finite(temperature) & (temperature > 0.0))",
             "tf.reduce_all(temperature > 0.0)",
             ("tests/test_export.py",)),
    # Issue 30, item 2: a TF_CONFIG task index past the cluster trained alone.
    Mutation("tf_config_task_index_unchecked", "colorize_tf/training/multi_worker.py",
             "not 0 <= index < len(cluster[kind]):", "not 0 <= index:",
             ("tests/test_multi_worker.py",)),
    # Issue 30, item 7: each call of /study/next added a row; formulas reached the CSV.
    Mutation("study_adds_a_trial_per_call", "colorize_tf/serving/realism_study.py",
             "if shown is not None and shown[1] in by_name and shown[2:4] == (version, "
             "temperature):", "if False:",
             ("tests/test_realism_study.py",)),
    Mutation("csv_formulas_not_escaped", "colorize_tf/serving/realism_study.py",
             "        return \"'\" + value", "        return value",
             ("tests/test_realism_study.py",)),
    Mutation("quarter_chroma_not_where_its_cell_is", "colorize_tf/serving/graph.py",
             "return tf.image.resize(maps, size, method=\"bilinear\")"
             "[..., :work_shape[0], :work_shape[1], :]",
             "return tf.image.resize(maps, work_shape, method=\"bilinear\")",
             ("tests/test_efficientnet_lite.py",)),
    # Guided chroma upsampling: the fit's intercept, and the guide taken at full size.
    Mutation("guided_intercept_sign", "colorize_tf/chroma/guided.py",
             "b = mean_chroma - a * mean_guide", "b = mean_chroma + a * mean_guide",
             ("tests/test_guided.py",)),
    Mutation("guided_coefficients_not_averaged", "colorize_tf/chroma/guided.py",
             "both = box_mean(tf.concat([a, b], -1), radius)", "both = tf.concat([a, b], -1)",
             ("tests/test_guided.py",)),
    Mutation("guided_radius_not_in_grid_cells", "colorize_tf/chroma/guided.py",
             "return max(1, round(self.radius / self.subsample))", "return self.radius",
             ("tests/test_guided.py",)),
    Mutation("guided_upsampling_not_exported", "colorize_tf/training/exporter.py",
             "max_pixels, pad_log2, output_stride, upsampling)",
             "max_pixels, pad_log2, output_stride)",
             ("tests/test_guided.py",)),
    # The pretrained colorizer's global context: starts as the model it is warm-started
    # from, and keeps ImageNet's weights where that model has no layer.
    Mutation("context_merge_not_zero", "colorize_tf/modeling/effnet_colorizer.py",
             'kernel_initializer="zeros", name="ctx_merge"',
             'kernel_initializer=init(), name="ctx_merge"',
             ("tests/test_efficientnet_lite.py",)),
    # A run that stopped before its first epoch must not lock its model_dir.
    Mutation("unfinished_run_locks_model_dir", "colorize_tf/training/trainer.py",
             "if trained and os.path.exists(path):", "if os.path.exists(path):",
             ("tests/test_train.py",)),
    Mutation("context_no_imagenet_when_warm_started", "colorize_tf/training/trainer.py",
             "if c.network.pretrained_encoder and missing:",
             "if c.network.pretrained_encoder and not copied:",
             ("tests/test_efficientnet_lite.py",)),
    # Crops at the frame's scale are not resized (only a narrow photo is enlarged).
    Mutation("frame_scale_crop_resized", "colorize_tf/data/input_pipeline.py",
             "side = tf.maximum(1, tf.minimum(size, tf.minimum(height, width)))",
             "side = tf.maximum(1, tf.minimum(height, width))",
             ("tests/test_input_pipeline.py",)),
    # Validation sees the photos at the scale training does.
    Mutation("frame_scale_crops_not_in_validation", "colorize_tf/data/input_pipeline.py",
             "if config.frame_scale_crops:", "if config.frame_scale_crops and training:",
             ("tests/test_input_pipeline.py",)),
    # Crops at the frame's scale cannot be larger than the frame.
    Mutation("frame_scale_crop_larger_than_frame", "colorize_tf/training/trainer.py",
             "if c.data.frame_scale_crops and frame and c.data.crop_size > frame:",
             "if c.data.frame_scale_crops and frame and c.data.crop_size > 2 * frame:",
             ("tests/test_train.py",)),
    # --bins_from with a model's folder or a shipped name: its latest version's bins.
    Mutation("bins_from_model_folder_not_resolved", "data_prep/build_records.py",
             "path = presets.resolve_saved_model(path)",
             "presets.resolve_saved_model(path)",
             ("tests/test_build_records.py",)),
    # The colour-cast loss: its means are over the valid pixels only.
    Mutation("cast_loss_counts_padding", "colorize_tf/modeling/losses.py",
             "parts.mask) for c in (0, 1)], -1)",
             "tf.ones_like(parts.mask)) for c in (0, 1)], -1)",
             ("tests/test_losses.py",)),
    # The tint correction moves each photo's mean, not the batch's.
    Mutation("tint_correction_over_the_batch", "colorize_tf/chroma/decoding.py",
             "tf.reduce_mean(calibrated, axis=[-3, -2], keepdims=True)",
             "tf.reduce_mean(calibrated, axis=[0, -3, -2], keepdims=True)",
             ("tests/test_decoding.py",)),
    # Coherent colours (issue 40): the blur runs over both axes, and the temperature
    # rises with the entropy over log n (flatness in [0, 1]), not the raw entropy.
    Mutation("coherent_smoothing_over_rows_only", "colorize_tf/chroma/decoding.py",
             'smoothed = tf.einsum("vw,...hwn->...hvn", gaussian_matrix(width), smoothed)',
             "smoothed = smoothed",
             ("tests/test_decoding.py", "tests/test_export.py")),
    Mutation("flat_temperature_from_raw_entropy", "colorize_tf/chroma/decoding.py",
             "entropy / tf.math.log(tf.maximum(n, 2.0)), 0.0, 1.0)",
             "entropy, 0.0, 1.0)",
             ("tests/test_decoding.py",)),
    # WiSE-FT interpolation (issue 40): share is the fine-tuned model's own part.
    Mutation("interpolation_share_reversed", "colorize_tf/modeling/model.py",
             "layer.set_weights([(1.0 - share) * b + share * m for m, b in zip(mine, theirs)])",
             "layer.set_weights([share * b + (1.0 - share) * m for m, b in zip(mine, theirs)])",
             ("tests/test_model.py::"
              "test_interpolated_weights_are_the_wise_ft_mix_of_every_variable",
              "tests/test_export.py::test_interpolated_export_mixes_the_weights_and_says_so")),
    # Issue 41: a hand-edited lookup table must not pass (records of one class).
    Mutation("bins_lookup_table_not_checked", "colorize_tf/chroma/bins.py",
             "if bins.cell_to_bin != nearest_bin_table(grid, kept, bins.centres):",
             "if False:",
             ("tests/test_bins.py",)),
    # Issue 41: the newest version is the largest number, not the last name in text
    # order (9 after 10), and only ASCII digits name a version.
    Mutation("versions_sorted_as_text", "colorize_tf/presets.py",
             "if v is not None), reverse=True)",
             "if v is not None), key=str, reverse=True)",
             ("tests/test_inference.py::"
              "test_versions_are_ascii_integers_without_leading_zeros",)),
    Mutation("version_names_any_digits", "colorize_tf/serving_api.py",
             "if not (name.isascii() and name.isdigit())",
             "if not name.isdigit()",
             ("tests/test_inference.py::"
              "test_versions_are_ascii_integers_without_leading_zeros",)),
    # Issue 41: a FIFO or a link to /dev/zero in a folder is never read.
    Mutation("special_files_read", "colorize_tf/data/image_files.py",
             "    if not stat.S_ISREG(mode.st_mode):\n        os.close(fd)",
             "    if False:\n        os.close(fd)",
             ("tests/test_image_files.py", "tests/test_bad_inputs.py")),
    # Issue 41: the weights reader trusts no stride or count of its file.
    Mutation("weights_negative_strides_trusted", "colorize_tf/modeling/torch_weights.py",
             "or any(st < 0 for st in ref.stride)", "or False",
             ("tests/test_efficientnet_lite.py",)),
    Mutation("weights_counts_not_checked", "colorize_tf/modeling/torch_weights.py",
             "if count * dtype.itemsize > left:", "if False:",
             ("tests/test_efficientnet_lite.py",)),
    # Issue 41: a video that ends before its declared frames is not written short.
    Mutation("short_video_accepted", "colorize_tf/serving/video_files.py",
             "if 0 < total and count < total:", "if False:",
             ("tests/test_colorize.py",)),
    # Issue 41: the study under faults: a photo it cannot show is skipped, a locked
    # database is a 503 to retry.
    Mutation("study_bad_photo_not_skipped", "colorize_tf/serving/realism_study.py",
             "except (OSError, PhotoUnusable) as e:", "except OSError as e:",
             ("tests/test_realism_study.py",)),
    Mutation("study_locked_database_is_500", "colorize_tf/serving/realism_study.py",
             "except sqlite3.OperationalError as e:", "except sqlite3.IntegrityError as e:",
             ("tests/test_realism_study.py",)),
    # Issue 41, section 8: bugs that left the whole suite green when planted.
    Mutation("kl_bins_reversed", "colorize_tf/evaluation/scoring.py",
             "metrics.kl_divergence(truth_bins, self.bin_counts)",
             "metrics.kl_divergence(self.bin_counts, truth_bins)",
             ("tests/test_evaluation.py::"
              "test_kl_bins_is_the_truths_divergence_from_the_predicted_bins",)),
    Mutation("formula_escape_without_tab_and_cr", "colorize_tf/serving/realism_study.py",
             'FORMULA_STARTS = ("=", "+", "-", "@", "\\t", "\\r")',
             'FORMULA_STARTS = ("=", "+", "-", "@")',
             ("tests/test_realism_study.py",)),
    Mutation("lite_bn_epsilon_of_pytorch", "colorize_tf/modeling/efficientnet_lite.py",
             "BN_EPSILON = 1e-3", "BN_EPSILON = 1e-5",
             ("tests/test_efficientnet_lite.py",)),
    Mutation("negative_task_index_accepted", "colorize_tf/training/multi_worker.py",
             "not 0 <= index < len(cluster[kind]):", "not index < len(cluster[kind]):",
             ("tests/test_multi_worker.py::test_multi_worker_refusals",)),
    Mutation("resume_forgets_its_previous_state", "colorize_tf/training/state.py",
             '        self.best = state.get("best")\n        self.previous = state\n',
             '        self.best = state.get("best")\n        self.previous = None\n',
             ("tests/test_training_state.py",)),
    Mutation("body_limit_off_by_one", "colorize_tf/serving/app.py",
             "            if size > limit:\n                raise rest_api.ApiError",
             "            if size >= limit:\n                raise rest_api.ApiError",
             ("tests/test_serve.py::"
              "test_a_body_of_exactly_the_limit_is_taken_and_one_byte_more_is_not",)),
    # Issue 41: removing the served version's folder reloaded the previous one on
    # every poll (the newest *loaded* version was kept, not the newest present).
    Mutation("poller_keeps_a_removed_version", "colorize_tf/serving/servables.py",
             "keep = newest if newest in available else (available[-1] if available else None)",
             "keep = available[-1] if available else None",
             ("tests/test_serve.py::"
              "test_a_malformed_version_is_skipped_and_removing_the_served_one_falls_back_once",)),
    # Issue 41: a truncated newest backup found only by the callback skipped an epoch.
    Mutation("resume_trusts_truncated_weights", "colorize_tf/training/state.py",
             'problem = _weights_problem(os.path.join(backup, state["weights"]))',
             "problem = None",
             ("tests/test_train.py::"
              "test_a_resume_from_a_truncated_newest_backup_replays_its_epoch_exactly",)),
    # Issue 41: a client hanging up mid-body was a 500 with a traceback in the log.
    Mutation("client_disconnect_is_an_internal_error", "colorize_tf/serving/app.py",
             "    except ClientDisconnect:", "    except ZeroDivisionError:",
             ("tests/test_serve.py::"
              "test_a_client_hanging_up_mid_body_is_logged_as_such_not_as_a_500",)),
    # Issue 41: a 40x6000 photo was stored with a 1-2 px high content box.
    Mutation("strip_stored_with_a_thin_box", "data_prep/prepare.py",
             "if min(fitted_h, fitted_w) < MIN_FITTED_SIDE:", "if min(fitted_h, fitted_w) < 1:",
             ("tests/test_prepare.py::test_a_strip_too_thin_once_fitted_is_skipped",)),
    # Issue 41: a decoder.json whose centres are not the model's bins was exported.
    Mutation("decoder_centres_not_checked_against_bins", "colorize_tf/chroma/decoding.py",
             "if decoder.kind == BINS and len(decoder.centres) != len(bins.centres):",
             "if decoder.kind == BINS and len(decoder.centres) < 1:",
             ("tests/test_decoding.py::test_a_damaged_decoder_file_is_one_error_naming_it",)),
    # Issue 41: --warm_start from variables cut short raised a bare IndexError.
    Mutation("cut_variables_escape_as_index_error", "colorize_tf/serving/inference.py",
             "except (ValueError, IndexError, tf.errors.OpError) as e:  # IndexError: cut short",
             "except (ValueError, tf.errors.OpError) as e:",
             ("tests/test_hints.py::test_train_a_hints_model_from_one_without",)),
    # Issue 41: one photo's hints given unwrapped to colorize_bytes said "got 'point'".
    Mutation("hints_of_an_image_not_checked_as_a_list", "colorize_tf/chroma/hints.py",
             "if hints is not None and not isinstance(hints, (list, tuple)):",
             "if hints is not None and not isinstance(hints, (list, tuple, dict)):",
             ("tests/test_hints.py::"
              "test_hints_for_a_different_number_of_photos_are_one_clear_error",)),
    # Issue 41: a full disk under TensorFlow's writers was an "internal error".
    Mutation("tf_disk_full_is_an_internal_error", "colorize_tf/cli.py",
             "    elif _DISK_FULL_TEXT in str(error):", "    elif False:",
             ("tests/test_cli.py::test_a_full_disk_is_one_line_naming_the_folder_written",)),
    # Issue 42: the family battery checks each family's declared stride and padding.
    Mutation("effnet_output_stride_misdeclared", "colorize_tf/modeling/effnet_colorizer.py",
             "output_stride=EFFNET_OUTPUT_STRIDE, pretrained=True,",
             "output_stride=1, pretrained=True,",
             ("tests/test_model_families.py",)),
    # Issue 41: Ctrl-C during a build printed every worker's traceback.
    Mutation("workers_take_ctrl_c", "data_prep/prepare.py",
             "    signal.signal(signal.SIGINT, signal.SIG_IGN)", "    pass",
             ("tests/test_build_records.py::"
              "test_a_worker_ignores_ctrl_c_so_that_the_parent_alone_handles_it",)),
    # Issue 40: per-photo scores, paired photo by photo across evaluations.
    Mutation("per_photo_files_in_path_order", "colorize_tf/evaluation/scoring.py",
             "        files = [cli.display_path(path) for path, _ in batch]",
             "        files = [cli.display_path(p) for p in paths[totals.evaluated:]"
             "[:len(batch)]]",
             ("tests/test_evaluation.py::test_per_photo_csv_holds_each_photos_own_scores",)),
    Mutation("paired_error_of_one_mean", "colorize_tf/evaluation/statistics.py",
             '"standard_error": float(d.std(ddof=1) / np.sqrt(n))',
             '"standard_error": float(d.std(ddof=0) / np.sqrt(n))',
             ("tests/test_evaluation.py::test_paired_difference_by_hand",)),
)


def _copy_tree(destination):
    """Tracked and untracked (not ignored) files of the repository, as CI sees them."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                            capture_output=True, check=True).stdout.split(b"\0")
    for rel in filter(None, listed):
        rel = os.fsdecode(rel)
        source = os.path.join(REPO, rel)
        if not os.path.isfile(source):
            continue
        target = os.path.join(destination, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(source, target)


def _run_tests(tree, tests):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", *tests], cwd=tree,
                            capture_output=True, text=True, env=env)
    return result.returncode, result.stdout.strip().splitlines()[-1:] or [""]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated mutation names")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only.split(",")]
    survived = []
    with tempfile.TemporaryDirectory(prefix="mutations-") as tree:
        _copy_tree(tree)
        tests = sorted({t for m in chosen for t in m.tests})
        start = time.time()
        code, last = _run_tests(tree, tests)
        print(f"baseline (no mutation): {last[0]} in {time.time() - start:.0f} s")
        if code != 0:
            print("the unmodified tree fails these tests: fix that first")
            return 2
        for mutation in chosen:
            path = os.path.join(tree, mutation.path)
            with open(path) as f:
                original = f.read()
            if original.count(mutation.old) != 1:
                print(f"{mutation.name}: its code was not found once in {mutation.path} "
                      "(update the mutation)")
                survived.append(mutation.name)
                continue
            with open(path, "w") as f:
                f.write(original.replace(mutation.old, mutation.new))
            start = time.time()
            code, last = _run_tests(tree, mutation.tests)
            with open(path, "w") as f:
                f.write(original)
            caught = code != 0
            if not caught:
                survived.append(mutation.name)
            print(f"{mutation.name:32s} {'caught' if caught else 'SURVIVED'} "
                  f"({last[0]}, {time.time() - start:.0f} s)", flush=True)
    print(f"{len(chosen) - len(survived)} of {len(chosen)} mutations caught"
          + (f"; survived: {', '.join(survived)}" if survived else ""))
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
