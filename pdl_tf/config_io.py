"""Load, override, validate and save experiment configs.

Imports no TensorFlow (see ``pdl_tf.config``): the commands call it before
TensorFlow starts.

Example:
  >>> config = load_config('demo', params_override='train.steps=10')
  >>> save_config(config, '/tmp/run')   # writes /tmp/run/params.yaml
"""

import dataclasses
import difflib
import os
import re
import typing

import yaml

from pdl_tf import atomic_write
from pdl_tf import experiments
from pdl_tf import normalization
from pdl_tf import run_params
from pdl_tf.config import Config
from pdl_tf.config import ConfigError
from pdl_tf.config import ExperimentConfig
from pdl_tf.data.catalog import names as data_names
from pdl_tf.model.common import names as model_names

PARAMS_FILE = run_params.PARAMS_FILE


def load_config(experiment=None, config_files=(), params_override=None):
  """Builds, overrides and validates an ExperimentConfig.

  Args:
    experiment: name of a YAML file in configs/ (see experiments.py), or None
      for the defaults.
    config_files: YAML files applied in order after the experiment.
    params_override: a string ``a.b=1,c=[1,2]`` or YAML/JSON, or a dict, or a
      list of those, applied last.

  An experiment's class settings (``CLASS_KEYS``) belong to its data: a
  config file or override that names data (``data.dataset``,
  ``data.train.path`` or ``data.eval.path``) without setting them too
  leaves them unset, to be taken from that data (the same values when it
  is the experiment's dataset).

  Returns:
    A validated ExperimentConfig.

  Raises:
    ConfigError: unknown experiment, missing file, bad YAML, unknown key or
      bad value; the message names the file or key.
  """
  config = ExperimentConfig()
  if experiment:
    apply_yaml_file(config, experiments.experiment_path(experiment))
  later = []
  for path in config_files or ():
    later.append(apply_yaml_file(config, path))
  overrides = params_override
  if overrides is not None and not isinstance(overrides, (list, tuple)):
    overrides = [overrides]
  for override in overrides or ():
    later.append(apply_override(config, override, source='--params_override'))
  if experiment and any(_names_data(values) for values in later):
    for section, key in CLASS_KEYS:
      if not any(key in (values.get(section) or {}) for values in later):
        setattr(getattr(config, section), key,
                0 if key == 'num_classes' else ())
  validate(config)
  return config


def _names_data(values):
  """True if an override mapping sets the dataset or a split's path."""
  data = values.get('data') or {}
  return 'dataset' in data or any(
      'path' in (data.get(split) or {}) for split in ('train', 'eval'))


# The settings that name a dataset's classes; unset (0 / ()) = the data's.
CLASS_KEYS = (('model', 'num_classes'), ('data', 'thing_class_ids'),
              ('data', 'class_names'), ('data', 'category_ids'))


def apply_yaml_file(config, path):
  """Overrides ``config`` with the mapping in YAML file ``path``; returns
  the mapping."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise ConfigError(f'Config file {path!r} does not exist.')
  with open(path, encoding='utf-8') as f:
    try:
      values = yaml.safe_load(f)
    except yaml.YAMLError as e:
      raise ConfigError(f'Config file {path!r} is not valid YAML: {e}') from e
  return apply_override(config, values or {}, source=path)


def apply_override(config, override, source):
  """Overrides ``config`` with a dict or an ``a.b=1`` / YAML / JSON string;
  returns the override as a nested dict."""
  if isinstance(override, str):
    override = _parse_override_string(override, source)
  if not isinstance(override, dict):
    raise ConfigError(f'{source}: expected a mapping of keys to values, got '
                      f'{type(override).__name__}.')
  _check_keys(config, override, source, prefix='', root=config)
  config.override(override)
  return override


def _parse_override_string(text, source):
  """``a.b=1,c=[1,2]`` (values in YAML) or a YAML/JSON mapping -> dict."""
  text = text.strip()
  if not text:
    return {}
  if '=' not in text or text.startswith('{'):
    return _load_yaml(text, source)
  result = {}
  for item in _split_top_level(text):
    key, sep, value = item.partition('=')
    key = key.strip()
    if not sep or not key or any(not part for part in key.split('.')):
      raise ConfigError(f'{source}: cannot parse {item.strip()!r} in '
                        f'{text!r}; expected key=value, e.g. train.steps=10.')
    node = result
    *sections, name = key.split('.')
    for section in sections:
      node = node.setdefault(section, {})
      if not isinstance(node, dict):
        raise ConfigError(f'{source}: {key!r} conflicts with an earlier '
                          'value in the same override.')
    node[name] = _load_yaml(value.strip(), source) if value.strip() else ''
  return result


def _split_top_level(text):
  """``text`` split at the commas outside brackets, braces and quotes."""
  items, depth, quote, start = [], 0, None, 0
  for i, char in enumerate(text):
    if quote:
      quote = None if char == quote else quote
    elif char in '\'"':
      quote = char
    elif char in '[{':
      depth += 1
    elif char in ']}':
      depth -= 1
    elif char == ',' and depth == 0:
      items.append(text[start:i])
      start = i + 1
  items.append(text[start:])
  return [item for item in items if item.strip()]


def _load_yaml(text, source):
  try:
    return yaml.safe_load(text)
  except yaml.YAMLError as e:
    raise ConfigError(f'{source}: cannot parse {text!r}: {e}') from e


def all_keys(config, prefix=''):
  """Every full key of ``config`` (e.g. 'data.train.batch_size'), sorted."""
  keys = []
  for field in dataclasses.fields(config):
    value = getattr(config, field.name)
    if isinstance(value, Config):
      keys.extend(all_keys(value, prefix + field.name + '.'))
    else:
      keys.append(prefix + field.name)
  return sorted(keys)


def close_keys(root, path, count=3):
  """Full keys of ``root`` that ``path`` (an unknown key) may have meant:
  those ending in the same name, then those spelled alike (difflib), most
  alike first; at most ``count``."""
  known = all_keys(root)
  leaf = path.split('.')[-1]

  def similarity(key):
    return difflib.SequenceMatcher(None, path, key).ratio()

  same_leaf = sorted((k for k in known if k.split('.')[-1] == leaf),
                     key=similarity, reverse=True)
  alike = difflib.get_close_matches(path, known, n=count, cutoff=0.8)
  return list(dict.fromkeys(same_leaf + alike))[:count]


def _unknown_key_message(source, path, prefix, fields, root):
  suggestions = close_keys(root, path)
  hint = (f'; did you mean {" or ".join(repr(k) for k in suggestions)}?'
          if suggestions else '.')
  return (f'{source}: unknown config key {path!r}{hint} Known keys'
          f'{" under " + repr(prefix[:-1]) if prefix else ""}: '
          f'{", ".join(sorted(fields))}.')


def _check_keys(config, override, source, prefix, root):
  """Raises ConfigError for the first key of ``override`` not in ``config``,
  suggesting close keys of ``root`` (the whole config)."""
  fields = {f.name: f for f in dataclasses.fields(config)}
  for key, value in override.items():
    path = prefix + str(key)
    if key not in fields:
      raise ConfigError(_unknown_key_message(
          source, _full_path(path, value), prefix, fields, root))
    current = getattr(config, key)
    if isinstance(current, Config):
      if not isinstance(value, dict):
        raise ConfigError(f'{source}: {path!r} is a section; expected a '
                          f'mapping, got {value!r}.')
      _check_keys(current, value, source, prefix=path + '.', root=root)


def _full_path(path, value):
  """'train' + {'batch_size': -3} -> 'train.batch_size' (one key deep)."""
  while isinstance(value, dict) and len(value) == 1:
    key, value = next(iter(value.items()))
    path += f'.{key}'
  return path


def _check_type(path, value, annotation):
  """Returns ``value`` coerced to ``annotation``, or raises ConfigError."""
  origin = typing.get_origin(annotation)
  if origin is tuple:
    if not isinstance(value, (list, tuple)):
      raise ConfigError(f'{path!r} must be a list, got {value!r}.')
    element = typing.get_args(annotation)[0]
    return tuple(_check_type(f'{path}[{i}]', v, element)
                 for i, v in enumerate(value))
  if annotation is float and isinstance(value, int) and not isinstance(
      value, bool):
    return float(value)
  if annotation is int and isinstance(value, bool):
    raise ConfigError(f'{path!r} must be an int, got {value!r}.')
  if not isinstance(value, annotation):
    raise ConfigError(
        f'{path!r} must be {annotation.__name__}, got {value!r} '
        f'({type(value).__name__}).')
  return value


def _check_types(config, prefix=''):
  hints = typing.get_type_hints(type(config))
  for field in dataclasses.fields(config):
    path = prefix + field.name
    value = getattr(config, field.name)
    if isinstance(value, Config):
      _check_types(value, path + '.')
    else:
      setattr(config, field.name, _check_type(path, value, hints[field.name]))


def _require(condition, path, message):
  if not condition:
    raise ConfigError(f'{path!r} {message}.')


def _check_values(config):
  """Range checks; each names the key."""
  model, data = config.model, config.data
  try:
    model_names.check_backbone_args(model.backbone.type,
                                    model.backbone.output_stride)
  except ValueError as e:
    raise ConfigError(f"'model.backbone': {e}") from e
  _require(model.precision in model_names.PRECISIONS, 'model.precision',
           f'must be one of {model_names.PRECISIONS}, got '
           f'{model.precision!r}')
  _require(model.input_normalization in normalization.NORMALIZATIONS,
           'model.input_normalization', f'must be one of '
           f'{normalization.NORMALIZATIONS}, got {model.input_normalization!r}')
  _require(model.num_classes >= 0, 'model.num_classes',
           "must be >= 1, or 0 for the dataset's class count")
  _require(0.0 <= model.dropout_rate < 1.0, 'model.dropout_rate',
           'must be in [0, 1)')
  _require(model.backbone.width_multiplier > 0,
           'model.backbone.width_multiplier', 'must be > 0')
  for name in ('train', 'eval'):
    split = getattr(data, name)
    path = f'data.{name}'
    _require(len(split.crop_size) == 2 and min(split.crop_size) > 0,
             f'{path}.crop_size', 'must be [height, width] > 0')
    _require(split.batch_size >= 1, f'{path}.batch_size', 'must be >= 1')
    _require(0 < split.min_scale <= split.max_scale, f'{path}.min_scale',
             'must be > 0 and <= max_scale')
    _require(split.num_examples >= 0, f'{path}.num_examples', 'must be >= 0')
    _require(split.max_size >= 0, f'{path}.max_size', 'must be >= 0 (0 = '
             'no resize)')
  _require(data.dataset in data_names.DATASETS, 'data.dataset',
           f'must be one of {data_names.DATASETS}, got {data.dataset!r}')
  _check_class_lists(model, data)
  _require(data.label_divisor > 0, 'data.label_divisor', 'must be > 0')
  _require(data.center_sigma > 0, 'data.center_sigma', 'must be > 0')
  _require(data.max_segments >= 1, 'data.max_segments', 'must be >= 1')
  losses = config.losses
  _require(0 < losses.top_k_percent <= 1, 'losses.top_k_percent',
           'must be in (0, 1]')
  for name in ('semantic_weight', 'center_weight', 'offset_weight'):
    _require(getattr(losses, name) >= 0, f'losses.{name}', 'must be >= 0')
  post = config.postprocess
  _require(post.nms_kernel >= 1 and post.nms_kernel % 2 == 1,
           'postprocess.nms_kernel', 'must be a positive odd int')
  _require(post.top_k >= 1, 'postprocess.top_k', 'must be >= 1')
  _require(post.top_k < data.label_divisor, 'postprocess.top_k',
           f'({post.top_k}) must be < data.label_divisor '
           f'({data.label_divisor}): the merge numbers up to top_k instances '
           'of a class from 1, and instance id label_divisor would read as '
           'the next class')
  _require(0 <= post.center_threshold < 1, 'postprocess.center_threshold',
           'must be in [0, 1)')
  train = config.train
  _require(train.steps >= 1, 'train.steps', 'must be >= 1')
  _require(train.learning_rate > 0, 'train.learning_rate', 'must be > 0')
  _require(train.steps_per_loop >= 1, 'train.steps_per_loop', 'must be >= 1')
  _require(train.checkpoint_interval >= 1, 'train.checkpoint_interval',
           'must be >= 1')
  _require(train.checkpoint_interval_minutes >= 0,
           'train.checkpoint_interval_minutes', 'must be >= 0 (0 = off)')
  _require(len(config.export.input_size) == 2 and
           min(config.export.input_size) > 0, 'export.input_size',
           'must be [height, width] > 0')
  _require(config.export.max_image_pixels >= 1, 'export.max_image_pixels',
           'must be >= 1')
  # The sizes the network sees: training crops, eval padding, the export.
  for path, size in (('data.train.crop_size', data.train.crop_size),
                     ('data.eval.crop_size', data.eval.crop_size),
                     ('export.input_size', config.export.input_size)):
    error = model_names.input_size_error(size, model.backbone.output_stride)
    _require(error is None, path, f'{list(size)}: {error}')


def _check_class_lists(model, data):
  """Thing class ids in range and distinct; names and category ids one per
  class, category ids distinct (where the class count is known)."""
  count = model.num_classes or len(data.class_names) or len(
      data.category_ids)
  if count:
    _require(all(0 <= c < count for c in data.thing_class_ids),
             'data.thing_class_ids', f'must be class ids in [0, {count}) '
             '(model.num_classes)')
  _require(len(set(data.thing_class_ids)) == len(data.thing_class_ids),
           'data.thing_class_ids', 'must not repeat a class')
  for key in ('class_names', 'category_ids', 'class_colors'):
    values = getattr(data, key)
    _require(not values or not count or len(values) == count, f'data.{key}',
             f'must have one entry per class ({count}), got {len(values)}')
  _require(len(set(data.category_ids)) == len(data.category_ids),
           'data.category_ids', 'must not repeat a category id')
  for color in data.class_colors:
    _require(re.fullmatch('#[0-9a-fA-F]{6}', color), 'data.class_colors',
             f"must be '#rrggbb' colours, got {color!r}")


def validate(config):
  """Checks types (coercing int to float where a float is expected), then
  value ranges. Raises ConfigError naming the key."""
  _check_types(config)
  _check_values(config)


def _plain(value):
  """Tuples to lists, recursively, so that yaml.safe_dump can write them."""
  if isinstance(value, dict):
    return {k: _plain(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_plain(v) for v in value]
  return value


def save_config(config, directory):
  """Writes ``directory/params.yaml`` (whole or not at all: atomic_write)
  and returns its path."""
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, PARAMS_FILE)
  with atomic_write.atomic_path(path) as temporary:
    with open(temporary, 'w', encoding='utf-8') as f:
      yaml.safe_dump(_plain(config.as_dict()), f, sort_keys=False)
  return path


def _flat(value, prefix=''):
  """{'a.b': leaf} of a nested dict."""
  if not isinstance(value, dict):
    return {prefix: value}
  flat = {}
  for key, item in value.items():
    flat.update(_flat(item, f'{prefix}.{key}' if prefix else key))
  return flat


def changed_keys(config, directory):
  """What ``save_config(config, directory)`` would change in an existing
  params.yaml: [(dotted key, saved value, new value)], sorted by key; []
  when there is no params.yaml or nothing differs. A params.yaml that is
  not a YAML mapping counts as one change of the key '(whole file)'."""
  path = os.path.join(directory, PARAMS_FILE)
  if not os.path.isfile(path):
    return []
  with open(path, encoding='utf-8') as f:
    try:
      saved = yaml.safe_load(f)
    except yaml.YAMLError:
      saved = None
  new = _flat(_plain(config.as_dict()))
  if not isinstance(saved, dict):
    return [('(whole file)', saved, None)]
  old = _flat(saved)
  return [(key, old.get(key), new.get(key))
          for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
