"""Which tests check which module: the targets of mutate.py, cheapest tests first."""

# module: (its file, the tests that check it, cheapest first: a mutant's tests run
# in this order and stop at the first failure)
TB = 'tests/test_tensorboard_files.py::'
SEEDS = 'tests/test_seeds_and_validation.py::'
SIGNALS = 'tests/test_signals.py::'
DEEP = 'tests/test_deep_cnn_model.py::'
TARGETS = {
    'data_helpers': ('data_helpers.py', [
        'tests/test_data_helpers.py', 'tests/test_cifar10_files.py',
        'tests/test_runner_feeds.py']),
    'two_layer_fc': ('two_layer_fc.py', [
        'tests/test_models.py', 'tests/test_runner_feeds.py', 'tests/test_fc_runner.py',
        TB + 'test_fc_summaries_every_100_steps',
        TB + 'test_fc_hparams_and_accuracy_for_tensorboard']),
    'cnn_model': ('cnn_model.py', [
        'tests/test_models.py', 'tests/test_runner_feeds.py', 'tests/test_cnn_runner.py',
        TB + 'test_cnn_accuracy_charts_share_the_step_axis']),
    'softmax': ('softmax.py', [
        'tests/test_runner_feeds.py', 'tests/test_softmax.py', 'tests/test_cifar10_files.py',
        SEEDS + 'test_softmax_same_seed_same_lines',
        SIGNALS + 'test_softmax_ends_on_sigterm_with_a_message',
        'tests/test_reports.py::test_softmax_confusion_matrix_agrees_with_its_test_accuracy']),
    'run_fc_model': ('run_fc_model.py', [
        'tests/test_runner_feeds.py', 'tests/test_fc_runner.py',
        TB + 'test_fc_summaries_every_100_steps',
        TB + 'test_fc_hparams_and_accuracy_for_tensorboard',
        TB + 'test_fc_first_layer_weights_as_pictures',
        TB + 'test_fc_projector_shows_the_hidden_layer_of_the_test_images',
        'tests/test_reports.py',
        SEEDS + 'test_fc_same_seed_same_lines', SEEDS + 'test_fc_validation_size',
        'tests/test_resume.py', 'tests/test_training_failures.py',
        SIGNALS + 'test_signal_inside_sess_run_lets_the_step_finish',
        SIGNALS + 'test_second_signal_during_the_save_lets_it_finish',
        'tests/test_restore.py::test_moved_train_dir_restores_its_own_checkpoint',
        'tests/test_flags.py::test_batch_larger_than_training_set',
        TB + 'test_the_graph_shows_the_placeholders_as_the_post_names_them']),
    'run_cnn_model': ('run_cnn_model.py', [
        'tests/test_runner_feeds.py', 'tests/test_cnn_runner.py',
        TB + 'test_cnn_accuracy_charts_share_the_step_axis',
        TB + 'test_cnn_first_layer_filters_as_pictures',
        TB + 'test_cnn_projector_shows_the_features_of_the_test_images',
        SEEDS + 'test_cnn_same_seed_same_lines', SEEDS + 'test_cnn_validation_size',
        'tests/test_resume.py::test_cnn_resumed_mid_epoch_equals_the_uninterrupted_run',
        'tests/test_restore.py::test_restore_detects_the_cnn_and_repeats_its_test_accuracy',
        TB + 'test_the_graph_shows_the_placeholders_as_the_post_names_them',
        'tests/test_training_failures.py::test_diverging_loss_stops_without_saving',
        'tests/test_training_failures.py::test_disk_full_at_the_first_save',
        'tests/test_training_failures.py::'
        'test_cnn_disk_full_at_an_epoch_checkpoint_keeps_the_one_before',
        'tests/test_reports.py',
        'tests/test_resume.py::test_fc_and_cnn_runs_in_one_train_dir']),
    'cifar10_files': ('tutorial_support/cifar10_files.py', [
        'tests/test_cifar10_files.py', 'tests/test_data_helpers.py']),
    'run_lock': ('tutorial_support/run_lock.py', [
        'tests/test_resume_refusals.py']),
    'stop_signals': ('tutorial_support/stop_signals.py', [
        SIGNALS + 'test_signal_inside_sess_run_lets_the_step_finish',
        SIGNALS + 'test_second_signal_during_the_save_lets_it_finish',
        SIGNALS + 'test_second_signal_before_the_save_stops_at_once_and_says_what_is_kept',
        SIGNALS + 'test_softmax_ends_on_sigterm_with_a_message',
        SIGNALS + 'test_sighup_ignored_when_started_stays_ignored',
        SIGNALS + 'test_signal_while_the_stopped_run_closes_its_files',
        'tests/test_resume.py::test_interrupted_run_resumes_to_its_own_max_steps',
        SIGNALS + 'test_sigterm_while_the_script_starts',
        SIGNALS + 'test_signal_saves_a_checkpoint_and_says_how_to_resume',
        SIGNALS + 'test_sigterm_stops_the_cnn_with_a_checkpoint',
        SIGNALS + 'test_signal_while_the_data_loads_stops_at_once',
        SIGNALS + 'test_a_script_ending_on_a_signal_ignores_further_ones',
        SIGNALS + 'test_sigterm_while_a_program_imports_a_lesson',
        SIGNALS + 'test_signal_after_tensorflow_loads_and_before_main_stops_the_script',
        SIGNALS + 'test_a_program_stopped_while_tensorflow_loads_ignores_further_signals',
        'tests/test_output_streams.py::test_terminal_closed_sighup_with_both_streams_broken']),
    'deep_cnn_input': ('deep_cnn_input.py', [
        'tests/test_deep_cnn_input.py',
        DEEP + 'test_alternating_flip_shows_each_image_both_ways_in_any_two_epochs',
        DEEP + 'test_translations_reach_every_offset_on_both_axes_about_equally_often']),
    # Only its function learning_rate_schedule (see ONLY_FUNCTIONS)
    'deep_cnn_schedule': ('deep_cnn_model.py', [
        DEEP + 'test_learning_rate_schedule_is_airbench_get_lr',
        DEEP + 'test_learning_rate_schedule_without_warmup_starts_at_the_full_rate',
        DEEP + 'test_each_group_learns_at_airbench_rate_with_coupled_weight_decay']),
    'checkpoints': ('tutorial_support/checkpoints.py', [
        'tests/test_training_failures.py::test_a_stopped_tf2_run_names_its_tf2_checkpoint',
        SIGNALS + 'test_a_stop_whose_checkpoint_is_not_all_on_disk_says_so',
        'tests/test_restore.py', 'tests/test_resume_refusals.py', 'tests/test_resume.py',
        'tests/test_deep_cnn_runner.py::'
        'test_restore_finds_the_deep_cnn_and_repeats_its_test_accuracy',
        # last: slow (a worker trains nine TF2 runs), the only test of a TF2 twin's
        # checkpoints looked for in tf2_checkpoints/ alone
        'tests/test_tf2_resume.py']),
    'resume': ('tutorial_support/resume.py', [
        'tests/test_resume_refusals.py', 'tests/test_resume.py',
        SIGNALS + 'test_signal_inside_sess_run_lets_the_step_finish',
        SIGNALS + 'test_second_signal_before_the_save_stops_at_once_and_says_what_is_kept',
        SIGNALS + 'test_signal_saves_a_checkpoint_and_says_how_to_resume']),
}

# Targets of which only some functions are mutated (the module's other functions
# are another target's, or nobody's yet)
ONLY_FUNCTIONS = {'deep_cnn_schedule': ['learning_rate_schedule']}
