"""Dataset name -> metadata and examples, for the pipeline and pdl-data.

Two kinds of dataset:
  listed   ``synthetic``, ``coco_panoptic``, ``cityscapes``,
           ``mapillary_vistas``, ``coco_instances``, ``panoptic_pngs``: a
           list of ExampleSource (file name + lazy loader), so pdl-data can
           convert them and the pipeline can give each input pipeline its
           own examples.
  records  ``tfrecord`` (folders written by pdl-data) and
           ``tfds_coco_panoptic`` (TFDS ``coco/2017_panoptic``): read
           directly as tf.data datasets.

Folder layouts: ``layouts.py``; ``tfds_coco_panoptic``'s path is the TFDS
data_dir ('' = TFDS's default).
"""

import atexit
import os
import threading
import time

import tensorflow as tf

from pdl_tf.config import ConfigError
from pdl_tf.labels import segment_keys
from pdl_tf.data.readers import cityscapes
from pdl_tf.data.readers import coco_instances
from pdl_tf.data.readers import coco_panoptic
from pdl_tf.data.formats import errors
from pdl_tf.data.formats import layouts
from pdl_tf.data.readers import mapillary_vistas
from pdl_tf.data.readers import panoptic_pngs
from pdl_tf.data.readers import synthetic
from pdl_tf.data.catalog.names import DATASETS
from pdl_tf.data.catalog.names import LISTED
from pdl_tf.data import tfds_coco
from pdl_tf.data.readers import tfrecords


# Listed datasets read from a root folder: reader(root, split,
# label_divisor, ignore_label) -> (metadata, sources).
_READERS = {
    'cityscapes': cityscapes.list_cityscapes,
    'mapillary_vistas': mapillary_vistas.list_mapillary_vistas,
    'panoptic_pngs': panoptic_pngs.list_panoptic_pngs,
}


def list_split(dataset, path, split, *, label_divisor=1000, ignore_label=255,
               num_examples=0, size=(128, 128), problems=None):
  """Metadata and the ExampleSources of one split of a listed dataset.

  Args:
    dataset: one of LISTED.
    path: dataset root (unused for synthetic).
    split: split name.
    num_examples: synthetic: number of scenes (required); others: keep the
      first num_examples, 0 = all.
    size: synthetic scene size (height, width).
    problems: None, or a list that collects the messages of bad
      annotations found while listing (COCO instances) instead of raising
      at the first; the others' bad examples show when they are loaded.

  Raises:
    ConfigError: unknown dataset; FileNotFoundError: missing root or
    split files; errors.DatasetError: an empty, malformed or inconsistent
    annotation file or folder (the readers' ValueError, message kept).
  """
  if dataset not in LISTED:
    raise ConfigError(f'dataset must be one of {LISTED}, got {dataset!r}.')
  if dataset == 'synthetic':
    if num_examples < 1:
      raise ConfigError('num_examples must be >= 1 for the synthetic '
                        'dataset.')
    return synthetic.list_examples(split, num_examples, size[0], size[1],
                                   label_divisor, ignore_label)
  if not path or not os.path.isdir(path):
    raise FileNotFoundError(f'dataset root {path!r} does not exist.')
  try:
    if dataset == 'coco_panoptic':
      meta, sources = coco_panoptic.list_coco_panoptic(
          *layouts.coco_split_files(path, split), label_divisor,
          ignore_label)
    elif dataset == 'coco_instances':
      meta, sources = coco_instances.list_coco_instances(
          path, split, label_divisor, ignore_label, problems=problems)
    else:
      meta, sources = _READERS[dataset](path, split, label_divisor,
                                        ignore_label)
  except (errors.DatasetError, ConfigError):
    raise
  except ValueError as e:  # the readers name the file and the problem
    raise errors.DatasetError(str(e)) from e
  return meta, sources[:num_examples] if num_examples > 0 else sources


class _GeneratorGate:
  """Stops the Python generators of ``_from_sources`` when Python exits.

  tf.data calls a generator from its own threads, each call taking the
  GIL. A program that exits with an iterator still reading one deletes the
  iterator while finalizing, with the GIL held, and the deletion waits for
  a call that waits for the GIL: the process hangs. At exit (atexit runs
  before that), the gate makes every generator end and waits, with the GIL
  released, until no example is being loaded; after that tf.data ends the
  epoch or reads its cache, and needs Python no more.
  """

  def __init__(self):
    self._lock = threading.Lock()
    self._loading = 0
    self._used = False
    self.closed = False

  def load(self, source):
    """source.load(), counted; None once the gate is closed."""
    with self._lock:
      if self.closed:
        return None
      self._loading += 1
      self._used = True
    try:
      return source.load()
    finally:
      with self._lock:
        self._loading -= 1

  def close(self, timeout_s=30.0):
    """Ends every generator and waits (at most ``timeout_s``) for the
    examples being loaded; returns at once if none was ever loaded."""
    with self._lock:
      self.closed = True
    if not self._used:
      return
    deadline = time.monotonic() + timeout_s
    while self._loading and time.monotonic() < deadline:
      time.sleep(0.01)
    time.sleep(0.05)  # for the calls' conversions after load() returned


_GATE = _GeneratorGate()
atexit.register(_GATE.close)


def _from_sources(sources, input_context, encoding, with_keys=False):
  """tf.data dataset of this input pipeline's share of the sources; with
  ``with_keys``, each example also has its segment key map as int32 (its
  label where the reader made none). ``encoding``: the label_divisor and
  ignore_label keywords."""
  if input_context is not None:
    sources = sources[input_context.input_pipeline_id::
                      input_context.num_input_pipelines]

  def generate():
    for source in sources:
      try:
        example = _GATE.load(source)
        if example is not None and with_keys:
          keys = segment_keys.as_int32(example.segment_key_map(),
                                       where=source.name, **encoding)
      except (OSError, ValueError) as e:  # a missing or bad file
        message = str(e) if source.name in str(e) else f'{source.name}: {e}'
        raise errors.for_graph(message) from e
      if example is None:  # Python is exiting
        return
      if not with_keys:
        yield example.image, example.panoptic, example.file_name
      else:
        yield example.image, example.panoptic, example.file_name, keys

  label = tf.TensorSpec([None, None], tf.int32)
  return tf.data.Dataset.from_generator(generate, output_signature=(
      tf.TensorSpec([None, None, 3], tf.uint8), label,
      tf.TensorSpec([], tf.string)) + ((label,) if with_keys else ()))


def open_split(data_config, split_config, split_key, input_context=None,
               with_keys=False):
  """Metadata and a dataset of (image uint8 [H,W,3], panoptic int32 [H,W],
  file name string []).

  Args:
    data_config: the config's ``data`` section.
    split_config: ``data.train`` or ``data.eval``.
    split_key: 'data.train' or 'data.eval', for error messages.
    input_context: tf.distribute.InputContext or None; with one, the
      examples are divided between the input pipelines.
    with_keys: also give each example's ground-truth segment key map, int32
      [H, W] (segment_keys.py), a 4th element: the COCO panoptic format's
      readers (and TFRecords written from them) keep several stuff or crowd
      segments of a class apart there; for the others it is the label.

  Raises:
    ConfigError, FileNotFoundError or ValueError naming ``split_key``: an
    unknown dataset, a missing path, an empty split.
  """
  name, path, split = data_config.dataset, split_config.path, \
      split_config.split
  encoding = dict(label_divisor=data_config.label_divisor,
                  ignore_label=data_config.ignore_label)
  if name not in DATASETS:
    raise ConfigError(f"'data.dataset' must be one of {DATASETS}, got "
                      f'{name!r}.')
  if name == 'tfds_coco_panoptic':
    meta, dataset = tfds_coco.read_tfds_coco_panoptic(
        split, path or None, input_context=input_context,
        deterministic=data_config.deterministic, **encoding)
    return meta, _label_as_keys(dataset) if with_keys else dataset
  if name != 'synthetic' and (not path or not os.path.isdir(path)):
    raise FileNotFoundError(f"'{split_key}.path' {path!r} does not exist.")
  if name == 'tfrecord':
    meta, dataset = tfrecords.read_split(path, split, input_context,
                                         data_config.deterministic,
                                         with_keys=with_keys)
    if (meta.label_divisor, meta.ignore_label) != (
        encoding['label_divisor'], encoding['ignore_label']):
      raise ConfigError(
          f"{path} was converted with label_divisor {meta.label_divisor} and "
          f'ignore_label {meta.ignore_label}; set data.label_divisor and '
          'data.ignore_label to match.')
    if split_config.num_examples > 0:
      dataset = dataset.take(split_config.num_examples)
    return meta, dataset
  if name == 'synthetic' and split_config.num_examples < 1:
    raise ConfigError(f"'{split_key}.num_examples' must be >= 1 for the "
                      'synthetic dataset.')
  meta, sources = list_split(name, path, split,
                             num_examples=split_config.num_examples,
                             size=split_config.crop_size, **encoding)
  if not sources:
    raise ConfigError(f"'{split_key}' ({name}, split {split!r}) has no "
                      'examples.')
  return meta, _from_sources(sources, input_context, encoding, with_keys)


def _label_as_keys(dataset):
  """(image, label, name) -> (image, label, name, label): a dataset whose
  labels are their own segment key maps."""
  return dataset.map(lambda image, label, name: (image, label, name, label))
