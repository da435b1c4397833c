"""Input normalizations of the network, and the padding value each implies.

The network takes RGB in [0, 255] and normalizes inside (``PanopticDeepLab``
``input_normalization``):

- ``'imagenet'``: (x - mean) / std with ImageNet's RGB mean and standard
  deviation, as Model Garden's ImageNet backbone checkpoints expect.
- ``'inception'``: x / 127.5 - 1, as deeplab2 (``model/deeplab.py``) and
  its published checkpoints expect.

Padding added to images (evaluation, export, training crops) uses the value
that normalizes to 0: the ImageNet mean, or 127.5 for 'inception' (deeplab2
pads evaluation images with 127.5, ``data/preprocessing/
input_preprocessing.py``). No TensorFlow here: data, export and model all
read it.
"""

NORMALIZATIONS = ('imagenet', 'inception')

# ImageNet mean and standard deviation of RGB in [0, 255].
IMAGENET_MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STDDEV_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)
INCEPTION_MEAN_RGB = (127.5, 127.5, 127.5)


def check(normalization):
  """Raises ValueError naming the known normalizations."""
  if normalization not in NORMALIZATIONS:
    raise ValueError(f'input_normalization must be one of {NORMALIZATIONS}, '
                     f'got {normalization!r}.')


def pad_rgb(normalization):
  """(r, g, b) padding value that ``normalization`` maps to 0."""
  check(normalization)
  return (IMAGENET_MEAN_RGB if normalization == 'imagenet'
          else INCEPTION_MEAN_RGB)
