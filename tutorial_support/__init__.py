"""What the tutorial scripts need that the blog posts do not teach.

The lesson is in the scripts at the top of the project (`softmax.py`,
`two_layer_fc.py`, `run_fc_model.py`, ...). They call this package by name,
one line at a time: `cli.parse_flags(...)`, `run_lock.locked(run_dir)`,
`checkpoints.checked_restore(...)`. Nothing here is needed to follow a post;
everything here keeps a learner's data, runs and machine safe and the messages
clear. The package imports no lesson script.

Getting CIFAR-10:
    cifar10_download   fetching the archive, only into the default folder
    cifar10_archive    its checksums, and unpacking it member by member
    cifar10_files      reading a batch file without running code from it
    photos             --image: opening a PNG or JPEG safely; the mean image
    damaged_images     photos cut short that a decoder would fill in without a word

Running a script:
    quiet_tensorflow   TensorFlow's start-up notes kept off the terminal
    errors             the errors a user can fix, and the full-disk table
    entry_point        run_main: one paragraph and an exit code per error
    stop_signals       Ctrl-C, SIGTERM, SIGHUP: noted, acted on, exit 128 + n
    output_streams     closed, broken or full stdout/stderr never stop a run
    cli                the flags: defining, parsing, checking, printing

A training run:
    run_dirs           run folders, their names and their params.json
    run_lock           the lock that keeps two processes out of one run
    resume             what --resume continues, and with which settings
    checkpoints        finding checkpoints, restoring them with checks
    training_stops     a diverging loss, a stop signal and a failed save
    prefetch           gathering the next batch while a step trains (the TF1 runners)
    batch_eval         do_eval: accuracy over a set, 1,000 images at a time (and for TF2)
    progress           the progress bar on a terminal (plain lines in a notebook)

TensorBoard:
    summaries          scalars, pictures, HParams
    confusion          the confusion matrix, printed and drawn
    pictures           weights, filters and guesses drawn as pictures
    projector          the Projector's files: where the test images lie

The notebooks (notebooks/, imported by no lesson file):
    notebook_runs      a kernel's setup; run_script: a script run in it, its errors
    notebook_views     lesson source, curves and a run's pictures, shown inline

The TF2 twins (tf2/):
    tf2_summaries      a run's TF2 writers, numbers at a step, what a run learned
    tf1_checkpoints    --restore_tf1, --init_from_tf1: a TF1 checkpoint read by name
    tf2_checkpoints    --resume of a twin: its own checkpoint, restored with checks

The Keras way (tf2/keras_*.py):
    keras_runs         --resume with BackupAndRestore, stops between steps, HParams
"""
