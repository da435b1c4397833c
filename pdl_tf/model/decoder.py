"""The Panoptic-DeepLab decoder: ASPP, then fusion of OS8 and OS4 features."""

import zlib

import tensorflow as tf
import tf_keras

from pdl_tf.model.common import layers


class PanopticDeepLabDecoder(tf_keras.layers.Layer):
  """One branch (semantic or instance) of the dual decoder.

  The high-level feature goes through an ASPP; then, for each low-level
  feature (OS8, then OS4), the low-level feature is projected with a 1x1 conv,
  the running feature is bilinearly upsampled to its size, both are
  concatenated and fused with a single 5x5 depthwise-separable conv.

  Inputs: ``(high, lows)`` with high float [B, h, w, C] and lows a list of
  float tensors [B, h_i, w_i, C_i] from coarse to fine.
  Output: float [B, h_last, w_last, decoder_channels].
  """

  def __init__(self, low_level_channels=(64, 32), decoder_channels=256,
               aspp_channels=256, atrous_rates=(6, 12, 18), dropout_rate=0.1,
               use_sync_bn=False, norm_momentum=0.99, norm_epsilon=1e-3,
               **kwargs):
    super().__init__(**kwargs)
    norm = dict(use_sync_bn=use_sync_bn, norm_momentum=norm_momentum,
                norm_epsilon=norm_epsilon)
    # Each decoder its own dropout stream, fixed by its name.
    self._aspp = layers.ASPP(aspp_channels, atrous_rates, dropout_rate,
                             dropout_seed=zlib.crc32(self.name.encode()),
                             name='aspp', **norm)
    self._projections = [
        layers.ConvBN(channels, 1, name=f'project_{i}', **norm)
        for i, channels in enumerate(low_level_channels)]
    self._fusions = [
        layers.SeparableConvBN(decoder_channels, 5, name=f'fuse_{i}', **norm)
        for i in range(len(low_level_channels))]

  def call(self, inputs, training=None):
    high, lows = inputs
    x = self._aspp(high, training=training)
    for low, project, fuse in zip(lows, self._projections, self._fusions):
      low = project(low, training=training)
      x = layers.resize_align_corners(x, tf.shape(low)[1:3])
      x = fuse(tf.concat([x, low], axis=-1), training=training)
    return x
