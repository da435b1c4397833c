"""deeplab2's checkpoint layout: which variable of our network each of its
checkpoint keys holds.

deeplab2 (google-research/deeplab2) saves Panoptic-DeepLab as
``tf.train.Checkpoint(encoder=..., semantic_decoder=..., ...)``
(``model/deeplab.py`` ``checkpoint_items``, ``model/decoder/panoptic_deeplab.py``
``checkpoint_items``), so each variable's key is its object path, e.g.
``semantic_decoder/_aspp/_conv_bn_act/_conv/kernel`` (the checkpoint adds
``/.ATTRIBUTES/VARIABLE_VALUE``). Its layers are ``Conv2DSame``
(``_conv`` + ``_batch_norm``), ``DepthwiseConv2DSame`` (``_depthwise_conv``
+ ``_batch_norm``) and ``SeparableConv2DSame`` (``_depthwise`` +
``_pointwise``) from ``model/layers/convolutions.py``.

``variable_map(model)`` returns ``{key: variable}`` for every weight of a
``PanopticDeepLab`` with a deeplab2 backbone (``deeplab2_*``); the only
variables it leaves out are our own dropout counters (not weights).
"""

KEY_SUFFIX = '/.ATTRIBUTES/VARIABLE_VALUE'


def batch_norm_variables(prefix, bn):
  """{prefix/gamma, beta, moving_mean, moving_variance: variable}."""
  return {f'{prefix}/gamma': bn.gamma, f'{prefix}/beta': bn.beta,
          f'{prefix}/moving_mean': bn.moving_mean,
          f'{prefix}/moving_variance': bn.moving_variance}


def conv_bn_variables(prefix, layer):
  """Keys of a deeplab2 ``Conv2DSame`` with batch norm, for a ConvBN."""
  # pylint: disable=protected-access
  return {f'{prefix}/_conv/kernel': layer._conv.kernel,
          **batch_norm_variables(f'{prefix}/_batch_norm', layer._bn)}


def depthwise_bn_variables(prefix, layer):
  """Keys of a deeplab2 ``DepthwiseConv2DSame``, for a DepthwiseConvBN."""
  # pylint: disable=protected-access
  return {f'{prefix}/_depthwise_conv/depthwise_kernel':
              layer._conv.depthwise_kernel,
          **batch_norm_variables(f'{prefix}/_batch_norm', layer._bn)}


def conv_bias_variables(prefix, conv):
  """Keys of a plain Keras Conv2D with bias."""
  return {f'{prefix}/kernel': conv.kernel, f'{prefix}/bias': conv.bias}


def _separable_variables(prefix, layer):
  """Keys of deeplab2's ``SeparableConv2DSame`` (depthwise + BN + act,
  pointwise + BN + act), for a layers.SeparableConvBN."""
  # pylint: disable=protected-access
  return {
      f'{prefix}/_depthwise/_depthwise_conv/depthwise_kernel':
          layer._depthwise.depthwise_kernel,
      **batch_norm_variables(f'{prefix}/_depthwise/_batch_norm',
                             layer._depthwise_bn),
      **conv_bn_variables(f'{prefix}/_pointwise', layer._pointwise)}


def _aspp_variables(prefix, aspp):
  """deeplab2 ``model/decoder/aspp.py``: ``_conv_bn_act`` (1x1),
  ``_aspp_conv{1,2,3}`` (atrous), ``_aspp_pool`` and ``_proj_conv_bn_act``."""
  # pylint: disable=protected-access
  branches = aspp._branches
  keys = conv_bn_variables(f'{prefix}/_conv_bn_act', branches[0])
  for index, branch in enumerate(branches[1:], start=1):
    keys.update(conv_bn_variables(
        f'{prefix}/_aspp_conv{index}/_conv_bn_act', branch))
  keys.update(conv_bn_variables(f'{prefix}/_aspp_pool/_conv_bn_act',
                                aspp._pool_conv))
  keys.update(conv_bn_variables(f'{prefix}/_proj_conv_bn_act',
                                aspp._project))
  return keys


def _decoder_variables(prefix, decoder):
  """deeplab2 ``PanopticDeepLabSingleDecoder``: ``_aspp``,
  ``_low_level_conv{i}`` and ``_fusion_conv{i}/_conv1_bn_act``."""
  # pylint: disable=protected-access
  keys = _aspp_variables(f'{prefix}/_aspp', decoder._aspp)
  for index, (project, fuse) in enumerate(
      zip(decoder._projections, decoder._fusions), start=1):
    keys.update(conv_bn_variables(f'{prefix}/_low_level_conv{index}',
                                  project))
    keys.update(_separable_variables(
        f'{prefix}/_fusion_conv{index}/_conv1_bn_act', fuse))
  return keys


def _head_variables(prefix, last_layer, head):
  """deeplab2 ``PanopticDeepLabSingleHead``: ``<prefix>/_conv1_bn_act``
  (separable) and the final 1x1 conv with bias, saved as ``last_layer``."""
  # pylint: disable=protected-access
  return {**_separable_variables(f'{prefix}/_conv1_bn_act', head._separable),
          **conv_bias_variables(last_layer, head._classifier)}


def variable_map(model):
  """{deeplab2 key (without KEY_SUFFIX): variable} for a built
  ``PanopticDeepLab`` whose backbone is one of deeplab2's.

  Raises:
    ValueError: the backbone has no deeplab2 layout, or two keys share a
      variable (a bug in the map).
  """
  if not hasattr(model.backbone, 'deeplab2_variables'):
    raise ValueError(
        f'backbone {model.get_config()["backbone"]!r} has no deeplab2 '
        'checkpoint layout; use a deeplab2_* backbone.')
  keys = dict(model.backbone.deeplab2_variables('encoder'))
  keys.update(_decoder_variables('semantic_decoder', model.semantic_decoder))
  keys.update(_decoder_variables('instance_decoder', model.instance_decoder))
  keys.update(_head_variables('semantic_head_without_last_layer',
                              'semantic_last_layer', model.semantic_head))
  keys.update(_head_variables('instance_center_head_without_last_layer',
                              'instance_center_head_last_layer',
                              model.center_head))
  keys.update(_head_variables('instance_regression_head_without_last_layer',
                              'instance_regression_head_last_layer',
                              model.offset_head))
  if len({id(v) for v in keys.values()}) != len(keys):
    raise ValueError('deeplab2 layout maps two keys to one variable.')
  return keys
