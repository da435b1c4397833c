"""An embedded synthetic panoptic dataset, generated locally, deterministic.

Each scene: three stuff classes (sky, grass, road) in wavy horizontal bands
with per-pixel texture noise, then 2 to 8 overlapping thing objects (disks,
squares, triangles) of many sizes, a crowd region of one thing class in
about a third of the scenes, and an ignore rectangle in about a quarter.
Example ``i`` of a split depends only on (split, i).

Example:
  >>> image, panoptic = make_scene(seed=7, height=128, width=128)
"""

import functools

import numpy as np

from pdl_tf.data.catalog import fixed_classes
from pdl_tf.data.readers.coco_panoptic import ExampleSource
from pdl_tf.data.readers.coco_panoptic import load_all
from pdl_tf.data.readers.coco_panoptic import PanopticExample
from pdl_tf.data.catalog.fixed_classes import SYNTHETIC_CLASS_NAMES as CLASS_NAMES
from pdl_tf.data.catalog.fixed_classes import SYNTHETIC_COLORS as COLORS
from pdl_tf.data.catalog.fixed_classes import SYNTHETIC_THING_CLASS_IDS as THING_CLASS_IDS

SPLIT_SEEDS = {'train': 0, 'validation': 1_000_000, 'test': 2_000_000}
metadata = fixed_classes.synthetic_metadata


def _shape_mask(rng, cls, height, width):
  """A boolean mask of one object of thing class ``cls``."""
  size = int(rng.integers(max(4, min(height, width) // 12),
                          max(8, min(height, width) // 3)))
  cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
  ys, xs = np.ogrid[:height, :width]  # [H, 1] and [1, W], broadcast
  if cls == 3:  # disk
    return (ys - cy) ** 2 + (xs - cx) ** 2 <= (size // 2) ** 2
  if cls == 4:  # square
    return (np.abs(ys - cy) <= size // 2) & (np.abs(xs - cx) <= size // 2)
  # triangle pointing up: widens linearly from apex to base
  top = cy - size // 2
  return ((ys >= top) & (ys <= top + size) &
          (np.abs(xs - cx) <= (ys - top) // 2))


def make_scene(seed, height=128, width=128, label_divisor=1000,
               ignore_label=255):
  """One scene: uint8 image [H, W, 3] and int32 panoptic label [H, W]."""
  rng = np.random.default_rng(seed)
  ys, xs = np.ogrid[:height, :width]  # [H, 1] and [1, W], broadcast
  boundaries = np.sort(rng.uniform(0.2, 0.8, 2)) * height
  wave = rng.uniform(2, 8) * np.sin(xs / rng.uniform(8, 30) +
                                    rng.uniform(0, 6))
  semantic = np.where(ys < boundaries[0] + wave, 0,
                      np.where(ys < boundaries[1] + wave, 1, 2))
  panoptic = (semantic * label_divisor).astype(np.int32)
  instance_count = {}
  for _ in range(int(rng.integers(2, 9))):
    cls = int(rng.choice(THING_CLASS_IDS))
    mask = _shape_mask(rng, cls, height, width)
    if mask.sum() < 4:
      continue
    instance = instance_count[cls] = instance_count.get(cls, 0) + 1
    if instance >= label_divisor:  # it would spill into class cls + 1
      raise ValueError(
          f'synthetic scene {seed}: at least {instance} instances of class '
          f'{cls} ({CLASS_NAMES[cls]!r}), but label_divisor '
          f'{label_divisor} allows at most {label_divisor - 1} per class.')
    panoptic[mask] = cls * label_divisor + instance
  if rng.random() < 0.35:  # a crowd: several small objects, one region
    cls = int(rng.choice(THING_CLASS_IDS))
    crowd = np.zeros((height, width), bool)
    for _ in range(3):
      crowd |= _shape_mask(rng, cls, height, width)
    panoptic[crowd] = cls * label_divisor
  if rng.random() < 0.25:  # an ignore rectangle
    y, x = int(rng.integers(0, height - 8)), int(rng.integers(0, width - 8))
    panoptic[y:y + 8, x:x + 8] = ignore_label * label_divisor
  classes = np.minimum(panoptic // label_divisor, len(COLORS))
  palette = np.array(COLORS + ((128, 128, 128),), np.float32)
  image = palette[classes] + rng.normal(0, 18, (height, width, 3))
  return np.clip(image, 0, 255).astype(np.uint8), panoptic


def _check_split(split):
  if split not in SPLIT_SEEDS:
    raise ValueError(f'unknown synthetic split {split!r}; known: '
                     f'{", ".join(SPLIT_SEEDS)}.')


def examples(split, num_examples, height=128, width=128, label_divisor=1000,
             ignore_label=255):
  """Yields (image, panoptic) for examples 0..num_examples-1 of a split."""
  _, sources = list_examples(split, num_examples, height, width,
                             label_divisor, ignore_label)
  for example in load_all(sources):
    yield example.image, example.panoptic


def _load_example(name, seed, index, height, width, label_divisor,
                  ignore_label):
  image, panoptic = make_scene(seed, height, width, label_divisor,
                               ignore_label)
  return PanopticExample(index, name, image, panoptic)


def list_examples(split, num_examples, height=128, width=128,
                  label_divisor=1000, ignore_label=255):
  """Metadata and one ExampleSource per scene (named ``<split>_<index>``)."""
  _check_split(split)
  sources = []
  for index in range(num_examples):
    name = f'{split}_{index:06d}'
    sources.append(ExampleSource(name, functools.partial(
        _load_example, name, SPLIT_SEEDS[split] + index, index, height,
        width, label_divisor, ignore_label)))
  return metadata(label_divisor, ignore_label), sources
