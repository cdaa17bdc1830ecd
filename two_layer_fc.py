"""A two-layer fully connected network for CIFAR-10 (part 2, the model).

The classic TensorFlow tutorial split into four functions:

1. `inference()` builds the network up to the logits;
2. `loss()` adds the cross-entropy and regularisation loss;
3. `training()` adds the op that computes and applies the gradients;
4. `evaluation()` adds the accuracy.

`run_fc_model.py` builds the graph from them and trains it.
"""

import numpy as np
import tensorflow.compat.v1 as tf


def inference(images, image_pixels, hidden_units, classes, reg_constant=0):
    """Builds the network: a ReLU hidden layer, then a linear layer to the logits.

    Args:
        images: images placeholder, float32 [batch, image_pixels].
        image_pixels: number of values per image (3,072 for CIFAR-10).
        hidden_units: size of the hidden layer.
        classes: number of output classes.
        reg_constant: L2 regularisation strength.

    Returns:
        logits: float32 [batch, classes].
    """
    # The L2 regulariser: get_variable puts reg_constant * sum(w**2) / 2 for
    # each weight matrix into the REGULARIZATION_LOSSES collection, which
    # loss() sums up. The post passes tf.contrib.layers.l2_regularizer, gone
    # with tf.contrib; this is its formula, written out (with reg_constant 0 it
    # adds zeros, where tf.contrib's added nothing and the post's loss failed).
    def l2_regularizer(weights):
        return reg_constant * tf.nn.l2_loss(weights)

    # Layer 1
    with tf.variable_scope('Layer1'):
        # Define the variables. The weights start small and random (stddev
        # 1/sqrt(fan-in)), so that the hidden units begin different from each
        # other and not saturated; the biases start at 0.
        weights = tf.get_variable(
            name='weights',
            shape=[image_pixels, hidden_units],
            initializer=tf.truncated_normal_initializer(
                stddev=1.0 / np.sqrt(float(image_pixels))),
            regularizer=l2_regularizer
        )
        biases = tf.Variable(tf.zeros([hidden_units]), name='biases')

        # Define the layer's output: the rectified linear unit of the weighted sum
        hidden = tf.nn.relu(tf.matmul(images, weights) + biases)

    # Layer 2
    with tf.variable_scope('Layer2'):
        # Define variables
        weights = tf.get_variable('weights', [hidden_units, classes],
                                  initializer=tf.truncated_normal_initializer(
                                      stddev=1.0 / np.sqrt(float(hidden_units))),
                                  regularizer=l2_regularizer)
        biases = tf.Variable(tf.zeros([classes]), name='biases')

        # Define the layer's output: no ReLU, the scores of the classes
        logits = tf.matmul(hidden, weights) + biases

        # Define summary-operation for 'logits'-variable
        tf.summary.histogram('logits', logits)

    return logits


def loss(logits, labels):
    """Adds the loss: mean cross-entropy plus the regularisation terms.

    Args:
        logits: float32 [batch, classes] from inference().
        labels: int64 [batch], the true classes.

    Returns:
        The scalar loss tensor.
    """
    with tf.name_scope('Loss'):
        # Operation to determine the cross entropy between logits and labels
        cross_entropy = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(logits=logits, labels=labels,
                                                           name='cross_entropy'))
        # Operation for the loss function: the cross entropy plus all the
        # regularisation terms inference() collected
        loss = cross_entropy + tf.add_n(tf.get_collection(tf.GraphKeys.REGULARIZATION_LOSSES))

        # Add a scalar summary for the loss
        tf.summary.scalar('loss', loss)
    return loss


def training(loss, learning_rate):
    """Adds the training op: one gradient-descent step that counts itself.

    Args:
        loss: the loss tensor from loss().
        learning_rate: the gradient-descent step size.

    Returns:
        The op that runs one training step.
    """
    # Create a variable to track the global step. It is saved with the
    # checkpoints, so a restored or resumed model knows its step. (The post's
    # tf.Variable(0) is int32; int64 is TensorFlow's own type for it, and the
    # type this suite's checkpoints have always stored.)
    global_step = tf.Variable(0, name='global_step', trainable=False, dtype=tf.int64)
    # Registered as the global step, so that the runner and its Ctrl-C
    # checkpoint find it with tf.train.get_global_step()
    tf.add_to_collection(tf.GraphKeys.GLOBAL_STEP, global_step)

    # Create a gradient descent optimizer
    # (which also increments the global step counter)
    train_step = tf.train.GradientDescentOptimizer(learning_rate).minimize(
        loss, global_step=global_step)

    return train_step


def evaluation(logits, labels):
    """Adds the accuracy: the fraction of images whose top logit is the label.

    Args:
        logits: float32 [batch, classes].
        labels: int64 [batch].

    Returns:
        Scalar float32 accuracy of the batch.
    """
    with tf.name_scope('Accuracy'):
        # Operation comparing prediction with true label
        correct_prediction = tf.equal(tf.argmax(logits, 1), labels)

        # Operation calculating the accuracy of the predictions
        accuracy = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))

        # Summary operation for the accuracy
        tf.summary.scalar('train_accuracy', accuracy)

    return accuracy
