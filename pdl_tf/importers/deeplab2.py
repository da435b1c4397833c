"""Imports a published deeplab2 Panoptic-DeepLab checkpoint into pdl_tf.

deeplab2 (google-research/deeplab2) publishes its trained models as TF
checkpoints written by its trainer: the model's objects (``encoder``,
``semantic_decoder``, ... see ``model.deeplab2_layout``) plus
``global_step``, ``save_counter`` and the optimizer (``optimizer/...`` and
two Adam slots per weight, ``<key>/.OPTIMIZER_SLOT/optimizer/{m,v}/...``).
``import_checkpoint`` keeps the model's variables only, requires each of
our network's weights to be there exactly once with its shape, and writes a
pdl_tf model folder: ``ckpt-0`` as ``pdl-train`` writes it (model + a fresh
optimizer at step 0, so ``pdl-train --model_dir`` fine-tunes from it),
``params.yaml`` and ``deeplab2_import.json`` (where the weights came from).
The folder appears whole or not at all (written aside, then renamed).

COCO: deeplab2's COCO models predict 134 classes, class 0 being void
(its ``ignore_label``, never a training target) and 1..133 the COCO
categories in id order; pdl_tf numbers them 0..132 in the same order, so
the importer drops the void logit (``semantic_last_layer`` channel 0).
"""

import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from pdl_tf import config_io
from pdl_tf.importers.deeplab2_checks import check_checkpoint_path
from pdl_tf.importers.deeplab2_checks import check_experiment
from pdl_tf.importers.deeplab2_checks import check_model_dir
from pdl_tf.model.backbones import deeplab2_layout
from pdl_tf.model import factory
from pdl_tf.training import optimizer as optimizer_lib

SKIPPED_KEYS = ('_CHECKPOINTABLE_OBJECT_GRAPH',)
SKIPPED_PREFIXES = ('optimizer/', 'global_step/', 'save_counter/')
SLOT_MARK = '/.OPTIMIZER_SLOT/'
# Datasets whose deeplab2 models put a void class first (dataset.py:
# COCO_PANOPTIC_INFORMATION, ignore_label 0).
VOID_FIRST_DATASETS = ('coco_panoptic',)
_VOID_KEYS = ('semantic_last_layer/kernel', 'semantic_last_layer/bias')
RECORD_FILE = 'deeplab2_import.json'
_LISTED = 12  # names listed per kind of mismatch


class CheckpointError(ValueError):
  """The checkpoint cannot be imported; the message names the checkpoint
  and the variables."""


class CheckpointMismatchError(CheckpointError):
  """The checkpoint does not hold the experiment's network (missing,
  unused or wrongly shaped variables, all named)."""


def resolve_prefix(path):
  """The checkpoint prefix that ``path`` names: a prefix (``.../ckpt-N``),
  or a folder (its ``checkpoint`` state file's latest, else its only
  ``*.index``).

  Raises:
    FileNotFoundError: nothing readable there (names what was looked for).
  """
  if os.path.isdir(path):
    latest = tf.train.latest_checkpoint(path)
    if latest:
      return latest
    indexes = sorted(name for name in os.listdir(path)
                     if name.endswith('.index'))
    if len(indexes) != 1:
      raise FileNotFoundError(
          f'checkpoint folder {path!r} has no "checkpoint" state file and '
          f'{len(indexes)} *.index files ({", ".join(indexes) or "none"}); '
          'pass the checkpoint prefix, e.g. DIR/ckpt-60000.')
    return os.path.join(path, indexes[0][:-len('.index')])
  check_checkpoint_path(path)
  return path


def model_keys(reader):
  """{key without KEY_SUFFIX: shape} of a checkpoint's model variables:
  everything but the optimizer, its slots and the counters."""
  suffix = deeplab2_layout.KEY_SUFFIX
  keys = {}
  for key, shape in reader.get_variable_to_shape_map().items():
    if (key in SKIPPED_KEYS or key.startswith(SKIPPED_PREFIXES) or
        SLOT_MARK in key):
      continue
    keys[key[:-len(suffix)] if key.endswith(suffix) else key] = list(shape)
  return keys


def _listing(title, names):
  shown = ', '.join(names[:_LISTED])
  more = f' and {len(names) - _LISTED} more' if len(names) > _LISTED else ''
  return f'{len(names)} {title}: {shown}{more}'


def check_match(prefix, expected, found):
  """Raises CheckpointMismatchError unless ``found`` (checkpoint key ->
  shape) has exactly the keys of ``expected`` (key -> shape), shape for
  shape. The message lists missing, unused and wrongly shaped variables."""
  missing = sorted(set(expected) - set(found))
  unused = sorted(set(found) - set(expected))
  wrong = sorted(f'{key} (checkpoint {found[key]}, network {expected[key]})'
                 for key in set(expected) & set(found)
                 if list(found[key]) != list(expected[key]))
  problems = [_listing(title, names) for title, names in (
      ('variables of the network missing from the checkpoint', missing),
      ('checkpoint variables the network does not have', unused),
      ('variables of the wrong shape', wrong)) if names]
  if problems:
    raise CheckpointMismatchError(
        f'checkpoint {prefix!r} does not hold this network (another '
        'backbone, output stride or dataset?): ' + '; '.join(problems) + '.')


def _expected_shapes(variables, void_first):
  shapes = {key: variable.shape.as_list()
            for key, variable in variables.items()}
  if void_first:
    for key in _VOID_KEYS:
      shapes[key][-1] += 1
  return shapes


def read_values(prefix, variables, void_first=False):
  """{key: numpy value} for every key of ``variables`` (key -> variable),
  read from checkpoint ``prefix`` and checked.

  Raises:
    CheckpointError: the checkpoint cannot be read (truncated, not a
      checkpoint) or a value is not finite; names the file and the variable.
    CheckpointMismatchError: see check_match.
  """
  try:
    reader = tf.train.load_checkpoint(prefix)
    found = model_keys(reader)
  except (tf.errors.OpError, ValueError) as e:
    raise CheckpointError(f'cannot read checkpoint {prefix!r}: '
                     f'{getattr(e, "message", e)}') from e
  check_match(prefix, _expected_shapes(variables, void_first), found)
  values, bad = {}, []
  for key in sorted(variables):
    try:
      value = reader.get_tensor(key + deeplab2_layout.KEY_SUFFIX)
    except (tf.errors.OpError, IndexError) as e:  # IndexError: truncated
      raise CheckpointError(
          f'cannot read variable {key!r} from checkpoint {prefix!r} '
          f'(truncated or damaged {os.path.basename(prefix)}.data-* '
          f'file?): {getattr(e, "message", e)}') from e
    if void_first and key in _VOID_KEYS:
      value = value[..., 1:]
    if not np.all(np.isfinite(value)):
      bad.append(key)
    values[key] = value
  if bad:
    raise CheckpointError(f'checkpoint {prefix!r} holds NaN or Inf in '
                     f'{_listing("variables", bad)}.')
  return values


def _write_model_dir(model, config, directory, record):
  """ckpt-0 (model + fresh optimizer, as pdl-train), params.yaml and the
  import record, in ``directory``."""
  optimizer, _ = optimizer_lib.build_optimizer(
      config.train, use_float16=config.model.precision == 'mixed_float16')
  checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
  manager = tf.train.CheckpointManager(
      checkpoint, directory, max_to_keep=3,
      step_counter=optimizer.iterations)
  record['checkpoint'] = os.path.basename(manager.save(checkpoint_number=0))
  config_io.save_config(config, directory)
  with open(os.path.join(directory, RECORD_FILE), 'w',
            encoding='utf-8') as f:
    json.dump(record, f, indent=1)


def import_checkpoint(checkpoint, config, model_dir, experiment=None):
  """Imports deeplab2 checkpoint ``checkpoint`` into a new ``model_dir``.

  Args:
    checkpoint: a deeplab2 checkpoint folder (as untarred) or prefix.
    config: ExperimentConfig of a deeplab2 experiment (``deeplab2_*``
      backbone, 'inception' normalization).
    model_dir: the folder to create; it must not exist (or be empty).
    experiment: the experiment's name, for messages.

  Returns:
    The restored PanopticDeepLab.

  Raises:
    ConfigError: not a deeplab2 experiment.
    FileExistsError: ``model_dir`` exists and is not empty.
    FileNotFoundError: no checkpoint at ``checkpoint``.
    CheckpointError (CheckpointMismatchError): see read_values.
  Nothing is written to ``model_dir`` when any of these is raised.
  """
  check_experiment(config, experiment)
  check_model_dir(model_dir)
  prefix = resolve_prefix(checkpoint)
  model = factory.build_model(config.model)
  variables = deeplab2_layout.variable_map(model)
  void_first = config.data.dataset in VOID_FIRST_DATASETS
  values = read_values(prefix, variables, void_first)
  for key, value in values.items():
    variables[key].assign(value)
  record = {'source': os.path.abspath(prefix), 'experiment': experiment,
            'variables': len(values), 'dropped_void_class': void_first}
  parent = os.path.dirname(os.path.abspath(model_dir))
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix='.pdl-import-', dir=parent)
  umask = os.umask(0)
  os.umask(umask)
  os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0700 -> a normal folder
  try:
    _write_model_dir(model, config, staging, record)
    if os.path.isdir(model_dir):
      os.rmdir(model_dir)  # empty, checked above
    os.rename(staging, model_dir)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  return model
