"""Backbones as deeplab2 builds them, so that its checkpoints load.

google-research/deeplab2 builds its Panoptic-DeepLab backbones differently
from Model Garden's (``backbones.py``); these reproduce its networks,
layer for layer:

- MobileNetV3-Small / -Large (deeplab2 ``model/encoder/mobilenet.py``,
  ``model/layers/blocks.py``): squeeze-excite gated by a plain sigmoid on
  ``make_divisible(expanded * 0.25)`` channels, applied after the
  depthwise conv; the stride-4 and stride-8 features are the activated
  depthwise outputs (before squeeze-excite) of the last block at that
  stride; the last feature is the final 1x1 conv (576 / 960 channels).
  Past the output stride, strides become 1 and later depthwise convs dilate.
- ResNet-50 and ResNet-50-Beta (``model/encoder/axial_resnet.py``,
  ``axial_resnet_instances.py``, ``model/layers/axial_blocks.py``,
  ``stems.py``): a 7x7 stride-2 stem (Beta: three 3x3 convs, 64/64/128)
  and no max-pool: the first block of stage 2 strides instead; each stage
  strides in its first block's 3x3 conv (and 1x1 shortcut). At output
  stride 16 stage 5 does not stride; its first block has dilation 1, the
  others 2.

Strided convs pad symmetrically (``layers.symmetric_padding``), as
deeplab2's ``Conv2DSame``. Output: a dict like ``backbones.py``'s, ``'2'``
(stride 4), ``'3'`` (stride 8) and ``str(log2(output_stride))``.
``deeplab2_variables(prefix)`` maps deeplab2's checkpoint keys onto the
weights (see ``deeplab2_layout``).
"""

import math

import tensorflow as tf
import tf_keras

from pdl_tf.model.backbones import deeplab2_layout
from pdl_tf.model.common import layers
from pdl_tf.model.common import names

# (block, kernel, stride, filters, activation, se_ratio, expand_ratio,
#  endpoint): MobileNetV3 (Howard et al., ICCV 2019, tables 1 and 2) as in
# deeplab2 model/encoder/mobilenet.py; 'conv' is conv + BN + act.
_HS, _RE = 'hard_swish', 'relu'
MOBILENET_V3_SPECS = {
    'small': (
        ('conv', 3, 2, 16, _HS, None, None, True),
        ('ib', 3, 2, 16, _RE, 0.25, 1, True),
        ('ib', 3, 2, 24, _RE, None, 72 / 16, False),
        ('ib', 3, 1, 24, _RE, None, 88 / 24, True),
        ('ib', 5, 2, 40, _HS, 0.25, 4, False),
        ('ib', 5, 1, 40, _HS, 0.25, 6, False),
        ('ib', 5, 1, 40, _HS, 0.25, 6, False),
        ('ib', 5, 1, 48, _HS, 0.25, 3, False),
        ('ib', 5, 1, 48, _HS, 0.25, 3, True),
        ('ib', 5, 2, 96, _HS, 0.25, 6, False),
        ('ib', 5, 1, 96, _HS, 0.25, 6, False),
        ('ib', 5, 1, 96, _HS, 0.25, 6, False),
        ('conv', 1, 1, 576, _HS, None, None, True)),
    'large': (
        ('conv', 3, 2, 16, _HS, None, None, False),
        ('ib', 3, 1, 16, _RE, None, 1, True),
        ('ib', 3, 2, 24, _RE, None, 4, False),
        ('ib', 3, 1, 24, _RE, None, 3, True),
        ('ib', 5, 2, 40, _RE, 0.25, 3, False),
        ('ib', 5, 1, 40, _RE, 0.25, 3, False),
        ('ib', 5, 1, 40, _RE, 0.25, 3, True),
        ('ib', 3, 2, 80, _HS, None, 6, False),
        ('ib', 3, 1, 80, _HS, None, 2.5, False),
        ('ib', 3, 1, 80, _HS, None, 2.3, False),
        ('ib', 3, 1, 80, _HS, None, 2.3, False),
        ('ib', 3, 1, 112, _HS, 0.25, 6, False),
        ('ib', 3, 1, 112, _HS, 0.25, 6, True),
        ('ib', 5, 2, 160, _HS, 0.25, 6, False),
        ('ib', 5, 1, 160, _HS, 0.25, 6, False),
        ('ib', 5, 1, 160, _HS, 0.25, 6, False),
        ('conv', 1, 1, 960, _HS, None, None, True)),
}
RESNET50_BLOCKS = (3, 4, 6, 3)


def make_divisible(value, divisor=8, min_value=None):
  """Rounds ``value`` to a multiple of ``divisor`` (>= min_value, default
  divisor), going up a step when rounding lost more than 10%: the channel
  rule of MobileNets (deeplab2 ``model/utils.py`` ``make_divisible``)."""
  min_value = divisor if min_value is None else min_value
  rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
  return rounded + divisor if rounded < 0.9 * value else rounded


class SqueezeExcite(tf_keras.layers.Layer):
  """Mean over H, W (in float32) -> 1x1 conv + ReLU -> 1x1 conv -> sigmoid
  -> scale.

  Input and output: float [B, H, W, channels].
  """

  def __init__(self, channels, reduced, **kwargs):
    super().__init__(**kwargs)
    self._reduce = tf_keras.layers.Conv2D(
        reduced, 1, use_bias=True, kernel_initializer='he_normal',
        name='reduce')
    self._expand = tf_keras.layers.Conv2D(
        channels, 1, use_bias=True, kernel_initializer='he_normal',
        name='expand')

  def call(self, inputs):
    x = layers.spatial_mean(inputs)  # float32 accumulation, any policy
    x = tf.sigmoid(self._expand(tf.nn.relu(self._reduce(x))))
    return inputs * x


class InvertedBottleneck(tf_keras.layers.Layer):
  """Expand 1x1 (if ratio > 1) -> depthwise KxK -> [squeeze-excite] ->
  project 1x1 (no activation) [+ input].

  Call returns (output, depthwise output), float [B, h, w, C] each.
  """

  def __init__(self, in_filters, out_filters, expand_ratio, kernel_size,
               strides, dilation_rate, activation, se_ratio, residual,
               name=None, **norm):
    super().__init__(name=name)
    expanded = in_filters
    self._expand = None
    if expand_ratio > 1:
      expanded = make_divisible(in_filters * expand_ratio)
      self._expand = layers.ConvBN(expanded, 1, activation=activation,
                                   name='expand', **norm)
    self._depthwise = layers.DepthwiseConvBN(
        kernel_size, strides, dilation_rate, activation=activation,
        explicit_padding=True, name='depthwise', **norm)
    self._se = None
    if se_ratio:
      self._se = SqueezeExcite(
          expanded, make_divisible(max(1, int(expanded * se_ratio))),
          name='squeeze_excite')
    self._project = layers.ConvBN(out_filters, 1, activation='none',
                                  name='project', **norm)
    self._residual = residual and in_filters == out_filters

  def call(self, inputs, training=None):
    x = inputs
    if self._expand is not None:
      x = self._expand(x, training=training)
    depthwise = self._depthwise(x, training=training)
    x = self._se(depthwise) if self._se is not None else depthwise
    x = self._project(x, training=training)
    return (x + inputs if self._residual else x), depthwise

  def deeplab2_variables(self, prefix):
    # pylint: disable=protected-access
    keys = deeplab2_layout.depthwise_bn_variables(f'{prefix}/_conv2_bn_act',
                                                  self._depthwise)
    if self._expand is not None:
      keys.update(deeplab2_layout.conv_bn_variables(
          f'{prefix}/_conv1_bn_act', self._expand))
    if self._se is not None:
      se = f'{prefix}/_squeeze_excitation'
      keys.update(deeplab2_layout.conv_bias_variables(f'{se}/_se_reduce',
                                                      self._se._reduce))
      keys.update(deeplab2_layout.conv_bias_variables(f'{se}/_se_expand',
                                                      self._se._expand))
    keys.update(deeplab2_layout.conv_bn_variables(f'{prefix}/_conv3_bn',
                                                  self._project))
    return keys


class MobileNetV3(tf_keras.Model):
  """deeplab2's MobileNetV3 up to its res5 feature (see module docstring).

  Args:
    size: 'small' or 'large'.
    output_stride: 16 or 32.
    width_multiplier: channel multiplier (make_divisible by 8).
    **norm: use_sync_bn, norm_momentum, norm_epsilon.
  """

  def __init__(self, size, output_stride=16, width_multiplier=1.0, **norm):
    super().__init__(name=f'deeplab2_mobilenet_v3_{size}')
    self._blocks, self._endpoints = [], []
    stride, rate, level, in_filters = 1, 1, 1, 3
    for index, spec in enumerate(MOBILENET_V3_SPECS[size]):
      kind, kernel, spec_stride, filters, act, se, expand, endpoint = spec
      filters = make_divisible(filters * width_multiplier)
      if stride == output_stride:  # atrous from here on (mobilenet.py)
        layer_stride, layer_rate, rate = 1, rate, rate * spec_stride
      else:
        layer_stride, layer_rate, stride = spec_stride, 1, stride * spec_stride
      name = f'block_{index}'
      if kind == 'conv':
        block = layers.ConvBN(filters, kernel, layer_stride, layer_rate, act,
                              explicit_padding=True, name=name, **norm)
      else:
        block = InvertedBottleneck(
            in_filters, filters, expand, kernel, layer_stride,
            layer_rate if kernel > 1 else 1, act, se, spec_stride == 1,
            name=name, **norm)
      self._blocks.append(block)
      self._endpoints.append(f'res{level}' if endpoint else None)
      level += endpoint
      in_filters = filters
    self._keys = {'res2': '2', 'res3': '3',
                  'res5': str(int(math.log2(output_stride)))}

  def call(self, images, training=None):
    x, features = images, {}
    for block, endpoint in zip(self._blocks, self._endpoints):
      if isinstance(block, InvertedBottleneck):
        x, feature = block(x, training=training)
      else:
        x = feature = block(x, training=training)
      if endpoint in self._keys:
        features[self._keys[endpoint]] = feature
    return features

  def deeplab2_variables(self, prefix):
    keys = {}
    for index, block in enumerate(self._blocks):
      block_prefix = f'{prefix}/_blocks/{index}'
      keys.update(block.deeplab2_variables(block_prefix)
                  if isinstance(block, InvertedBottleneck) else
                  deeplab2_layout.conv_bn_variables(block_prefix, block))
    return keys


class Bottleneck(tf_keras.layers.Layer):
  """1x1 -> 3x3 (strided, dilated) -> 1x1 (4x), + shortcut, ReLU.

  The shortcut is a strided 1x1 conv + BN when the channels change (the
  first block of each stage), else the input. Input and output: float
  [B, H, W, C].
  """

  def __init__(self, filters, in_filters, strides, dilation_rate, name=None,
               **norm):
    super().__init__(name=name)
    self._conv1 = layers.ConvBN(filters, 1, name='conv1', **norm)
    self._conv2 = layers.ConvBN(filters, 3, strides, dilation_rate,
                                explicit_padding=True, name='conv2', **norm)
    self._conv3 = layers.ConvBN(4 * filters, 1, activation='none',
                                name='conv3', **norm)
    self._shortcut = None
    if in_filters != 4 * filters:
      self._shortcut = layers.ConvBN(4 * filters, 1, strides,
                                     activation='none', explicit_padding=True,
                                     name='shortcut', **norm)

  def call(self, inputs, training=None):
    shortcut = inputs
    if self._shortcut is not None:
      shortcut = self._shortcut(inputs, training=training)
    x = self._conv1(inputs, training=training)
    x = self._conv3(self._conv2(x, training=training), training=training)
    return tf.nn.relu(x + shortcut)

  def deeplab2_variables(self, prefix):
    keys = {}
    for name, layer in (('_conv1_bn_act', self._conv1),
                        ('_conv2_bn_act', self._conv2),
                        ('_conv3_bn', self._conv3),
                        ('_shortcut', self._shortcut)):
      if layer is not None:
        keys.update(deeplab2_layout.conv_bn_variables(f'{prefix}/{name}',
                                                      layer))
    return keys


class ResNet50(tf_keras.Model):
  """deeplab2's ResNet-50 or ResNet-50-Beta (see module docstring).

  Args:
    beta: the Inception stem (three 3x3 convs) instead of one 7x7 conv.
    output_stride: 16 or 32.
    **norm: use_sync_bn, norm_momentum, norm_epsilon.
  """

  def __init__(self, beta=False, output_stride=32, **norm):
    super().__init__(name='deeplab2_resnet50' + ('_beta' if beta else ''))
    if beta:
      self._stem = [
          layers.ConvBN(64, 3, 2, explicit_padding=True, name='stem1', **norm),
          layers.ConvBN(64, 3, name='stem2', **norm),
          layers.ConvBN(128, 3, name='stem3', **norm)]
    else:
      self._stem = [layers.ConvBN(64, 7, 2, explicit_padding=True,
                                  name='stem', **norm)]
    in_filters = 128 if beta else 64
    self._stages = []
    for stage, num_blocks in enumerate(RESNET50_BLOCKS, start=2):
      filters, current = 2 ** (stage + 4), 2 ** (stage - 1)  # input stride
      blocks = []
      for index in range(num_blocks):
        strides = 2 if index == 0 and current < output_stride else 1
        rate = current // output_stride if current > output_stride else 1
        blocks.append(Bottleneck(filters, in_filters, strides, rate,
                                 name=f'stage{stage}_block{index + 1}',
                                 **norm))
        in_filters = 4 * filters
        if index == 0:
          current *= 2
      self._stages.append(blocks)
    self._beta = beta
    self._high_key = str(int(math.log2(output_stride)))

  def call(self, images, training=None):
    x = images
    for conv in self._stem:
      x = conv(x, training=training)
    keys = {2: '2', 3: '3', 5: self._high_key}  # res2, res3, res5
    features = {}
    for stage, blocks in enumerate(self._stages, start=2):
      for block in blocks:
        x = block(x, training=training)
      if stage in keys:
        features[keys[stage]] = x
    return features

  def deeplab2_variables(self, prefix):
    stem = f'{prefix}/_stem'
    if self._beta:
      names = ('_conv1_bn_act', '_conv2_bn_act', '_conv3_bn')
      keys = {}
      for name, conv in zip(names, self._stem):
        keys.update(deeplab2_layout.conv_bn_variables(f'{stem}/{name}', conv))
    else:
      keys = deeplab2_layout.conv_bn_variables(stem, self._stem[0])
    for stage, blocks in enumerate(self._stages, start=2):
      for index, block in enumerate(blocks, start=1):
        keys.update(block.deeplab2_variables(
            f'{prefix}/_stage{stage}/_block{index}'))
    return keys


# The names live in the TensorFlow-free name tables (config checks).
DEEPLAB2_BACKBONES = names.DEEPLAB2_BACKBONES


def build(name, output_stride, width_multiplier=1.0, **norm):
  """One of DEEPLAB2_BACKBONES by name."""
  if name.startswith('deeplab2_mobilenet_v3_'):
    return MobileNetV3(name.rsplit('_', 1)[-1], output_stride,
                       width_multiplier, **norm)
  return ResNet50(name.endswith('_beta'), output_stride, **norm)
