"""Ground-truth segment keys: label values that keep every segment apart.

The package's label encoding (class * label_divisor + instance) gives all
stuff of a class one value in an image, and all crowd of a thing class one
value. COCO panoptic files may list several such segments in one image
(two 'grass' segments, three 'person' crowds), and panoptic quality scores
each of them (panopticapi's ``pq_compute``). A segment key map keeps them
apart: the n-th segment (from 0, in the ground truth's listing order) with
a given label value gets the key ``value + n * key_range``, with
``key_range = (ignore_label + 1) * label_divisor``, one more than the
largest label value. So ``key % key_range`` is the label again, keys of one
label value sort in listing order, and a map without repeated segments is
its own key map.

Used by the COCO panoptic reader (which makes them), the evaluation input
pipeline (which carries them beside the label) and the streaming PQ and
pair writer (which read them). numpy only; ``labels_of`` works on
TensorFlow tensors too.
"""

import numpy as np

_INT32_LIMIT = 1 << 31


def key_range(label_divisor, ignore_label):
  """One more than the largest label value: (ignore_label + 1) *
  label_divisor (int)."""
  return (int(ignore_label) + 1) * int(label_divisor)


def labels_of(keys, label_divisor, ignore_label):
  """The label map of a key map (numpy array or int32 tensor, any shape):
  ``keys % key_range``."""
  return keys % key_range(label_divisor, ignore_label)


def keys_of(values, label_divisor, ignore_label):
  """Keys of segments listed in order, given their label values.

  Args:
    values: int sequence [S], each segment's label value, in the ground
      truth's listing order (segments_info order).
    label_divisor, ignore_label: of the label encoding.

  Returns:
    int64 [S]: value + n * key_range, n = how many segments before it had
    the same value.
  """
  values = np.asarray(values, np.int64)
  step = key_range(label_divisor, ignore_label)
  seen = {}
  repeats = np.zeros(len(values), np.int64)
  for i, value in enumerate(values.tolist()):
    repeats[i] = seen.get(value, 0)
    seen[value] = repeats[i] + 1
  return values + repeats * step


def as_int32(keys, label_divisor, ignore_label, where=''):
  """A key map as int32, the evaluation pipeline's dtype.

  Raises:
    ValueError: a key does not fit in int32 (more repeats of one label
      value in an image than 2^31 / key_range: 8388 at label_divisor 1000,
      127 at 65536); the message names ``where``.
  """
  keys = np.asarray(keys)
  if keys.size and keys.max() >= _INT32_LIMIT:
    step = key_range(label_divisor, ignore_label)
    raise ValueError(
        f'{where}: {int(keys.max()) // step + 1} segments share one label '
        f'value: their segment keys (value + n * {step}) do not fit in '
        'int32 for the evaluation; lower data.label_divisor.')
  return keys.astype(np.int32)
