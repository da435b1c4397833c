"""Building blocks of the Panoptic-DeepLab decoders and heads.

All layers create their sub-layers in ``__init__`` so that a mixed-precision
policy active at construction time applies to every weight.
"""

import tensorflow as tf
import tf_keras


def resize_align_corners(images, size):
  """Bilinear resize with ``align_corners=True`` (the DeepLab convention).

  With this convention a feature map of size ``(H - 1) / s + 1`` maps exactly
  onto an input of size ``H`` (e.g. 1025x2049 at output stride 16 or 32), and
  any other size is stretched consistently between training and inference.

  Args:
    images: float tensor [B, h, w, C].
    size: int32 tensor or list [2], the target (H, W).

  Returns:
    Tensor [B, H, W, C] in the dtype of ``images``.
  """
  resized = tf.raw_ops.ResizeBilinear(
      images=images, size=size, align_corners=True, half_pixel_centers=False)
  return tf.cast(resized, images.dtype)


def spatial_mean(inputs, axis=(1, 2)):
  """Mean over the pixels, accumulated in float32 under any dtype policy.

  A float16 ``tf.reduce_mean`` accumulates in float16 on CPU: over the
  129x257 pixels of a MobileNetV3-Large squeeze-excite it returns 0.25
  where the mean is 0.80 (the running sum stops growing once its spacing
  exceeds the values added). So the reduction runs in float32 and only
  the result is cast back.

  Args:
    inputs: float tensor [B, H, W, C] (float16, bfloat16 or float32).
    axis: the pixel axes (``[1, 2]`` channels-last).

  Returns:
    [B, 1, 1, C] (keepdims) in the dtype of ``inputs``.
  """
  mean = tf.reduce_mean(tf.cast(inputs, tf.float32), axis=list(axis),
                        keepdims=True)
  return tf.cast(mean, inputs.dtype)


def batch_norm(use_sync_bn, momentum, epsilon, name=None):
  """Returns a (synchronized, if asked) batch-normalization layer."""
  if use_sync_bn:
    return tf_keras.layers.experimental.SyncBatchNormalization(
        momentum=momentum, epsilon=epsilon, name=name)
  return tf_keras.layers.BatchNormalization(
      momentum=momentum, epsilon=epsilon, name=name)


def hard_swish(x):
  """x * relu6(x + 3) / 6 (MobileNetV3; deeplab2's 'hard_swish')."""
  return x * tf.nn.relu6(x + 3.0) * (1.0 / 6.0)


# Activations by name; True / False are kept for 'relu' / 'none'.
_ACTIVATIONS = {'relu': tf.nn.relu, 'hard_swish': hard_swish, 'none': None}


def activation_fn(activation):
  """The function of activation ``'relu'``, ``'hard_swish'`` or ``'none'``
  (also True = 'relu', False / None = 'none'); None for no activation.

  Raises:
    ValueError: unknown name.
  """
  if activation is True:
    activation = 'relu'
  elif activation is False or activation is None:
    activation = 'none'
  if activation not in _ACTIVATIONS:
    raise ValueError(f'Unknown activation {activation!r}; known: '
                     f'{", ".join(_ACTIVATIONS)}.')
  return _ACTIVATIONS[activation]


def symmetric_padding(kernel_size, dilation_rate=1):
  """[[top, bottom], [left, right]] zero padding of a strided conv that
  centres the kernel: (k_eff - 1) // 2 before, the rest after, with
  k_eff = k + (k - 1)(dilation - 1) (deeplab2's Conv2DSame, ResNet stems).

  Keras 'same' instead pads by the output size: at an even input size and
  stride 2 it puts one pixel less before (3x3: 0 and 1; 7x7: 2 and 3), a
  sampling grid shifted by one pixel.
  """
  effective = kernel_size + (kernel_size - 1) * (dilation_rate - 1)
  before = (effective - 1) // 2
  return [[before, effective - 1 - before]] * 2


class ConvBN(tf_keras.layers.Layer):
  """Conv2D (no bias) + batch norm + optional activation.

  ``activation``: True / 'relu', 'hard_swish', or False / 'none'.
  ``explicit_padding``: strided convs pad symmetrically
  (``symmetric_padding``) instead of with Keras 'same'; stride-1 convs are
  the same either way.
  """

  def __init__(self, filters, kernel_size, strides=1, dilation_rate=1,
               activation=True, use_sync_bn=False, norm_momentum=0.99,
               norm_epsilon=1e-3, explicit_padding=False, **kwargs):
    super().__init__(**kwargs)
    self._padding = (symmetric_padding(kernel_size, dilation_rate)
                     if explicit_padding and strides > 1 else None)
    self._conv = self._make_conv(
        filters, kernel_size, strides=strides,
        padding='valid' if self._padding else 'same',
        dilation_rate=dilation_rate, use_bias=False)
    self._bn = batch_norm(use_sync_bn, norm_momentum, norm_epsilon, 'bn')
    self._activation = activation_fn(activation)

  def _make_conv(self, filters, kernel_size, **kwargs):
    return tf_keras.layers.Conv2D(filters, kernel_size,
                                  kernel_initializer='he_normal', name='conv',
                                  **kwargs)

  def call(self, inputs, training=None):
    if self._padding:
      inputs = tf.pad(inputs, [[0, 0]] + self._padding + [[0, 0]])
    x = self._bn(self._conv(inputs), training=training)
    return self._activation(x) if self._activation else x


class DepthwiseConvBN(ConvBN):
  """DepthwiseConv2D (no bias) + batch norm + optional activation, with
  ConvBN's padding and activation options (MobileNet blocks)."""

  def __init__(self, kernel_size, strides=1, dilation_rate=1, **kwargs):
    super().__init__(None, kernel_size, strides, dilation_rate, **kwargs)

  def _make_conv(self, filters, kernel_size, **kwargs):
    del filters  # a depthwise conv keeps the channels
    return tf_keras.layers.DepthwiseConv2D(
        kernel_size, depthwise_initializer='he_normal', name='depthwise',
        **kwargs)


class SeparableConvBN(tf_keras.layers.Layer):
  """Depthwise KxK conv + BN + ReLU, then pointwise 1x1 conv + BN + ReLU.

  The paper's decoder and heads use one 5x5 depthwise-separable conv of this
  form per stage.
  """

  def __init__(self, filters, kernel_size=5, use_sync_bn=False,
               norm_momentum=0.99, norm_epsilon=1e-3, **kwargs):
    super().__init__(**kwargs)
    self._depthwise = tf_keras.layers.DepthwiseConv2D(
        kernel_size, padding='same', use_bias=False,
        depthwise_initializer='he_normal', name='depthwise')
    self._depthwise_bn = batch_norm(
        use_sync_bn, norm_momentum, norm_epsilon, 'depthwise_bn')
    self._pointwise = ConvBN(
        filters, 1, use_sync_bn=use_sync_bn, norm_momentum=norm_momentum,
        norm_epsilon=norm_epsilon, name='pointwise')

  def call(self, inputs, training=None):
    x = self._depthwise_bn(self._depthwise(inputs), training=training)
    return self._pointwise(tf.nn.relu(x), training=training)


class ResumableDropout(tf_keras.layers.Layer):
  """Dropout whose masks a checkpoint reproduces.

  Keras' Dropout draws from a random state that checkpoints do not hold, so
  a run resumed from a checkpoint would draw other masks than the run it
  continues. Here the mask of a training call is a stateless draw from
  (seed, number of earlier training calls, replica id); that count is a
  weight of the layer, saved and restored with the model.

  Input and output: float [...], scaled by 1 / (1 - rate) where kept.
  """

  def __init__(self, rate, seed, **kwargs):
    super().__init__(**kwargs)
    if not 0 <= rate < 1:
      raise ValueError(f'dropout rate must be in [0, 1), got {rate}.')
    self.rate = rate
    self.seed = int(seed)
    self._calls = None

  def build(self, input_shape):
    self._calls = self.add_weight(
        'training_calls', shape=[], dtype=tf.int64, trainable=False,
        initializer='zeros',
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    super().build(input_shape)

  def call(self, inputs, training=None):
    if not training or self.rate == 0:
      return inputs
    context = tf.distribute.get_replica_context()
    replica = context.replica_id_in_sync_group if context else 0
    seed = tf.random.experimental.stateless_fold_in(
        tf.stack([tf.constant(self.seed, tf.int64), self._calls.value()]),
        tf.cast(replica, tf.int64))
    outputs = tf.nn.experimental.stateless_dropout(inputs, self.rate, seed)
    self._calls.assign_add(1)
    return outputs

  def get_config(self):
    return {**super().get_config(), 'rate': self.rate, 'seed': self.seed}


class ASPP(tf_keras.layers.Layer):
  """Atrous spatial pyramid pooling with a size-agnostic image-pooling branch.

  Branches: one 1x1 conv, one 3x3 atrous conv per rate, and global average
  pooling (``spatial_mean``, float32 accumulation) + 1x1 conv broadcast back to the feature size. The pooling branch
  averages over whatever spatial size arrives (no fixed pooling kernel), so
  the layer works for any crop or image size. Branches are concatenated,
  projected with a 1x1 conv and passed through dropout (ResumableDropout,
  seeded by ``dropout_seed``).

  Input: float [B, h, w, C_in]. Output: [B, h, w, channels].
  """

  def __init__(self, channels=256, atrous_rates=(6, 12, 18),
               dropout_rate=0.1, use_sync_bn=False, norm_momentum=0.99,
               norm_epsilon=1e-3, dropout_seed=0, **kwargs):
    super().__init__(**kwargs)
    norm = dict(use_sync_bn=use_sync_bn, norm_momentum=norm_momentum,
                norm_epsilon=norm_epsilon)
    self._branches = [ConvBN(channels, 1, name='conv1x1', **norm)]
    for rate in atrous_rates:
      self._branches.append(
          ConvBN(channels, 3, dilation_rate=rate, name=f'atrous_{rate}',
                 **norm))
    self._pool_conv = ConvBN(channels, 1, name='pool_conv', **norm)
    self._project = ConvBN(channels, 1, name='project', **norm)
    self._dropout = ResumableDropout(dropout_rate, dropout_seed,
                                     name='dropout')

  def call(self, inputs, training=None):
    outputs = [branch(inputs, training=training) for branch in self._branches]
    pooled = spatial_mean(inputs)  # float32 accumulation, any policy
    pooled = self._pool_conv(pooled, training=training)
    # Broadcast [B, 1, 1, C] to [B, h, w, C] (bilinear resize of a 1x1 map).
    outputs.append(pooled * tf.ones_like(outputs[0][..., :1]))
    x = self._project(tf.concat(outputs, axis=-1), training=training)
    return self._dropout(x, training=training)
