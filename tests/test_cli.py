"""The pdl-* commands: parsing, clear errors, honest 'not built yet'."""

import os
import shutil
import subprocess
import sys

import pytest

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


def test_train_builds_model_then_says_loop_not_built(capsys):
  assert run_cli(train, ['--experiment', 'demo']) == 2
  captured = capsys.readouterr()
  assert 'config valid; built tiny Panoptic-DeepLab' in captured.out
  assert 'training loop is not built yet' in captured.err


@pytest.mark.parametrize('module,argv,message', [
    (evaluate, ['--experiment', 'demo', '--checkpoint', 'x'],
     'evaluation is not built yet'),
    (export, ['--experiment', 'demo', '--checkpoint', 'x', '--output', 'y'],
     'export is not built yet'),
    (predict, ['a.jpg', '--saved_model', 'm', '--output', 'o'],
     'prediction is not built yet'),
    (data, ['--dataset', 'coco_panoptic', '--input', 'i', '--output', 'o'],
     'dataset conversion is not built yet'),
])
def test_unbuilt_commands_say_so(capsys, module, argv, message):
  assert run_cli(module, argv) == 2
  assert message in capsys.readouterr().err
