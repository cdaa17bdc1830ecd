"""A small convolutional network for CIFAR-10 (part 3, the model).

The same four functions as `two_layer_fc.py`, so `run_cnn_model.py` reads like
`run_fc_model.py`:

1. `inference()`: two stages of convolution, ReLU, max-pooling and dropout,
   then a fully connected layer from the 8 x 8 x 64 = 4,096 features to the
   10 logits;
2. `loss()`: the mean softmax cross-entropy;
3. `training()`: an Adam step;
4. `evaluation()`: the accuracy, the two-layer network's own function.

Where it differs from the notebook, a comment at the line says how and why.
"""

import tensorflow.compat.v1 as tf

import two_layer_fc

FEATURES = 8 * 8 * 64  # what the second stage leaves of a 32 x 32 image


def inference(images, dropout_rate, dropout_seeds, classes=10):
    """Builds the network up to the logits.

    Args:
        images: float32 [batch, 32, 32, 3].
        dropout_rate: scalar float32 tensor, the fraction of activations
            dropped; 0 for evaluation.
        dropout_seeds: int64 [2, 2] tensor, the seed of each dropout layer's
            mask. The masks are a function of their seed alone (stateless), so
            a run resumed from a checkpoint, fed the same seeds at the same
            step, draws the very masks the uninterrupted run drew.
        classes: number of output classes.

    Returns:
        logits: float32 [batch, classes].
    """
    conv1_seed, conv2_seed = tf.unstack(dropout_seeds)

    with tf.variable_scope('conv1'):
        # 64 filters of 4 x 4 over the 3 colour channels: 32 x 32 x 3 -> 16 x 16 x 64
        stage1 = conv_stage(images, [4, 4, 3, 64], dropout_rate, conv1_seed)

    with tf.variable_scope('conv2'):
        # 64 filters of 2 x 2 over the 64 channels of stage 1: -> 8 x 8 x 64
        stage2 = conv_stage(stage1, [2, 2, 64, 64], dropout_rate, conv2_seed)

    with tf.variable_scope('fc'):
        # Flatten each image's 8 x 8 x 64 activations into one row of 4,096
        # (the notebook's tf.contrib.layers.flatten, gone with tf.contrib)
        features = tf.reshape(stage2, [-1, FEATURES])
        # A fully connected layer to the 10 logits, no activation: the notebook's
        # tf.contrib.layers.fully_connected(..., activation_fn=None), written out
        # with that function's defaults, Glorot-uniform weights and zero biases
        weights = tf.get_variable('weights', [FEATURES, classes],
                                  initializer=tf.glorot_uniform_initializer())
        biases = tf.get_variable('biases', [classes], initializer=tf.zeros_initializer())
        logits = tf.matmul(features, weights) + biases
        tf.summary.histogram('logits', logits)

    return logits


def conv_stage(inputs, filter_shape, dropout_rate, dropout_seed):
    """One stage of the network: convolution, ReLU, max-pooling, dropout.

    Args:
        inputs: float32 [batch, height, width, channels].
        filter_shape: [filter height, filter width, channels in, channels out].
        dropout_rate: the fraction of activations dropped (0 in evaluation).
        dropout_seed: int64 [2], the seed of this stage's dropout mask.

    Returns:
        float32 [batch, height / 2, width / 2, channels out].
    """
    # The filters, slid over the image one pixel at a time; Glorot
    # initialisation keeps the activations' scale about the same from layer
    # to layer. (The notebook creates both stages' filters in
    # initialize_parameters() with tf.contrib.layers.xavier_initializer, the
    # same distribution, and passes them in; here each stage makes its own,
    # conv1/filters and conv2/filters, as two_layer_fc.py's layers do.)
    filters = tf.get_variable('filters', filter_shape,
                              initializer=tf.glorot_uniform_initializer())
    conv = tf.nn.conv2d(inputs, filters, strides=[1, 1, 1, 1], padding='SAME')
    # The largest ReLU output of each 3 x 3 window, windows 2 pixels apart:
    # half the height and width.
    pool = tf.nn.max_pool2d(tf.nn.relu(conv), ksize=3, strides=2, padding='SAME')
    # Dropout: in training, a random fraction of the activations is set to 0
    # (the rest scaled up), so the network cannot lean on any one of them.
    # (The notebook passes rate 0.3 to a dropout built in inference mode, so it
    # never drops anything; here the rate is fed in training and 0 otherwise.)
    return tf.nn.experimental.stateless_dropout(pool, rate=dropout_rate, seed=dropout_seed)


def loss(logits, labels):
    """Adds the mean softmax cross-entropy, with a `loss` summary.

    Args:
        logits: float32 [batch, classes].
        labels: int64 [batch].

    Returns:
        The scalar loss tensor.
    """
    with tf.name_scope('Loss'):
        # The notebook one-hot encodes the labels and takes
        # softmax_cross_entropy_with_logits_v2; the sparse version computes the
        # same loss from the class numbers, which every part of the suite feeds.
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(logits=logits, labels=labels))
        tf.summary.scalar('loss', loss)
    return loss


def training(loss, learning_rate):
    """Adds one Adam step, which also increments the global step.

    Args:
        loss: the loss tensor.
        learning_rate: Adam's learning rate.

    Returns:
        The training op.
    """
    # The step counter is saved with the checkpoints, so a resumed run knows
    # where it stopped; the optimiser increments it.
    global_step = tf.train.get_or_create_global_step()
    optimizer = tf.train.AdamOptimizer(learning_rate)
    return optimizer.minimize(loss, global_step=global_step)


# The accuracy of a batch, with a `train_accuracy` summary: the very function
# of the two-layer network, since the accuracy does not depend on the model.
evaluation = two_layer_fc.evaluation
