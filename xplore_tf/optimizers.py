"""Adam with TensorFlow's fused update kernel (the optimiser's share of a D step).

Keras 3's `Adam.update_step` is written with `keras.ops`: about ten element-wise ops per
variable, each a full pass over memory, a large share of a paper-width D step on a CPU
(`tools.bench_train --preset=paper128 --profile` shows it). TensorFlow's `ResourceApplyAdam`
kernel does the same update in one pass.
"""

from __future__ import annotations

import keras
import tensorflow as tf

_PACKAGE = "xplore_tf"


def _handle(variable):
    """The resource handle of a Keras or TensorFlow variable (the local copy in an update)."""
    return variable.value.handle if isinstance(variable, keras.Variable) else variable.handle


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` whose per-variable update is TensorFlow's `ResourceApplyAdam`.

    The same update as Keras' Adam (Kingma & Ba 2015, Algorithm 1 with the bias correction
    folded into the step size, epsilon added to sqrt(v)), which is also the formula of
    TensorFlow's fused kernel:

        lr_t = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
        m <- m + (g - m) (1 - beta_1);  v <- v + (g^2 - v) (1 - beta_2)
        w <- w - lr_t m / (sqrt(v) + epsilon)

    Results equal Keras' Adam up to float rounding (tested). Same variables and config as
    `keras.optimizers.Adam`, so checkpoints of either load into the other. `amsgrad=True`
    and non-float32 variables use Keras' own update.
    """

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or variable.dtype != tf.float32:
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        t = tf.cast(self.iterations + 1, tf.float32)
        beta_1 = tf.cast(self.beta_1, tf.float32)
        beta_2 = tf.cast(self.beta_2, tf.float32)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable),
            m=_handle(self._momentums[index]),
            v=_handle(self._velocities[index]),
            beta1_power=tf.pow(beta_1, t),
            beta2_power=tf.pow(beta_2, t),
            lr=tf.cast(learning_rate, tf.float32),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, tf.float32),
            grad=tf.cast(gradient, tf.float32),
        )
