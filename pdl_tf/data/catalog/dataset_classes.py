"""A dataset's classes read from its own files, before TensorFlow starts.

Every dataset that knows its classes tells them here: the fixed ones
(synthetic, Cityscapes, TFDS COCO) from ``fixed_classes``, the others from
the file that lists them (a COCO panoptic or Mapillary Vistas JSON's
``categories``, a COCO instances JSON's and its stuff JSON's, a
``panoptic_pngs`` classes file, a pdl-data folder's ``metadata.json``).
The commands call ``read_metadata`` in their check phase and fill
``model.num_classes``, ``data.thing_class_ids``, ``data.class_names`` and
``data.category_ids`` (and ``data.class_colors`` where unset) with
``config_io.resolve_classes``; the readers give the same
``DatasetMetadata`` when the data opens (the pipeline checks it again).

Imports no TensorFlow (numpy and pycocotools for ``coco_instances`` only).
"""

import json
import os

from pdl_tf.config import ConfigError
from pdl_tf.data.formats import classes_file
from pdl_tf.data.catalog import fixed_classes
from pdl_tf.data.formats import layouts
from pdl_tf.data.catalog.metadata import DatasetMetadata
from pdl_tf.data.catalog.metadata import metadata_from_categories
from pdl_tf.labels.json_file import load_json

# The datasets whose classes are fixed: known without their files.
_FIXED = {'synthetic': fixed_classes.synthetic_metadata,
          'cityscapes': fixed_classes.cityscapes_metadata,
          'tfds_coco_panoptic': fixed_classes.coco_metadata}
FIXED_DATASETS = tuple(_FIXED)


def _categories_file(path, what):
  """The ``categories`` list of a COCO-style JSON file.

  Raises:
    FileNotFoundError: no such file. ValueError: invalid JSON, not an
      object, or no ``categories`` list (naming the file).
  """
  data = load_json(path, what)
  categories = data.get('categories') if isinstance(data, dict) else None
  if not isinstance(categories, list) or not categories:
    raise ValueError(f"{what} JSON {path!r} has no 'categories' list.")
  return categories


def _from_categories(categories, path, label_divisor, ignore_label):
  try:
    return metadata_from_categories(categories, label_divisor, ignore_label)
  except (KeyError, TypeError) as e:
    raise ValueError(f'{path}: a category lacks the key {e} (each needs id, '
                     'name and isthing).') from e
  except ValueError as e:
    raise ValueError(f'{path}: {e}') from e


def _tfrecord_metadata(root, label_divisor, ignore_label):
  """The classes a pdl-data folder's metadata.json lists (its 'metadata':
  class_names and is_thing; category_ids and colors where written)."""
  path = layouts.tfrecord_metadata(root)
  with open(path, encoding='utf-8') as f:
    values = json.load(f).get('metadata')
  if not isinstance(values, dict) or not isinstance(
      values.get('class_names'), list) or not isinstance(
          values.get('is_thing', []), list):
    raise ValueError(f"{path} has no 'metadata' with the dataset's "
                     "'class_names'; convert the dataset again with pdl-data.")
  names = values['class_names']
  return DatasetMetadata(
      class_names=names,
      category_ids=values.get('category_ids') or list(range(len(names))),
      is_thing=values.get('is_thing') or [False] * len(names),
      colors=[tuple(c) for c in values.get('colors') or ()],
      label_divisor=values.get('label_divisor', label_divisor),
      ignore_label=values.get('ignore_label', ignore_label))


def read_metadata(dataset, path, split, label_divisor=1000,
                  ignore_label=255):
  """The DatasetMetadata of one split, from the files that list the classes.

  Args:
    dataset: ``data.dataset``.
    path: ``data.<split>.path`` (unused for the fixed-class datasets).
    split: ``data.<split>.split``.

  Returns:
    DatasetMetadata, or None where the classes cannot be read without
    TensorFlow (a remote path such as gs://...): the pipeline resolves
    them when the data opens.

  Raises:
    FileNotFoundError: the file that lists the classes is missing.
    ValueError: it is not valid JSON or lists no usable categories (the
      message names the file).
  """
  if dataset in _FIXED:
    return _FIXED[dataset](label_divisor, ignore_label)
  if not path or '://' in path:
    return None
  if dataset == 'coco_panoptic':
    json_file = layouts.coco_split_files(path, split)[0]
  elif dataset == 'mapillary_vistas':
    json_file = layouts.vistas_split_files(path, split)[0]
  elif dataset == 'tfrecord':
    return _tfrecord_metadata(path, label_divisor, ignore_label)
  elif dataset == 'coco_instances':
    # pylint: disable-next=g-import-not-at-top
    from pdl_tf.data.formats import instances_json  # pycocotools: no TensorFlow
    json_file, _, stuff_file, _ = layouts.coco_instances_split_files(
        path, split)
    return _from_categories(instances_json.read_split_categories(
        json_file, stuff_file), json_file, label_divisor, ignore_label)
  elif dataset == 'panoptic_pngs':
    json_file = layouts.panoptic_pngs_classes_file(path)
    return _from_categories(classes_file.read_classes(json_file), json_file,
                            label_divisor, ignore_label)
  else:
    return None
  return _from_categories(_categories_file(json_file, 'dataset'),
                          json_file, label_divisor, ignore_label)


def resolve_classes(config, meta, source):
  """Takes the classes of a dataset into ``config``, or checks them.

  Each of ``model.num_classes`` (0), ``data.thing_class_ids``,
  ``data.class_names`` and ``data.category_ids`` (()) that is unset gets
  the dataset's value; one that is set must equal it. ``data.class_colors``
  gets the dataset's colours when unset, and is kept when set.

  Args:
    config: ExperimentConfig, changed in place.
    meta: the dataset's DatasetMetadata (``pdl_tf.data.catalog.metadata``).
    source: what the classes were read from, for the message (e.g.
      "dataset 'coco_panoptic' (data/annotations/panoptic_val.json)").

  Raises:
    ConfigError: a set value differs from the dataset's; the message names
      the key, both values and the source.
  """
  model, data = config.model, config.data
  expected = {
      'model.num_classes': (model.num_classes, meta.num_classes, 0),
      'data.thing_class_ids': (tuple(data.thing_class_ids),
                               tuple(meta.thing_class_ids), ()),
      'data.class_names': (tuple(data.class_names),
                           tuple(meta.class_names), ()),
      'data.category_ids': (tuple(data.category_ids),
                            tuple(int(i) for i in meta.category_ids), ()),
  }
  for key, (value, theirs, unset) in expected.items():
    if value != unset and value != theirs:
      classes = [f'{i} {name}{" (thing)" if thing else ""}'
                 for i, (name, thing) in enumerate(zip(meta.class_names,
                                                       meta.is_thing))]
      shown = ', '.join(classes[:12]) + (
          f', ... ({len(classes)} in all)' if len(classes) > 12 else '')
      unit = ' classes' if key == 'model.num_classes' else ''
      raise ConfigError(
          f'{key!r} is {_short(value)} but {source} has {_short(theirs)}'
          f"{unit}: {shown}. Where {key} came from: your config, its base "
          "experiment, the other split's data (data.train and data.eval "
          "must hold the same classes) or the checkpoint's params.yaml; to "
          f"take this dataset's, leave it out or set it to {_short(unset)}.")
  model.num_classes = meta.num_classes
  data.thing_class_ids = tuple(meta.thing_class_ids)
  data.class_names = tuple(meta.class_names)
  data.category_ids = tuple(int(i) for i in meta.category_ids)
  if not data.class_colors:
    data.class_colors = dataset_colors(meta)


def dataset_colors(meta):
  """The dataset's class colours as '#rrggbb' by class index, () when it
  has none (no colours, or all black: categories without 'color')."""
  colors = [tuple(int(c) for c in color) for color in meta.colors]
  if len(colors) != meta.num_classes or not any(any(c) for c in colors):
    return ()
  return tuple('#{:02x}{:02x}{:02x}'.format(*color) for color in colors)


def classes_resolved(config):
  """True when the config knows its classes (count, names, category ids):
  what an export needs to name its outputs."""
  return bool(config.model.num_classes and config.data.class_names and
              config.data.category_ids)


def _short(value, limit=12):
  """A value for a message: long lists cut after ``limit`` items."""
  if isinstance(value, tuple) and len(value) > limit:
    return f'[{", ".join(map(repr, value[:limit]))}, ... ({len(value)} in all)]'
  return repr(list(value)) if isinstance(value, tuple) else repr(value)


def resolve_from_params(config, params_file, what):
  """Takes the classes a saved ``params.yaml`` holds into ``config``, or
  checks them, as ``resolve_classes`` does with a dataset's.

  A params.yaml written before the class names were saved holds only
  ``model.num_classes`` and ``data.thing_class_ids``; the keys it lacks are
  left as they are.

  Args:
    config: ExperimentConfig, changed in place.
    params_file: path of the params.yaml (e.g. a training run's).
    what: what it belongs to, for the message ("the checkpoint runs/x").

  Raises:
    ConfigError: a set value differs from the saved one (names both).
  """
  import yaml  # pylint: disable=g-import-not-at-top
  with open(params_file, encoding='utf-8') as f:
    saved = yaml.safe_load(f) or {}
  model, data = saved.get('model') or {}, saved.get('data') or {}
  pairs = ((config.model, 'num_classes', model.get('num_classes'), 0),
           (config.data, 'thing_class_ids', data.get('thing_class_ids'), ()),
           (config.data, 'class_names', data.get('class_names'), ()),
           (config.data, 'category_ids', data.get('category_ids'), ()),
           (config.data, 'class_colors', data.get('class_colors'), ()))
  for section, key, theirs, unset in pairs:
    if theirs in (None, 0, [], ()):
      continue
    theirs = tuple(theirs) if isinstance(theirs, list) else theirs
    value = getattr(section, key)
    value = tuple(value) if isinstance(value, (list, tuple)) else value
    if value != unset and value != theirs:
      name = 'model' if section is config.model else 'data'
      raise ConfigError(
          f"'{name}.{key}' is {_short(value)} but {what} was trained with "
          f'{_short(theirs)} ({params_file}); the setting comes from '
          '--experiment, --config_file or --params_override: leave it out '
          "to take the checkpoint's (with neither --experiment nor "
          "--config_file, the checkpoint's params.yaml is the config).")
    setattr(section, key, theirs)
