"""The classes file of a ``panoptic_pngs`` dataset, without TensorFlow.

``root/classes.yaml`` or ``root/classes.json``: a list with one entry per
class, in class-index order::

  - {id: 7, name: road, isthing: false, color: [128, 64, 128]}
  - {id: 26, name: car, isthing: true}

  id       int, 0..65535 except 255: the value of the class in the semantic
           PNGs (255 is unlabeled); kept as DatasetMetadata.category_ids
  name     non-empty string
  isthing  true/false (or 1/0): a thing class has instances
  color    optional [r, g, b], ints 0..255; default [0, 0, 0]

No other keys; ids and names may not repeat. Errors name the file and the
entry (its position, from 0).
"""

import json
import os

import yaml

KEYS = ('id', 'name', 'isthing', 'color')
UNLABELED = 255


def _is_int(value):
  return isinstance(value, int) and not isinstance(value, bool)


def _checked(entry, k, path):
  """One entry as a category dict (id, name, isthing, color), or raises."""
  where = f'{path}: entry {k}'
  if not isinstance(entry, dict):
    raise ValueError(f'{where} is {entry!r:.60}, not a mapping with '
                     f'{", ".join(KEYS)}.')
  unknown = sorted(set(entry) - set(KEYS), key=str)
  if unknown:
    raise ValueError(f'{where} has unknown keys {unknown}; the keys are '
                     f'{", ".join(KEYS)} (color optional).')
  for key in KEYS[:3]:
    if key not in entry:
      raise ValueError(f'{where} lacks the key {key!r}.')
  class_id, name, isthing = entry['id'], entry['name'], entry['isthing']
  if not _is_int(class_id):
    raise ValueError(f'{where} has id {class_id!r}; ids are ints.')
  if not 0 <= class_id < 65536 or class_id == UNLABELED:
    raise ValueError(f'{where} has id {class_id}; ids are 0..65535 but '
                     f'{UNLABELED} (unlabeled in the semantic PNGs).')
  if not isinstance(name, str) or not name:
    raise ValueError(f'{where} (id {class_id}) has name {name!r}; expected '
                     'a non-empty string.')
  if isthing not in (0, 1) or not isinstance(isthing, (bool, int)):
    raise ValueError(f'{where} (id {class_id}) has isthing {isthing!r}; '
                     'expected true or false.')
  color = entry.get('color', [0, 0, 0])
  if not (isinstance(color, list) and len(color) == 3 and all(
      _is_int(c) and 0 <= c <= 255 for c in color)):
    raise ValueError(f'{where} (id {class_id}) has color {color!r}; '
                     'expected [r, g, b], ints 0..255.')
  return dict(id=class_id, name=name, isthing=int(isthing),
              color=tuple(color))


def read_classes(path):
  """The categories of a classes file, in class-index order.

  Returns:
    A list of dicts with id, name, isthing (0/1) and color (3-tuple).

  Raises:
    FileNotFoundError: no such file. ValueError: not a YAML/JSON list, a
    bad entry, a repeated id or name (file and entry named).
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f'Classes file {path!r} does not exist.')
  with open(path, encoding='utf-8') as f:
    try:
      data = (json.load(f) if path.endswith('.json') else yaml.safe_load(f))
    except (json.JSONDecodeError, yaml.YAMLError) as e:
      raise ValueError(f'{path} cannot be parsed: {e}') from e
  if not isinstance(data, list) or not data:
    raise ValueError(f'{path} must hold a non-empty list of classes '
                     f'({{{", ".join(KEYS)}}}), got {type(data).__name__}.')
  classes = [_checked(entry, k, path) for k, entry in enumerate(data)]
  for key in ('id', 'name'):
    first = {}
    for k, category in enumerate(classes):
      if category[key] in first:
        raise ValueError(f'{path}: entry {k} repeats {key} '
                         f'{category[key]!r} of entry {first[category[key]]}.')
      first[category[key]] = k
  return classes
