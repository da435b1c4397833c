"""Helpers shared by tests: a fresh-process runner, the COCO sample, a small
demo config."""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest


def run_python(code, timeout=300):
  """Runs ``code`` in a new interpreter (fresh TensorFlow state).

  Returns the CompletedProcess; stdout and stderr are captured as text.
  """
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  return subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                        capture_output=True, text=True, timeout=timeout,
                        env=env, check=False)


# The start of a run_python script that splits the CPU into two logical
# devices (for MirroredStrategy over 2 replicas) and imports the config and
# the trainer.
TWO_CPUS = textwrap.dedent('''
    import tensorflow as tf
    cpu = tf.config.list_physical_devices('CPU')[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from pdl_tf import config_io
    from pdl_tf.training import trainer as trainer_lib
    ''')


# Two COCO val2017 images with their panoptic ground truth, kept in the
# repository (0.6 MB; source and licence in its README.md).
COCO_SAMPLE = pathlib.Path(__file__).resolve().parent / 'data' / (
    'coco_panoptic_sample')

# Large optional fixtures live outside the repository, in the project's
# shared folder beside the clone; tests that need one skip without it.
SHARED_DATA = pathlib.Path(__file__).resolve().parents[2] / 'shared' / 'data'


# A demo experiment shrunk to seconds per step: narrow heads, 64x64 crops,
# batch 2, a handful of scenes, no warmup.
SMALL_DEMO = ('model.aspp_channels=16,model.semantic_decoder_channels=16,'
              'model.semantic_low_level_channels=[8,8],'
              'model.instance_decoder_channels=8,'
              'model.instance_low_level_channels=[8,8],'
              'model.semantic_head_channels=16,model.instance_head_channels=8,'
              'data.train.crop_size=[64,64],data.eval.crop_size=[64,64],'
              'data.train.batch_size=2,data.train.num_examples=16,'
              'data.eval.num_examples=2,train.warmup_steps=0,'
              'train.steps_per_loop=2,train.checkpoint_interval=2')


def require_coco_sample():
  """The COCO sample folder (part of the repository; fails if absent)."""
  if not (COCO_SAMPLE / 'panoptic_examples.json').is_file():
    pytest.fail(f'COCO sample missing at {COCO_SAMPLE}: it is part of the '
                'repository (tests/data/coco_panoptic_sample)')
  return COCO_SAMPLE


def coco_layout(root, split='val2017'):
  """The COCO sample in COCO's own layout under ``root`` (a pathlib.Path);
  returns its JSON."""
  sample = require_coco_sample()
  (root / 'annotations').mkdir(parents=True)
  shutil.copy(sample / 'panoptic_examples.json',
              root / 'annotations' / f'panoptic_{split}.json')
  shutil.copytree(sample / 'panoptic_examples',
                  root / 'annotations' / f'panoptic_{split}')
  shutil.copytree(sample / 'input_images', root / split)
  return json.loads((sample / 'panoptic_examples.json').read_text())


def optional_fixture(name):
  """``SHARED_DATA / name``, or a clean skip naming what is missing.

  Call it in the test body or a fixture (never inside a tf.data generator,
  where a skip turns into an error).
  """
  path = SHARED_DATA / name
  if not path.exists():
    pytest.skip(f'optional fixture {name!r} not found at {path} (large '
                'files kept outside the repository, in shared/data)')
  return path


def make_lively(model, seed=0):
  """Rescales an untrained model's three head classifiers so that its
  outputs look like a trained model's: logits of a few units, a heatmap
  above the center threshold in places, offsets of several pixels. An
  untrained model predicts ~0 everywhere, which makes every merge trivial
  (no centers); tests of the export need non-trivial panoptic maps."""
  rng = np.random.default_rng(seed)
  for head, scale in ((model.semantic_head, 3000.0),
                      (model.center_head, 800.0),
                      (model.offset_head, 200.0)):
    kernel, bias = head._classifier.weights  # pylint: disable=protected-access
    kernel.assign(kernel * scale)
    bias.assign(rng.normal(0, 0.5, bias.shape).astype(np.float32) *
                (0.0 if head is model.center_head else 1.0))
  return model


# The COCO sample's categories folded into 4 classes (person, other things,
# two kinds of stuff): a dataset whose class list differs from the shipped
# experiments', for fine-tuning tests.
FOUR_CLASSES = [{'id': 1, 'name': 'person', 'isthing': 1},
                {'id': 2, 'name': 'thing', 'isthing': 1},
                {'id': 3, 'name': 'ground', 'isthing': 0},
                {'id': 4, 'name': 'background', 'isthing': 0}]


def four_class_coco(root, split='train2017'):
  """The COCO sample in COCO's layout under ``root`` with FOUR_CLASSES:
  person stays person, other things become 'thing', stuff 'ground' or
  'background' (by the parity of its COCO id). The PNGs are unchanged
  (they hold segment ids); only the JSON's categories change."""
  data = coco_layout(root, split)
  things = {c['id'] for c in data['categories'] if c['isthing']}
  for annotation in data['annotations']:
    for segment in annotation['segments_info']:
      old = segment['category_id']
      segment['category_id'] = (1 if old == 1 else 2 if old in things
                                else 3 + old % 2)
  data['categories'] = FOUR_CLASSES
  (root / 'annotations' / f'panoptic_{split}.json').write_text(
      json.dumps(data))
  return data
