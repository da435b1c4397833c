"""The pdl-* commands: parsing, clear errors, end-to-end runs."""

import os
import shutil
import subprocess
import sys

import pytest

from helpers import SMALL_DEMO
from pdl_tf.cli import common
from pdl_tf.cli import data
from pdl_tf.cli import evaluate
from pdl_tf.cli import export
from pdl_tf.cli import predict
from pdl_tf.cli import train

COMMANDS = ['pdl-train', 'pdl-eval', 'pdl-export', 'pdl-predict', 'pdl-data']


@pytest.mark.parametrize('command', COMMANDS)
def test_console_scripts_installed_and_help_works(command):
  # Console scripts are installed beside the interpreter running the tests.
  path = shutil.which(command, path=os.path.dirname(sys.executable))
  if path is None:
    pytest.fail(f'{command} is not on PATH: install the package '
                "(pip install '.[test]') before running the tests")
  result = subprocess.run([path, '--help'], capture_output=True, text=True,
                          check=False, timeout=60)
  assert result.returncode == 0, result.stderr
  assert 'usage:' in result.stdout


def run_cli(module, argv):
  return common.run(module.main, argv, module.build_parser())


def test_train_unknown_experiment_lists_known(capsys):
  assert run_cli(train, ['--experiment', 'nope']) == 2
  err = capsys.readouterr().err
  assert "Unknown experiment 'nope'" in err and 'demo' in err


def test_train_bad_override_names_key(capsys):
  code = run_cli(train, ['--experiment', 'demo', '--params_override',
                         'model.backbone.typo=1'])
  assert code == 2
  assert "'model.backbone.typo'" in capsys.readouterr().err


SMALL = SMALL_DEMO + ',train.steps=2'


@pytest.mark.slow
def test_train_then_eval_writes_checkpoint_params_and_metrics(capsys,
                                                              tmp_path):
  model_dir = str(tmp_path / 'run')
  code = run_cli(train, ['--experiment', 'demo', '--params_override', SMALL,
                         '--model_dir', model_dir])
  assert code == 0
  out = capsys.readouterr().out
  assert 'trained to step 2' in out and 'PQ ' in out and 'mIoU ' in out
  for name in ('params.yaml', 'metrics.json', 'checkpoint', 'ckpt-2.index'):
    assert (tmp_path / 'run' / name).exists(), name
  code = run_cli(evaluate, ['--experiment', 'demo', '--params_override',
                            SMALL, '--checkpoint', model_dir,
                            '--save_predictions', str(tmp_path / 'pred')])
  assert code == 0
  out = capsys.readouterr().out
  assert 'step 2:  PQ ' in out and 'mask AP ' in out
  assert (tmp_path / 'pred' / 'coco_panoptic' / 'predictions.json').exists()


def test_eval_missing_checkpoint(capsys, tmp_path):
  code = run_cli(evaluate, ['--experiment', 'demo', '--checkpoint',
                            str(tmp_path / 'none')])
  assert code == 2
  assert 'no checkpoint at' in capsys.readouterr().err


@pytest.mark.parametrize('module,argv,message', [
    (export, ['--experiment', 'demo', '--checkpoint', 'x', '--output', 'y'],
     "no checkpoint at 'x'"),
    (predict, ['a.jpg', '--saved_model', 'm', '--output', 'o'],
     "input 'a.jpg' does not exist"),
    (data, ['--dataset', 'coco_panoptic', '--input', 'nowhere', '--split',
            'val2017', '--output', 'o'], "dataset root 'nowhere' does not "
     'exist'),
    (data, ['--dataset', 'cityscapes', '--split', 'val', '--output', 'o'],
     '--input (the cityscapes root folder) is required'),
])
def test_commands_name_missing_paths(capsys, module, argv, message):
  assert run_cli(module, argv) == 2
  assert message in capsys.readouterr().err
