"""pdl-import deeplab2: checkpoints written in deeplab2's layout (with its
trainer's optimizer slots and counters) import into pdl_tf model folders
usable by load_model, pdl-train, pdl-export and pdl-predict; bad input is
refused by name, with nothing written."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import deeplab2_checkpoints as d2
from helpers import require_coco_sample
from pdl_tf import run_folder
from pdl_tf.cli.shared import common
from pdl_tf.cli import export as export_cli
from pdl_tf.cli import import_checkpoint
from pdl_tf.cli import predict as predict_cli
from pdl_tf.model.backbones import deeplab2_layout
from pdl_tf.model import factory
from pdl_tf.training import strategy as strategy_lib
from pdl_tf.training import trainer as trainer_lib

ARGS = ['deeplab2', '--experiment', d2.MNV3S, '--params_override', d2.NARROW]


def run_import(argv):
  return common.run(import_checkpoint.main, argv,
                    import_checkpoint.build_parser())


@pytest.fixture(scope='module')
def source(tmp_path_factory):
  """A narrow deeplab2 MobileNetV3-S network with random weights, saved as
  deeplab2's trainer saves, and its outputs on a 65x129 image."""
  config, model = d2.build()
  values = d2.random_deeplab2_values(model)
  for key, variable in deeplab2_layout.variable_map(model).items():
    variable.assign(values[key])
  folder = tmp_path_factory.mktemp('deeplab2_ckpt')
  prefix = d2.write_deeplab2_checkpoint(str(folder), values)
  image = np.random.default_rng(1).uniform(0, 255, [1, 65, 129, 3])
  outputs = {k: v.numpy() for k, v in model(image.astype(np.float32),
                                            training=False).items()}
  return dict(config=config, values=values, folder=folder, prefix=prefix,
              image=image.astype(np.float32), outputs=outputs)


def _nothing_written(out):
  assert not out.exists()
  assert not [p for p in os.listdir(out.parent) if p.startswith('.pdl-')]


def test_help_runs_without_installing():
  result = subprocess.run(
      [sys.executable, '-m', 'pdl_tf.cli.import_checkpoint', 'deeplab2',
       '--help'], capture_output=True, text=True, check=False, timeout=120)
  assert result.returncode == 0, result.stderr
  assert '--checkpoint' in result.stdout


def test_import_reproduces_the_source_network(source, tmp_path, capsys):
  out = tmp_path / 'imported'
  # The folder as untarred (with its "checkpoint" state file).
  assert run_import(ARGS + ['--checkpoint', str(source['folder']),
                            '--model_dir', str(out)]) == 0
  assert 'imported' in capsys.readouterr().out
  assert sorted(os.listdir(out)) == [
      'checkpoint', 'ckpt-0.data-00000-of-00001', 'ckpt-0.index',
      'deeplab2_import.json', 'params.yaml']
  record = json.loads((out / 'deeplab2_import.json').read_text())
  assert record['variables'] == len(source['values'])
  model = run_folder.load_model(str(out))
  got = model(source['image'], training=False)
  for key, want in source['outputs'].items():
    np.testing.assert_allclose(got[key].numpy(), want, rtol=1e-5, atol=1e-5)


def test_imported_folder_resumes_in_pdl_train_at_step_0(source, tmp_path):
  out = tmp_path / 'imported'
  assert run_import(ARGS + ['--checkpoint', source['prefix'],
                            '--model_dir', str(out)]) == 0
  config = d2.build()[0]
  config.override({'data': {'train': {'crop_size': [65, 65]}}})
  trainer = trainer_lib.Trainer(config, str(out),
                                strategy_lib.get_strategy('default'))
  assert trainer.step == 0
  variables = deeplab2_layout.variable_map(trainer.model)
  key = 'semantic_last_layer/kernel'
  np.testing.assert_array_equal(variables[key].numpy(),
                                source['values'][key])


def _truncate(folder, suffix, tmp_path):
  copy = tmp_path / 'truncated'
  shutil.copytree(folder, copy)
  path = next(copy.glob(f'*{suffix}'))
  path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
  return copy, path.name


def test_truncated_data_file_names_the_file(source, tmp_path, capsys):
  copy, _ = _truncate(source['folder'], '.data-00000-of-00001', tmp_path)
  out = tmp_path / 'out'
  assert run_import(ARGS + ['--checkpoint', str(copy),
                            '--model_dir', str(out)]) == 2
  err = capsys.readouterr().err
  assert 'ckpt-60000' in err and 'cannot read' in err
  _nothing_written(out)


def test_truncated_index_names_the_file(source, tmp_path, capsys):
  copy, _ = _truncate(source['folder'], '.index', tmp_path)
  out = tmp_path / 'out'
  assert run_import(ARGS + ['--checkpoint', str(copy / 'ckpt-60000'),
                            '--model_dir', str(out)]) == 2
  assert 'cannot read checkpoint' in capsys.readouterr().err
  _nothing_written(out)


def test_a_class_count_other_than_the_datasets_is_refused_first(
    source, tmp_path, capsys):
  out = tmp_path / 'out'
  assert run_import(ARGS + ['--params_override', 'model.num_classes=20',
                            '--checkpoint', source['prefix'],
                            '--model_dir', str(out)]) == 2
  assert ("'model.num_classes' is 20 but dataset 'cityscapes' has 19 "
          'classes: 0 road') in capsys.readouterr().err
  _nothing_written(out)


def test_missing_checkpoint(tmp_path, capsys):
  out = tmp_path / 'out'
  assert run_import(ARGS + ['--checkpoint', str(tmp_path / 'ckpt-5'),
                            '--model_dir', str(out)]) == 2
  assert 'ckpt-5.index' in capsys.readouterr().err
  _nothing_written(out)


def test_other_dataset_names_the_wrong_shapes(source, tmp_path, capsys):
  # A dataset whose classes are not known before the import (no files
  # here), so the 20 classes reach the network.
  out = tmp_path / 'out'
  assert run_import(ARGS + ['--params_override',
                            'model.num_classes=20,data.dataset=tfrecord',
                            '--checkpoint', source['prefix'],
                            '--model_dir', str(out)]) == 2
  err = capsys.readouterr().err
  assert '2 variables of the wrong shape' in err
  assert 'semantic_last_layer/kernel (checkpoint [1, 1, 16, 19], network ' \
         '[1, 1, 16, 20])' in err
  _nothing_written(out)


def test_other_backbone_names_missing_and_unused(source, tmp_path, capsys):
  out = tmp_path / 'out'
  assert run_import([
      'deeplab2', '--experiment', 'cityscapes_deeplab2_mnv3_large_os16',
      '--params_override', d2.NARROW, '--checkpoint', source['prefix'],
      '--model_dir', str(out)]) == 2
  err = capsys.readouterr().err
  assert 'missing from the checkpoint: encoder/_blocks/' in err
  assert 'checkpoint variables the network does not have' in err
  _nothing_written(out)


def test_not_a_deeplab2_experiment(source, tmp_path, capsys):
  out = tmp_path / 'out'
  assert run_import(['deeplab2', '--experiment', 'demo', '--checkpoint',
                     source['prefix'], '--model_dir', str(out)]) == 2
  assert "experiment 'demo' is not a deeplab2 one" in capsys.readouterr().err
  _nothing_written(out)


def test_existing_model_dir_is_not_touched(source, tmp_path, capsys):
  out = tmp_path / 'out'
  out.mkdir()
  (out / 'keep.txt').write_text('mine')
  assert run_import(ARGS + ['--checkpoint', source['prefix'],
                            '--model_dir', str(out)]) == 2
  assert 'already exists' in capsys.readouterr().err
  assert os.listdir(out) == ['keep.txt']


def test_nan_is_refused_by_name(source, tmp_path, capsys):
  values = dict(source['values'])
  key = 'instance_decoder/_aspp/_proj_conv_bn_act/_batch_norm/gamma'
  values[key] = values[key].copy()
  values[key][3] = np.nan
  folder = tmp_path / 'nan'
  d2.write_deeplab2_checkpoint(str(folder), values)
  out = tmp_path / 'out'
  assert run_import(ARGS + ['--checkpoint', str(folder),
                            '--model_dir', str(out)]) == 2
  assert f'NaN or Inf in 1 variables: {key}' in capsys.readouterr().err
  _nothing_written(out)


def test_coco_void_class_is_dropped(tmp_path):
  # deeplab2's COCO heads have 134 channels, void first; pdl_tf's 133.
  override = (d2.NARROW + ',data.dataset=coco_panoptic,model.num_classes=133,'
              'data.thing_class_ids=[]')
  _, model = d2.build(overrides=override)
  values = d2.random_deeplab2_values(model, extra_classes=1)
  assert values['semantic_last_layer/kernel'].shape[-1] == 134
  folder = tmp_path / 'coco'
  d2.write_deeplab2_checkpoint(str(folder), values)
  out = tmp_path / 'out'
  assert run_import(['deeplab2', '--experiment', d2.MNV3S,
                     '--params_override', override, '--checkpoint',
                     str(folder), '--model_dir', str(out)]) == 0
  imported = deeplab2_layout.variable_map(run_folder.load_model(str(out)))
  for key in ('semantic_last_layer/kernel', 'semantic_last_layer/bias'):
    np.testing.assert_array_equal(imported[key].numpy(),
                                  values[key][..., 1:])


@pytest.mark.slow
def test_golden_import_exports_and_predicts(tmp_path):
  """The golden MobileNetV3-S fixture: pdl-import, pdl-export (SavedModel +
  TFLite), pdl-predict on the two COCO sample photos with both."""
  if not d2.GOLDEN.is_dir():
    pytest.skip(f'deeplab2 golden fixture not found at {d2.GOLDEN} '
                '(../shared is optional)')
  photos = require_coco_sample() / 'input_images'
  model_dir, export_dir = tmp_path / 'model', tmp_path / 'export'
  assert run_import(['deeplab2', '--experiment', d2.MNV3S, '--checkpoint',
                     str(d2.GOLDEN), '--model_dir', str(model_dir)]) == 0
  config_flags = ['--experiment', d2.MNV3S, '--config_file',
                  str(model_dir / 'params.yaml'),
                  '--params_override', 'export.input_size=[481,641]']
  assert common.run(export_cli.main, config_flags + [
      '--checkpoint', str(model_dir), '--output', str(export_dir),
      '--format', 'both'], export_cli.build_parser()) == 0
  for flag, path in (('--saved_model', export_dir),
                     ('--tflite', export_dir / 'panoptic_deeplab_float32.tflite')):
    out = tmp_path / ('pred' + flag)
    assert common.run(predict_cli.main, [str(photos), flag, str(path),
                                         '--output', str(out)],
                      predict_cli.build_parser()) == 0
    for stem in ('000000142238', '000000439180'):
      record = json.loads((out / f'{stem}.json').read_text())
      assert record['segments_info'], (flag, stem)
      assert (out / f'{stem}_panoptic.png').is_file()
