"""A two-layer fully connected network for CIFAR-10 (part 2, the model).

The classic TensorFlow tutorial split into four functions:

1. `inference()` builds the network up to the logits;
2. `loss()` adds the cross-entropy and regularisation loss;
3. `training()` adds the op that computes and applies the gradients;
4. `evaluation()` adds the accuracy.

`run_fc_model.py` builds the graph from them and trains it.
"""

import math

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
    # The regulariser adds reg_constant * sum(w**2) / 2 for each weight matrix
    # to the regularisation-losses collection; loss() sums them up.
    def l2_regularizer(weights):
        return reg_constant * tf.nn.l2_loss(weights)

    with tf.variable_scope('Layer1'):
        # Weights start small and random (stddev 1/sqrt(fan-in)) so that the
        # hidden units begin different from each other and not saturated.
        weights = tf.get_variable(
            name='weights',
            shape=[image_pixels, hidden_units],
            initializer=tf.truncated_normal_initializer(
                stddev=1.0 / math.sqrt(float(image_pixels))),
            regularizer=l2_regularizer)
        biases = tf.get_variable(name='biases', shape=[hidden_units],
                                 initializer=tf.zeros_initializer())
        hidden = tf.nn.relu(tf.matmul(images, weights) + biases)

    with tf.variable_scope('Layer2'):
        weights = tf.get_variable(
            name='weights',
            shape=[hidden_units, classes],
            initializer=tf.truncated_normal_initializer(
                stddev=1.0 / math.sqrt(float(hidden_units))),
            regularizer=l2_regularizer)
        biases = tf.get_variable(name='biases', shape=[classes],
                                 initializer=tf.zeros_initializer())
        logits = tf.matmul(hidden, weights) + biases
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
        cross_entropy = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(logits=logits, labels=labels,
                                                           name='cross_entropy'))
        # The sum of the regularisation-losses collection filled by inference().
        loss = cross_entropy + tf.losses.get_regularization_loss()
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
    # The step counter is not trainable; the optimiser increments it, and it is
    # saved with the checkpoints so that a restored model knows its step.
    global_step = tf.train.get_or_create_global_step()
    optimizer = tf.train.GradientDescentOptimizer(learning_rate)
    return optimizer.minimize(loss, global_step=global_step)


def evaluation(logits, labels):
    """Adds the accuracy: the fraction of images whose top logit is the label.

    Args:
        logits: float32 [batch, classes].
        labels: int64 [batch].

    Returns:
        Scalar float32 accuracy of the batch.
    """
    with tf.name_scope('Accuracy'):
        correct_prediction = tf.equal(tf.argmax(logits, 1), labels)
        accuracy = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))
        tf.summary.scalar('train_accuracy', accuracy)
    return accuracy
