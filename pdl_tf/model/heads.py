"""Prediction heads: a 5x5 depthwise-separable conv, then a 1x1 conv."""

import tensorflow as tf
import tf_keras

from pdl_tf.model.common import layers


class PredictionHead(tf_keras.layers.Layer):
  """Maps decoder features to ``output_channels`` predictions at OS4.

  Input: float [B, h, w, C]. Output: float32 [B, h, w, output_channels]
  (always float32, also under a mixed-precision policy, for stable losses).
  """

  def __init__(self, output_channels, head_channels, use_sync_bn=False,
               norm_momentum=0.99, norm_epsilon=1e-3, **kwargs):
    super().__init__(**kwargs)
    self._separable = layers.SeparableConvBN(
        head_channels, 5, use_sync_bn=use_sync_bn,
        norm_momentum=norm_momentum, norm_epsilon=norm_epsilon,
        name='separable')
    self._classifier = tf_keras.layers.Conv2D(
        output_channels, 1, use_bias=True, name='classifier',
        kernel_initializer=tf_keras.initializers.TruncatedNormal(stddev=0.01))

  @property
  def classifier_variables(self):
    """[kernel [1, 1, C, output_channels], bias [output_channels]] of the
    final 1x1 conv (empty before the head is built)."""
    return list(self._classifier.weights)

  def call(self, inputs, training=None):
    x = self._classifier(self._separable(inputs, training=training))
    return tf.cast(x, tf.float32)
