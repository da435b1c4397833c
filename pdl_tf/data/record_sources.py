"""The record datasets (``tfrecord``, ``tfds_coco_panoptic``) as sources.

``pdl-data --format coco_panoptic|coco_instances`` and ``--inspect`` walk a
split as a list of ExampleSource (coco_panoptic.py); the listed datasets
give one per file (``sources.list_split``). A record dataset is a tf.data
pipeline instead, read here in order: each source holds the next decoded
example (or the error tf.data raised for it, so that ``--skip_bad`` lists
it and goes on). Its name is the example's file name; records carry no
image id (``PanopticExample.image_id`` is None, so writers number them).

Example:
  >>> meta, sources = list_records('tfrecord', '/data/coco_records',
  ...                              'val2017')
  >>> for source in sources: source.load().panoptic
"""

import functools
import json

import tensorflow as tf

from pdl_tf.data.formats import errors
from pdl_tf.data.formats import layouts
from pdl_tf.data import tfds_coco
from pdl_tf.data.readers import tfrecords
from pdl_tf.data.readers.coco_panoptic import ExampleSource
from pdl_tf.data.readers.coco_panoptic import PanopticExample

RECORDS = ('tfrecord', 'tfds_coco_panoptic')


def _raise(error):
  raise error


def _example(image, panoptic, name):
  return PanopticExample(None, name, image, panoptic)


class RecordSources:
  """An iterable of ExampleSource over a tf.data dataset of (image uint8
  [H, W, 3], panoptic int32 [H, W], file name string []), read once, in
  order, as it is iterated.

  Attributes:
    total: the number of examples, or None where the dataset does not tell
      (then an example that tf.data fails on ends the iteration, as
      tf.data may not go on after it).
  """

  def __init__(self, dataset, total=None):
    self.dataset, self.total = dataset, total

  def __bool__(self):
    return self.total != 0

  def __iter__(self):
    iterator = iter(self.dataset)
    index = 0
    while self.total is None or index < self.total:
      try:
        image, panoptic, name = next(iterator)
      except StopIteration:
        return
      except tf.errors.OpError as e:
        error = errors.DatasetError(errors.message_of(e) or e.message)
        yield ExampleSource(f'example {index}',
                            functools.partial(_raise, error))
        if self.total is None:
          return
      else:
        name = name.numpy().decode('utf-8', 'replace')
        yield ExampleSource(name, functools.partial(
            _example, image.numpy(), panoptic.numpy(), name))
      index += 1


def _tfrecord_count(path, split):
  with open(layouts.tfrecord_metadata(path), encoding='utf-8') as f:
    splits = json.load(f)['splits']
  return splits[split]['num_examples'] if split in splits else 0


def _tfds_records(path, split, label_divisor, ignore_label):
  """(meta, dataset, number of examples) of TFDS coco/2017_panoptic."""
  where = path or "TFDS's default data_dir"
  try:
    meta, records = tfds_coco.read_tfds_coco_panoptic(
        split, path or None, label_divisor, ignore_label)
  except AssertionError as e:  # TFDS's 'could not find data in ...'
    raise FileNotFoundError(f'{tfds_coco.NAME} is not prepared in {where}: '
                            f'{e}') from e
  count = int(records.cardinality())  # TFDS gives it for a prepared split
  return meta, records, count if count >= 0 else None


def list_records(dataset, path, split, *, label_divisor=1000,
                 ignore_label=255, num_examples=0):
  """Metadata and RecordSources of one split of a record dataset.

  Args:
    dataset: one of RECORDS.
    path: the pdl-data folder, or the TFDS data_dir ('' = TFDS's default).
    split: split name.
    label_divisor, ignore_label: the encoding of tfds_coco_panoptic labels
      (a pdl-data folder keeps the one it was written with).
    num_examples: keep the first num_examples, 0 = all.

  Raises:
    FileNotFoundError / ValueError: a missing or malformed pdl-data folder
    or split (tfrecords.read_split); TFDS data not prepared.
  """
  if dataset == 'tfrecord':
    meta, records = tfrecords.read_split(path, split)
    count = _tfrecord_count(path, split)
  elif dataset == 'tfds_coco_panoptic':
    meta, records, count = _tfds_records(path, split, label_divisor,
                                         ignore_label)
  else:
    raise ValueError(f'dataset must be one of {RECORDS}, got {dataset!r}.')
  if num_examples > 0:
    records = records.take(num_examples)
    count = num_examples if count is None else min(count, num_examples)
  return meta, RecordSources(records, count)

