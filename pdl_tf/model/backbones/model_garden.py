"""Backbones: a thin bridge to tf-models-official, plus a tiny CPU backbone.

Every backbone here is a Keras model mapping float images [B, H, W, 3]
(already normalized) to a dict of features keyed by level: ``'2'`` (output
stride 4), ``'3'`` (output stride 8) and ``str(log2(output_stride))`` for the
last, atrous block (``'4'`` at output stride 16, ``'5'`` at 32).
"""

import math

import tensorflow as tf
import tf_keras
from official.vision.modeling.backbones import mobilenet
from official.vision.modeling.backbones import resnet_deeplab
from official.vision.modeling.layers import nn_layers

from pdl_tf import normalization
from pdl_tf.model.backbones import deeplab2 as deeplab2_backbones
from pdl_tf.model.common import init_checkpoint
from pdl_tf.model.common import layers
# The name tables and their check are TensorFlow-free (config validation
# uses them before TensorFlow starts); re-exported here.
from pdl_tf.model.common.names import BACKBONES  # pylint: disable=unused-import
from pdl_tf.model.common.names import check_backbone_args
from pdl_tf.model.common.names import MOBILENETS
from pdl_tf.model.common.names import OUTPUT_STRIDES  # pylint: disable=unused-import
from pdl_tf.model.common.names import RESNETS
from pdl_tf.model.common.names import TINY

LOW_LEVEL_KEYS = ('3', '2')  # OS8 then OS4, the order the decoder fuses them.

# ImageNet mean and standard deviation of RGB in [0, 255], as the official
# backbones' pre-trained checkpoints expect.
MEAN_RGB = normalization.IMAGENET_MEAN_RGB
STDDEV_RGB = normalization.IMAGENET_STDDEV_RGB


def high_level_key(output_stride):
  """Returns the feature key of the last (atrous) block, e.g. '5' for 32."""
  return str(int(math.log2(output_stride)))


def build_backbone(name, output_stride=32, multigrid=None,
                   width_multiplier=1.0, use_sync_bn=False, norm_momentum=0.99,
                   norm_epsilon=1e-3):
  """Builds a backbone by name.

  Args:
    name: one of ``BACKBONES``; ``deeplab2_*`` are deeplab2's networks
      (``deeplab2_backbones``), for its checkpoints.
    output_stride: 16 or 32; the last block uses atrous convolution so its
      features come out at this stride.
    multigrid: for ResNets, the unit dilation multipliers of the last block,
      e.g. (1, 2, 4); None for plain dilation.
    width_multiplier: channel multiplier for MobileNets and the tiny backbone.
    use_sync_bn: synchronized batch norm across replicas.
    norm_momentum: batch-norm momentum.
    norm_epsilon: batch-norm epsilon.

  Returns:
    A Keras model from images [B, H, W, 3] to a dict of features (see the
    module docstring).
  """
  check_backbone_args(name, output_stride)
  norm = dict(use_sync_bn=use_sync_bn, norm_momentum=norm_momentum,
              norm_epsilon=norm_epsilon)
  if name in RESNETS:
    return resnet_deeplab.DilatedResNet(
        RESNETS[name], output_stride,
        multigrid=tuple(multigrid) if multigrid else None, **norm)
  if name in deeplab2_backbones.DEEPLAB2_BACKBONES:
    if multigrid:
      raise ValueError(f'{name} has no multigrid option (deeplab2 builds '
                       f'none); got multigrid={multigrid!r}.')
    return deeplab2_backbones.build(name, output_stride, width_multiplier,
                                    **norm)
  if name in MOBILENETS:
    return _mobilenet_v3(MOBILENETS[name], output_stride, width_multiplier,
                         **norm)
  return tiny_backbone(output_stride, width_multiplier, **norm)


def _mobilenet_v3(model_id, output_stride, width_multiplier, **norm):
  """Model Garden's MobileNetV3 with the published high-level feature.

  As in the authors' code (deeplab2), the last feature is the output of the
  final 1x1 conv (960 channels for Large, 576 for Small). Model Garden's
  MobileNet builds that conv and a 1280/1024-channel classifier conv but
  returns the block before them, leaving both unused; here the feature is
  taken after the 1x1 conv and the classifier conv is dropped. Layer order
  is kept, so checkpoints of Model Garden's MobileNet restore into it.
  """
  full = mobilenet.MobileNet(model_id, filter_size_scale=width_multiplier,
                             output_stride=output_stride, **norm)
  key = high_level_key(output_stride)
  last_block = full.output[key]
  heads = [layer for layer in full.layers
           if getattr(layer, 'input', None) is last_block]
  if len(heads) != 1:
    raise RuntimeError(
        f'Unexpected {model_id} structure in tf-models-official: expected one '
        f'layer after endpoint {key!r}, found {[h.name for h in heads]}.')
  outputs = {level: full.output[level] for level in LOW_LEVEL_KEYS}
  outputs[key] = heads[0].output
  model = tf_keras.Model(full.inputs, outputs, name=full.name)
  _float32_squeeze_excite_means(model)
  return model


@tf_keras.utils.register_keras_serializable(package='pdl_tf')
class Float32MeanSqueezeExcitation(nn_layers.SqueezeExcitation):
  """Model Garden's SqueezeExcitation with its spatial mean accumulated in
  float32 (``layers.spatial_mean``); weights, config and checkpoint keys
  are the parent's.

  tf-models-official's ``SqueezeExcitation.call`` takes
  ``tf.reduce_mean`` of its input in the compute dtype, which under
  ``mixed_float16`` on CPU returns a far too small mean (0.25 instead of
  0.80 over 129x257 pixels, MobileNetV3-Large at 1025x2049); the gates and
  so the whole network then differ from the float32 model.
  """

  def call(self, inputs):
    # pylint: disable=protected-access
    x = layers.spatial_mean(inputs, axis=self._spatial_axis)
    x = self._activation_fn(self._se_reduce(x))
    x = self._gating_activation_fn(self._se_expand(x))
    return x * inputs


def _float32_squeeze_excite_means(backbone):
  """Turns every squeeze-excite of Model Garden's blocks in ``backbone``
  (``block._squeeze_excitation``, made by the block's ``build``) into a
  Float32MeanSqueezeExcitation, in place: the same object with the same
  weights, only its ``call`` replaced, so the functional graph, the
  variables and their checkpoint keys stay as they are.

  Raises:
    RuntimeError: a squeeze-excite of another class (tf-models-official
      changed): its mean would not be float32.
  """
  for block in backbone.layers:
    excite = getattr(block, '_squeeze_excitation', None)
    if excite is None or isinstance(excite, Float32MeanSqueezeExcitation):
      continue
    if type(excite) is not nn_layers.SqueezeExcitation:  # pylint: disable=unidiomatic-typecheck
      raise RuntimeError(
          f'Unexpected squeeze-excite {type(excite).__name__} in block '
          f'{block.name!r} of tf-models-official; expected '
          'nn_layers.SqueezeExcitation.')
    excite.__class__ = Float32MeanSqueezeExcitation


def tiny_backbone(output_stride=32, width_multiplier=1.0, **norm):
  """A small residual network for CPU demos and tests (about 0.6M weights).

  A stride-2 stem, then four stages (one stride-2 conv + one residual block
  each) at output strides 4, 8, 16 and 32; stages past ``output_stride`` use
  stride 1 and dilation instead.
  """
  widths = [max(8, int(round(c * width_multiplier)))
            for c in (16, 32, 64, 96, 128)]
  inputs = tf_keras.Input(shape=(None, None, 3))
  x = layers.ConvBN(widths[0], 3, strides=2, name='stem', **norm)(inputs)
  stride, dilation, endpoints = 2, 1, {}
  for level, width in zip(range(2, 6), widths[1:]):
    if stride < output_stride:
      stride *= 2
      x = layers.ConvBN(width, 3, strides=2, name=f'down_{level}', **norm)(x)
    else:
      dilation *= 2
      x = layers.ConvBN(width, 3, dilation_rate=dilation,
                        name=f'down_{level}', **norm)(x)
    y = layers.ConvBN(width, 3, dilation_rate=dilation,
                      name=f'block_{level}_a', **norm)(x)
    y = layers.ConvBN(width, 3, dilation_rate=dilation, activation=False,
                      name=f'block_{level}_b', **norm)(y)
    x = tf_keras.layers.ReLU()(tf_keras.layers.Add()([x, y]))
    endpoints[str(int(math.log2(stride)))] = x
  return tf_keras.Model(inputs, endpoints, name='tiny_backbone')


def restore_backbone(backbone, checkpoint_path):
  """Restores backbone weights (e.g. ImageNet) from a local checkpoint.

  The checkpoint must hold the backbone under the root key ``backbone``, as
  ``tf.train.Checkpoint(backbone=model).save(path)`` writes it (the layout of
  Model Garden's published backbone checkpoints). Nothing is downloaded.

  Args:
    backbone: a built backbone (its variables exist).
    checkpoint_path: a checkpoint prefix or a directory holding checkpoints.

  Raises:
    FileNotFoundError: no checkpoint at ``checkpoint_path``.
    init_checkpoint.CheckpointMismatchError: a variable of the backbone is
      missing from the checkpoint or has another shape there; one line
      naming the checkpoint and the variables, with both shapes.
  """
  path = checkpoint_path
  if tf.io.gfile.isdir(path):
    path = tf.train.latest_checkpoint(path)
    if path is None:
      raise FileNotFoundError(
          f'No checkpoint found in directory {checkpoint_path!r}.')
  elif not tf.io.gfile.exists(path + '.index'):
    raise FileNotFoundError(
        f'Backbone checkpoint {checkpoint_path!r} does not exist '
        f'(expected {path}.index).')
  checkpoint = tf.train.Checkpoint(backbone=backbone)
  init_checkpoint.check_fits(checkpoint, path,
                             network=f'backbone {backbone.name!r}')
  checkpoint.read(path).expect_partial()
