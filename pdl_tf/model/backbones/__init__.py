"""Backbones: images in, features by output stride out.

  model_garden.py    the bridge to tf-models-official's ResNet and
                     MobileNetV3 (atrous last block) and the tiny CPU
                     backbone; ``build_backbone`` builds any of them
  deeplab2.py        deeplab2's own networks, layer for layer, so that its
                     published checkpoints load
  deeplab2_layout.py deeplab2's checkpoint keys of every variable

Each backbone maps float images [B, H, W, 3] (normalized) to a dict of
features: ``'2'`` (stride 4), ``'3'`` (stride 8) and
``str(log2(output_stride))``. Builds on model.common.
"""

# pylint: disable=unused-import
from pdl_tf.model.backbones.model_garden import BACKBONES
from pdl_tf.model.backbones.model_garden import build_backbone
from pdl_tf.model.backbones.model_garden import check_backbone_args
from pdl_tf.model.backbones.model_garden import Float32MeanSqueezeExcitation
from pdl_tf.model.backbones.model_garden import high_level_key
from pdl_tf.model.backbones.model_garden import LOW_LEVEL_KEYS
from pdl_tf.model.backbones.model_garden import OUTPUT_STRIDES
from pdl_tf.model.backbones.model_garden import restore_backbone
