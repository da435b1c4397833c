"""What ``pdl-data --inspect`` reports about a split: plain numpy.

Per example (``label_stats``): pixels per class, thing instances per class
and their areas, crowd and void pixels; a label value of no known class,
or a stuff class with an instance id, is a problem of that example.
``SplitStats`` adds the examples up and keeps the problems;
``inspect_split`` loads a split through ``example_loop`` (a bad example is
listed with its reason and the listing goes on).

Instance sizes are binned by area in pixels at AREA_BINS: COCO's small /
medium / large limits 32^2 and 96^2, and 64^2, the paper's small-instance
threshold (instances under 64 x 64 pixels weigh 3 in the semantic loss).

Example:
  >>> stats = inspect_split(meta, sources)
  >>> stats.num_images, stats.area_histogram(), stats.void_share
"""

import dataclasses
from typing import List

import numpy as np

from pdl_tf.data.writers import example_loop

AREA_BINS = (32 ** 2, 64 ** 2, 96 ** 2)
AREA_BIN_NAMES = ('< 32^2', '32^2 to < 64^2', '64^2 to < 96^2', '>= 96^2')


@dataclasses.dataclass
class LabelStats:
  """Counts of one label [H, W]; class arrays are int64 [num_classes]."""
  pixels: int
  void_pixels: int
  crowd_pixels: int
  overlap_pixels: int
  class_pixels: np.ndarray
  class_instances: np.ndarray
  instance_areas: List[int]


def label_stats(panoptic, meta, overlap_pixels=0):
  """LabelStats of one label in the package encoding.

  Args:
    panoptic: int [H, W], class * label_divisor + instance; void = class
      ``meta.ignore_label``; a thing class with instance 0 is a crowd.
    meta: DatasetMetadata.
    overlap_pixels: pixels the reader found claimed by several instances
      (``PanopticExample.stats['overlap_pixels']``, where a reader gives it).

  Raises:
    ValueError: a value whose class is neither a known class nor void, or
      a stuff class with a nonzero instance id (naming the values).
  """
  values, counts = np.unique(np.asarray(panoptic, np.int64),
                             return_counts=True)
  classes, instances = values // meta.label_divisor, \
      values % meta.label_divisor
  void = classes == meta.ignore_label
  unknown = ~void & ((values < 0) | (classes >= meta.num_classes))
  if unknown.any():
    raise ValueError(f'label values {values[unknown][:5].tolist()} have no '
                     f'class ({meta.num_classes} classes, label_divisor '
                     f'{meta.label_divisor}, void = class '
                     f'{meta.ignore_label}).')
  known = ~void
  thing = np.zeros(values.shape, bool)
  thing[known] = np.asarray(meta.is_thing, bool)[classes[known]]
  stuff_instance = known & ~thing & (instances != 0)
  if stuff_instance.any():
    raise ValueError(f'label values {values[stuff_instance][:5].tolist()} '
                     'give stuff classes instance ids (stuff is class * '
                     'label_divisor).')
  is_instance = thing & (instances > 0)
  return LabelStats(
      pixels=int(counts.sum()), void_pixels=int(counts[void].sum()),
      crowd_pixels=int(counts[thing & (instances == 0)].sum()),
      overlap_pixels=int(overlap_pixels),
      class_pixels=np.bincount(classes[known], counts[known],
                               meta.num_classes).astype(np.int64),
      class_instances=np.bincount(classes[is_instance],
                                  minlength=meta.num_classes).astype(
                                      np.int64),
      instance_areas=counts[is_instance].tolist())


def area_histogram(areas, bins=AREA_BINS):
  """Instances per area bin: int64 [len(bins) + 1]; bin k holds
  bins[k-1] <= area < bins[k] (bin 0 from 0, the last open-ended)."""
  index = np.searchsorted(np.asarray(bins), np.asarray(areas, np.int64),
                          side='right')
  return np.bincount(index, minlength=len(bins) + 1).astype(np.int64)


class SplitStats:
  """The sums of a split's LabelStats, and its problems."""

  def __init__(self, meta):
    self.meta = meta
    self.num_images = 0
    self.pixels = self.void_pixels = self.crowd_pixels = 0
    self.overlap_pixels = 0
    self.class_pixels = np.zeros(meta.num_classes, np.int64)
    self.class_images = np.zeros(meta.num_classes, np.int64)
    self.class_instances = np.zeros(meta.num_classes, np.int64)
    self.instance_areas = []
    self.problems = []  # {'name', 'error'}

  def add(self, stats):
    """Adds one example's LabelStats."""
    self.num_images += 1
    self.pixels += stats.pixels
    self.void_pixels += stats.void_pixels
    self.crowd_pixels += stats.crowd_pixels
    self.overlap_pixels += stats.overlap_pixels
    self.class_pixels += stats.class_pixels
    self.class_images += stats.class_pixels > 0
    self.class_instances += stats.class_instances
    self.instance_areas.extend(stats.instance_areas)

  def _share(self, count):
    return count / self.pixels if self.pixels else 0.0

  @property
  def void_share(self):
    """Void pixels / all pixels (0 without pixels)."""
    return self._share(self.void_pixels)

  @property
  def crowd_share(self):
    """Crowd-region pixels / all pixels (0 without pixels)."""
    return self._share(self.crowd_pixels)

  def class_shares(self):
    """Each class's pixels / all pixels: float [num_classes]."""
    return self.class_pixels / max(self.pixels, 1)

  def area_histogram(self):
    """area_histogram of every thing instance of the split."""
    return area_histogram(self.instance_areas)


def inspect_split(meta, sources, progress=True, desc=''):
  """SplitStats of a split's examples; bad ones are listed in
  ``problems`` with their reason and the others are still counted.

  Args:
    meta: DatasetMetadata.
    sources: list of ExampleSource.
    progress: show a tqdm progress bar (stderr).
    desc: the bar's label.
  """
  stats = SplitStats(meta)

  def prepare(source, example):
    del source
    extra = getattr(example, 'stats', None) or {}
    return label_stats(example.panoptic, meta,
                       extra.get('overlap_pixels', 0))

  for _, example_stats in example_loop.checked_examples(
      sources, prepare, stats.problems, skip_bad=True, desc=desc,
      progress=progress, verb='problem:'):
    stats.add(example_stats)
  return stats
