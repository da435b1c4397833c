"""The names the network accepts (backbones, output strides, precisions)
and their check, without TensorFlow.

Config validation (``config_io``) runs before TensorFlow is imported, so
the tables it checks against live here; ``backbones`` and
``panoptic_deeplab`` import them from this module.
"""

RESNETS = {'resnet50': 50, 'resnet101': 101}
MOBILENETS = {'mobilenet_v3_large': 'MobileNetV3Large',
              'mobilenet_v3_small': 'MobileNetV3Small'}
TINY = 'tiny'
# deeplab2's own networks (model/deeplab2_backbones.py), for its checkpoints.
DEEPLAB2_BACKBONES = ('deeplab2_mobilenet_v3_small',
                      'deeplab2_mobilenet_v3_large', 'deeplab2_resnet50',
                      'deeplab2_resnet50_beta')
BACKBONES = (tuple(RESNETS) + tuple(MOBILENETS) + (TINY,) +
             DEEPLAB2_BACKBONES)
OUTPUT_STRIDES = (16, 32)
PRECISIONS = ('float32', 'mixed_float16', 'mixed_bfloat16')


def check_backbone_args(name, output_stride):
  """Raises ValueError naming the problem for an unknown name or stride."""
  if name not in BACKBONES:
    raise ValueError(
        f'Unknown backbone {name!r}; known backbones: {", ".join(BACKBONES)}.')
  if output_stride == 8:
    raise ValueError(
        'output_stride 8 is not supported: the decoder fuses a distinct OS8 '
        'feature, which an output-stride-8 backbone no longer has; use 16 or '
        '32 (the strides Panoptic-DeepLab is published with).')
  if output_stride not in OUTPUT_STRIDES:
    raise ValueError(
        f'output_stride must be one of {OUTPUT_STRIDES}, got '
        f'{output_stride!r}.')


def input_size_error(size, output_stride):
  """Why an input size (height, width) does not fit the network, or None.

  Each side must be a multiple of the output stride or a multiple plus one
  (e.g. 1025x2049 at stride 32, the published convention: resizing uses
  align_corners).

  Args:
    size: ints (height, width).
    output_stride: 16 or 32.

  Returns:
    str, e.g. 'height 100 must be a multiple of the output stride 16 or a
    multiple plus one (e.g. 96, 97, 112 or 113)', or None when it fits.
  """
  for name, value in zip(('height', 'width'), size):
    if value % output_stride not in (0, 1):
      below = value // output_stride * output_stride
      above = below + output_stride
      return (f'{name} {value} must be a multiple of the output stride '
              f'{output_stride} or a multiple plus one (e.g. {below}, '
              f'{below + 1}, {above} or {above + 1})')
  return None
