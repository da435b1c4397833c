"""The Panoptic-DeepLab network as one Keras model."""

import contextlib

import tensorflow as tf
import tf_keras

from pdl_tf import keys
from pdl_tf import normalization
from pdl_tf.model import backbones
from pdl_tf.model import decoder
from pdl_tf.model import heads
from pdl_tf.model.common import layers
from pdl_tf.model.common import names as model_names
from pdl_tf.model.common.names import PRECISIONS

# ASPP rates published for each output stride.
DEFAULT_ATROUS_RATES = {16: (6, 12, 18), 32: (3, 6, 9)}


@contextlib.contextmanager
def _policy_scope(precision):
  """Makes ``precision`` the global Keras dtype policy inside the block."""
  previous = tf_keras.mixed_precision.global_policy()
  tf_keras.mixed_precision.set_global_policy(precision)
  try:
    yield
  finally:
    tf_keras.mixed_precision.set_global_policy(previous)


# Name scope of the upsampling of the three outputs to input resolution.
UPSAMPLE_SCOPE = 'upsample_outputs'

@tf_keras.utils.register_keras_serializable(package='pdl_tf')
class PanopticDeepLab(tf_keras.Model):
  """Panoptic-DeepLab: backbone, dual ASPP + decoder, three heads.

  Constructor arguments are the whole configuration: ``get_config`` returns
  them and ``from_config`` rebuilds the same network.

  ``input_normalization``: 'imagenet' (Model Garden backbones) or
  'inception' (x / 127.5 - 1, deeplab2's checkpoints); see
  ``pdl_tf.normalization``. With a ``deeplab2_*`` backbone, 'inception',
  ``norm_epsilon`` 1e-5 (MobileNets) or 1e-3 (ResNets) and the published
  widths, the network is deeplab2's Panoptic-DeepLab
  (``deeplab2_layout.variable_map`` maps its checkpoints); the ASPP pools
  globally, which is deeplab2's pooling at its training crop size.

  Call: images float [B, H, W, 3], RGB in [0, 255] (normalized inside), with
  H and W each divisible by ``output_stride`` or equal to a multiple plus one
  (e.g. 1025x2049, the published convention; resizing uses align_corners).
  Returns a dict of float32 tensors at input resolution:
    ``keys.SEMANTIC_LOGITS`` [B, H, W, num_classes],
    ``keys.CENTER_HEATMAP`` [B, H, W, 1],
    ``keys.CENTER_OFFSETS`` [B, H, W, 2] (dy, dx in input pixels; rescaled
    with the upsampling).

  Example:
    >>> model = PanopticDeepLab(num_classes=5, backbone='tiny',
    ...                         aspp_channels=32)
    >>> outputs = model(tf.zeros([2, 64, 96, 3]))
    >>> outputs['semantic_logits'].shape
    TensorShape([2, 64, 96, 5])
  """

  def __init__(self, num_classes, backbone='resnet50', output_stride=32,
               multigrid=None, backbone_width=1.0, aspp_channels=256,
               atrous_rates=None, semantic_decoder_channels=256,
               semantic_low_level_channels=(64, 32),
               instance_decoder_channels=128,
               instance_low_level_channels=(32, 16),
               semantic_head_channels=256, instance_head_channels=32,
               dropout_rate=0.1, use_sync_bn=False, norm_momentum=0.99,
               norm_epsilon=1e-3, precision='float32',
               input_normalization='imagenet', **kwargs):
    super().__init__(dtype='float32', **kwargs)
    backbones.check_backbone_args(backbone, output_stride)
    if not isinstance(num_classes, int) or num_classes < 1:
      raise ValueError(
          f'num_classes must be a positive int, got {num_classes!r}.')
    if precision not in PRECISIONS:
      raise ValueError(
          f'precision must be one of {PRECISIONS}, got {precision!r}.')
    normalization.check(input_normalization)
    atrous_rates = tuple(atrous_rates or DEFAULT_ATROUS_RATES[output_stride])
    self._config = dict(
        num_classes=num_classes, backbone=backbone, output_stride=output_stride,
        multigrid=list(multigrid) if multigrid else None,
        backbone_width=backbone_width, aspp_channels=aspp_channels,
        atrous_rates=list(atrous_rates),
        semantic_decoder_channels=semantic_decoder_channels,
        semantic_low_level_channels=list(semantic_low_level_channels),
        instance_decoder_channels=instance_decoder_channels,
        instance_low_level_channels=list(instance_low_level_channels),
        semantic_head_channels=semantic_head_channels,
        instance_head_channels=instance_head_channels,
        dropout_rate=dropout_rate, use_sync_bn=use_sync_bn,
        norm_momentum=norm_momentum, norm_epsilon=norm_epsilon,
        precision=precision, input_normalization=input_normalization)
    norm = dict(use_sync_bn=use_sync_bn, norm_momentum=norm_momentum,
                norm_epsilon=norm_epsilon)
    with _policy_scope(precision):
      self.backbone = backbones.build_backbone(
          backbone, output_stride, multigrid, backbone_width, **norm)
      self.semantic_decoder = decoder.PanopticDeepLabDecoder(
          semantic_low_level_channels, semantic_decoder_channels,
          aspp_channels, atrous_rates, dropout_rate, name='semantic_decoder',
          **norm)
      self.instance_decoder = decoder.PanopticDeepLabDecoder(
          instance_low_level_channels, instance_decoder_channels,
          aspp_channels, atrous_rates, dropout_rate, name='instance_decoder',
          **norm)
      self.semantic_head = heads.PredictionHead(
          num_classes, semantic_head_channels, name='semantic_head', **norm)
      self.center_head = heads.PredictionHead(
          1, instance_head_channels, name='center_head', **norm)
      self.offset_head = heads.PredictionHead(
          2, instance_head_channels, name='offset_head', **norm)
    self._high_key = backbones.high_level_key(output_stride)

  @property
  def output_stride(self):
    return self._config['output_stride']

  @property
  def class_dependent_variables(self):
    """The variables whose shape follows ``num_classes``: the semantic
    classifier's kernel and bias (fine-tuning to other classes starts them
    anew)."""
    return self.semantic_head.classifier_variables

  def check_images(self, images):
    """Raises a ValueError/TypeError naming what is wrong with ``images``."""
    shape = images.shape
    if shape.rank is not None and shape.rank != 4:
      raise ValueError(
          f'PanopticDeepLab expects images of shape [B, H, W, 3]; got rank '
          f'{shape.rank} (shape {shape}).')
    if shape.rank == 4 and shape[-1] is not None and shape[-1] != 3:
      raise ValueError(
          f'PanopticDeepLab expects 3 (RGB) channels; got {shape[-1]} '
          f'(shape {shape}).')
    if not images.dtype.is_floating:
      raise TypeError(
          f'PanopticDeepLab expects float images in [0, 255]; got dtype '
          f'{images.dtype.name}. Cast first, e.g. tf.cast(images, tf.float32).')
    sizes = [1 if size is None else size for size in list(shape)[1:3]]
    error = model_names.input_size_error(sizes, self.output_stride)
    if error:
      raise ValueError(f'Image {error}; pad or resize the input.')

  def call(self, images, training=None):
    self.check_images(images)
    normalized = normalize(images, self._config['input_normalization'])
    features = self.backbone(normalized, training=training)
    high = features[self._high_key]
    lows = [features[key] for key in backbones.LOW_LEVEL_KEYS]
    semantic = self.semantic_decoder((high, lows), training=training)
    instance = self.instance_decoder((high, lows), training=training)
    # A static size keeps the outputs' H and W static (the merge needs them)
    # even when the batch size is unknown.
    size = (tf.constant(images.shape[1:3].as_list(), tf.int32)
            if images.shape[1:3].is_fully_defined() else tf.shape(images)[1:3])
    logits = self.semantic_head(semantic, training=training)
    heatmap = self.center_head(instance, training=training)
    offsets = self.offset_head(instance, training=training)
    # Named: the int8 TFLite export keeps these ops float (export/tflite.py).
    with tf.name_scope(UPSAMPLE_SCOPE):
      return {
          keys.SEMANTIC_LOGITS: layers.resize_align_corners(logits, size),
          keys.CENTER_HEATMAP: layers.resize_align_corners(heatmap, size),
          keys.CENTER_OFFSETS: upsample_offsets(offsets, size),
      }

  def get_config(self):
    return dict(self._config, name=self.name)

  @classmethod
  def from_config(cls, config, custom_objects=None):
    return cls(**config)


def normalize(images, input_normalization):
  """float32 [B, H, W, 3] normalized from RGB in [0, 255].

  'imagenet': (x - mean) / std; 'inception': x / 127.5 - 1 (deeplab2
  ``model/deeplab.py``, written the same way so the values are the same).
  """
  images = tf.cast(images, tf.float32)
  if input_normalization == 'inception':
    return images / 127.5 - 1.0
  mean = tf.constant(normalization.IMAGENET_MEAN_RGB, tf.float32)
  std = tf.constant(normalization.IMAGENET_STDDEV_RGB, tf.float32)
  return (images - mean) / std


def upsample_offsets(offsets, size):
  """Upsamples offsets with align_corners and rescales their values.

  Args:
    offsets: float32 [B, h, w, 2], (dy, dx) in pixels of the h x w grid.
    size: int32 [2], the target (H, W).

  Returns:
    float32 [B, H, W, 2], (dy, dx) in pixels of the H x W grid; with
    align_corners the scale is (H - 1) / (h - 1) per axis.
  """
  small = tf.cast(tf.shape(offsets)[1:3], tf.float32)
  large = tf.cast(size, tf.float32)
  scale = (large - 1.0) / tf.maximum(small - 1.0, 1.0)
  return layers.resize_align_corners(offsets, size) * scale
