"""Adam for TensorFlow 2 variables, computed exactly as TF1's `tf.train.AdamOptimizer`.

Today's TF2 code takes `tf.keras.optimizers.Adam`. It computes the same
update, but not to the last bit: Keras raises beta1 and beta2 to the power t
where TF1 keeps running products in float32 variables, and rounds 1 - beta in
float64 where TF1 rounds it in float32. Training amplifies such last-bit
differences (the CNN's loss is 2% apart after 100 steps on the sample), so
the CNN's TF2 twin, meant to compute what the TF1 script computes, takes this
optimizer: TF1's ApplyAdam step, written in TF2 operations.

Each step, for every variable with gradient g (all in float32):

    alpha = learning_rate * sqrt(1 - beta2_power) / (1 - beta1_power)
    m += (g - m) * (1 - beta1)
    v += (g * g - v) * (1 - beta2)
    variable -= m * alpha / (sqrt(v) + epsilon)

and then beta1_power *= beta1 and beta2_power *= beta2 (both start at beta).
"""

from tutorial_support.quiet_tensorflow import tf


class Adam(tf.Module):
    """TF1's AdamOptimizer for TF2: `apply_gradients(zip(gradients, variables))`.

    Like a Keras optimizer it counts its steps in `iterations`, and goes into
    a `tf.train.Checkpoint` with its state.
    """

    def __init__(self, learning_rate, beta1=0.9, beta2=0.999, epsilon=1e-8):
        super().__init__(name='Adam')
        self.learning_rate = tf.constant(learning_rate, tf.float32)
        self.beta1 = tf.constant(beta1, tf.float32)
        self.beta2 = tf.constant(beta2, tf.float32)
        self.epsilon = tf.constant(epsilon, tf.float32)
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name='iterations')
        self.beta1_power = tf.Variable(beta1, dtype=tf.float32, trainable=False,
                                       name='beta1_power')
        self.beta2_power = tf.Variable(beta2, dtype=tf.float32, trainable=False,
                                       name='beta2_power')
        # The moving averages of each variable's gradient (m) and squared
        # gradient (v), made at the first step, in the order of the variables
        self.m, self.v = [], []

    def build(self, variables):
        """Makes the moving averages of the variables (once), as Keras optimizers' build().

        The first step does it; a checkpoint restored before that step
        (--resume) needs them made first, to fill them.
        """
        if self.m:
            return
        with tf.init_scope():  # made once, outside any tf.function's graph
            for variable in variables:
                self.m.append(tf.Variable(tf.zeros(variable.shape), trainable=False))
                self.v.append(tf.Variable(tf.zeros(variable.shape), trainable=False))

    def apply_gradients(self, gradients_and_variables):
        """One Adam step of every variable; the variables come in the same order each step."""
        gradients_and_variables = list(gradients_and_variables)
        self.build([variable for _, variable in gradients_and_variables])
        alpha = (self.learning_rate * tf.sqrt(1 - self.beta2_power)
                 / (1 - self.beta1_power))
        for (gradient, variable), m, v in zip(gradients_and_variables, self.m, self.v,
                                              strict=True):
            m.assign_add((gradient - m) * (1 - self.beta1))
            v.assign_add((tf.square(gradient) - v) * (1 - self.beta2))
            variable.assign_sub((m * alpha) / (tf.sqrt(v) + self.epsilon))
        self.beta1_power.assign(self.beta1_power * self.beta1)
        self.beta2_power.assign(self.beta2_power * self.beta2)
        self.iterations.assign_add(1)
