"""Test helpers: checkpoints laid out as deeplab2's trainer writes them.

``write_deeplab2_checkpoint`` saves values under deeplab2's keys
(``<object path>/.ATTRIBUTES/VARIABLE_VALUE``) by building a tree of
trackable objects with those attribute names, plus what deeplab2's trainer
adds: ``global_step``, an ``optimizer`` with ``iter`` and Adam slots
(``<key>/.OPTIMIZER_SLOT/optimizer/{m,v}/...``) for every weight.
"""

import os
import pathlib

import numpy as np
import tensorflow as tf

from pdl_tf import config_io
from pdl_tf.model.backbones import deeplab2_layout
from pdl_tf.model import factory

LAYOUTS = pathlib.Path(__file__).parent / 'data' / 'deeplab2_layouts'
GOLDEN = (pathlib.Path(__file__).resolve().parents[1].parent / 'shared' /
          'data' / 'deeplab2_golden' / 'mnv3s_os16_cityscapes')

# A deeplab2 experiment with narrow decoder and heads: seconds to build.
NARROW = ('model.aspp_channels=16,model.semantic_decoder_channels=16,'
          'model.semantic_low_level_channels=[8,8],'
          'model.instance_decoder_channels=8,'
          'model.instance_low_level_channels=[8,8],'
          'model.semantic_head_channels=16,model.instance_head_channels=8')
MNV3S = 'cityscapes_deeplab2_mnv3_small_os16'


def read_layout(path):
  """{key without the suffix: shape} of a ``tf.train.list_variables``
  listing (name <tab> shape <tab> dtype), model variables only."""
  keys = {}
  suffix = deeplab2_layout.KEY_SUFFIX
  for line in pathlib.Path(path).read_text().splitlines():
    if line.startswith('#') or not line.strip():
      continue
    name, shape, _ = line.split('\t')
    if (name.endswith(suffix) and '.OPTIMIZER_SLOT' not in name and
        not name.startswith(('optimizer/', 'global_step/', 'save_counter/'))):
      keys[name[:-len(suffix)]] = [int(v) for v in
                                   shape.strip('[]').split(',') if v.strip()]
  return keys


class _Node(tf.Module):
  pass


def _tree(values):
  """A trackable tree whose object paths are the keys of ``values``."""
  root = _Node()
  for key, value in values.items():
    node = root
    *parents, leaf = key.split('/')
    for name in parents:
      if name not in node.__dict__:
        setattr(node, name, _Node())
      node = getattr(node, name)
    setattr(node, leaf, tf.Variable(value))
  return root


def write_deeplab2_checkpoint(directory, values, step=60000):
  """Writes ``values`` ({deeplab2 key: array}) as deeplab2's trainer does,
  with Adam slots and counters; returns the prefix ``directory/ckpt-N``."""
  tree = _tree(values)
  objects = {name: child for name, child in vars(tree).items()
             if isinstance(child, tf.Module) and not name.startswith('_')}
  optimizer = _Node()
  optimizer.iter = tf.Variable(np.int64(step))
  optimizer.beta_1 = tf.Variable(0.9)
  checkpoint = tf.train.Checkpoint(
      global_step=tf.Variable(np.int64(step)), optimizer=optimizer, **objects)
  prefix = checkpoint.write(os.path.join(directory, f'ckpt-{step}'))
  _add_slots(prefix, values)
  with open(os.path.join(directory, 'checkpoint'), 'w') as f:
    f.write(f'model_checkpoint_path: "ckpt-{step}"\n')
  return prefix


def _add_slots(prefix, values):
  """Rewrites ``prefix`` with an Adam slot pair per key, as the trainer's
  optimizer saves them (a loader must ignore them)."""
  reader = tf.train.load_checkpoint(prefix)
  tensors = {key: reader.get_tensor(key)
             for key in reader.get_variable_to_shape_map()
             if key != '_CHECKPOINTABLE_OBJECT_GRAPH'}
  for key, value in values.items():
    for slot in ('m', 'v'):
      tensors[f'{key}/.OPTIMIZER_SLOT/optimizer/{slot}'
              f'{deeplab2_layout.KEY_SUFFIX}'] = np.zeros_like(value)
  graph = reader.get_tensor('_CHECKPOINTABLE_OBJECT_GRAPH')
  names = sorted(tensors)
  with tf.device('/cpu:0'):
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names + [
        '_CHECKPOINTABLE_OBJECT_GRAPH'], shape_and_slices=[''] * (
            len(names) + 1), tensors=[tensors[n] for n in names] + [graph])


def random_deeplab2_values(model, seed=0, extra_classes=0):
  """{deeplab2 key: random array} for every weight of ``model``; with
  ``extra_classes`` the semantic last layer gets that many more channels
  in front (deeplab2's COCO void class)."""
  rng = np.random.default_rng(seed)
  values = {}
  for key, variable in deeplab2_layout.variable_map(model).items():
    shape = variable.shape.as_list()
    if extra_classes and key.startswith('semantic_last_layer/'):
      shape[-1] += extra_classes
    if key.endswith('moving_variance'):
      value = rng.uniform(0.5, 1.5, shape)
    elif key.endswith('gamma'):
      value = rng.uniform(0.5, 1.5, shape)
    else:
      value = rng.normal(0, 0.2, shape)
    values[key] = value.astype(np.float32)
  return values


def build(experiment=MNV3S, overrides=NARROW):
  """(config, built model) of ``experiment`` with ``overrides``."""
  config = config_io.load_config(experiment, params_override=overrides)
  return config, factory.build_model(config.model)
