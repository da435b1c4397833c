"""The pdl-* commands: parsing, clear errors, end-to-end runs."""

import json
import shlex
import os
import shutil
import subprocess
import sys
import time

import pytest

from helpers import coco_layout
from helpers import SMALL_DEMO
from pdl_tf.cli.shared import common
from pdl_tf.cli import data
from pdl_tf.cli import evaluate
from pdl_tf.cli import export
from pdl_tf.cli import import_checkpoint
from pdl_tf.cli import pq as pq_command
from pdl_tf.cli import predict
from pdl_tf.cli import train

COMMANDS = ['pdl-train', 'pdl-eval', 'pdl-export', 'pdl-predict', 'pdl-data',
            'pdl-import', 'pdl-pq', 'pdl-beam-predict']


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
  assert "unknown experiment 'nope'" in err and 'demo' in err


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
  params = (tmp_path / 'run' / 'params.yaml').read_bytes()
  code = run_cli(evaluate, ['--experiment', 'demo', '--params_override',
                            SMALL + ',train.steps=3', '--checkpoint',
                            model_dir, '--save_predictions',
                            str(tmp_path / 'pred')])
  assert code == 0
  out = capsys.readouterr().out
  assert 'step 2:  PQ ' in out and 'mask AP ' in out
  assert (tmp_path / 'pred' / 'coco_panoptic' / 'predictions.json').exists()
  # It prints the pdl-pq command that scores the saved pairs: run as
  # printed, it gives pdl-eval's PQ.
  command = shlex.split(out.splitlines()[-1])
  assert command[0] == 'pdl-pq', out
  assert run_cli(pq_command, command[1:] + [
      '--output', str(tmp_path / 'pq.json')]) == 0
  rescored = json.loads((tmp_path / 'pq.json').read_text())
  reported = json.loads((tmp_path / 'run' / 'metrics.json').read_text())
  assert rescored['All']['pq'] == reported['All/pq']
  # pdl-eval leaves the training run's params.yaml as it was, and so does
  # pdl-train --mode eval.
  assert (tmp_path / 'run' / 'params.yaml').read_bytes() == params
  assert run_cli(train, ['--experiment', 'demo', '--mode', 'eval',
                         '--params_override', SMALL + ',train.steps=3',
                         '--model_dir', model_dir]) == 0
  assert (tmp_path / 'run' / 'params.yaml').read_bytes() == params
  assert 'step 2:  PQ ' in capsys.readouterr().out
  # Rerun of the finished run, as a user runs it (issue 17): it only
  # evaluates, and prints no TensorFlow start-up lines (cuInit error on a
  # machine without a GPU driver), no 'Local rendezvous ... End of
  # sequence' after the evaluation and no warning about unrestored
  # optimizer values.
  env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
  rerun = subprocess.run(
      [sys.executable, '-m', 'pdl_tf.cli.train', '--experiment', 'demo',
       '--params_override', SMALL, '--model_dir', model_dir],
      capture_output=True, text=True, env=env, timeout=900, check=False)
  assert rerun.returncode == 0, rerun.stderr
  assert 'starting at step 2' in rerun.stdout
  for noise in ('cuInit', 'Local rendezvous', 'could not be found in the '
                'restored object', 'Value in checkpoint', 'cpu_feature_guard',
                'WARNING:absl'):
    assert noise not in rerun.stderr, (noise, rerun.stderr)
  assert 'eval: 100%' in rerun.stderr and '2/2' in rerun.stderr  # a total
  # A checkpoint of another network (here wider ASPP): one line naming the
  # first mismatch and status 2, not a traceback after hundreds of
  # TensorFlow warnings; nothing written.
  wrong = subprocess.run(
      [sys.executable, '-m', 'pdl_tf.cli.evaluate', '--experiment', 'demo',
       '--params_override', SMALL.replace('model.aspp_channels=16',
                                          'model.aspp_channels=24'),
       '--checkpoint', model_dir, '--model_dir', str(tmp_path / 'wrong')],
      capture_output=True, text=True, env=env, timeout=900, check=False)
  lines = wrong.stderr.strip().splitlines()
  assert wrong.returncode == 2, wrong.stderr
  assert len(lines) == 1, wrong.stderr
  assert 'does not fit the network: ' in lines[0], lines
  assert '(checkpoint [1, 1, 128, 16], the network [1, 1, 128, 24])' in (
      lines[0]), lines
  assert not (tmp_path / 'wrong').exists()


# Bad arguments of every command, run from a folder holding 'afile', an
# empty folder 'empty', a checkpoint-less folder 'nockpt' and 'image.png'.
# Each must fail with status 2 and the message, before TensorFlow is
# imported (issue 17: in a second, not after TensorFlow and the model load)
# and without writing anything.
BAD_ARGUMENTS = [
    ('train', ['--experiment', 'nope'], "unknown experiment 'nope'"),
    ('train', ['--experiment', 'demo', '--params_override',
               'train.batch_size=-3'],
     "did you mean 'data.train.batch_size' or 'data.eval.batch_size'?"),
    ('train', ['--experiment', 'demo', '--params_override',
               'data.train.batch_size=-3'],
     "'data.train.batch_size' must be >= 1"),
    ('train', ['--experiment', 'coco_r50_os32'],
     "'data.train.path' is empty: data.dataset 'coco_panoptic' reads"),
    ('train', ['--experiment', 'coco_r50_os32', '--params_override',
               'data.train.path=/nowhere,data.eval.path=/nowhere'],
     "'data.train.path' '/nowhere' does not exist"),
    ('train', ['--experiment', 'coco_r50_os32', '--params_override',
               'data.train.path=empty,data.eval.path=empty'],
     "no COCO panoptic JSON for split 'train2017': "
     "'empty/annotations/panoptic_train2017.json' does not exist"),
    ('train', ['--experiment', 'mapillary_vistas_r50_os32', '--mode', 'eval',
               '--params_override', 'data.eval.path=empty'],
     "no Mapillary Vistas panoptic JSON for split 'validation'; tried "
     "empty/validation/panoptic/panoptic_2018.json"),
    ('train', ['--experiment', 'cityscapes_r50_os32', '--mode', 'eval',
               '--params_override', 'data.eval.path=empty'],
     "no Cityscapes leftImg8bit folder for split 'val': "
     "'empty/leftImg8bit/val' does not exist"),
    ('train', ['--experiment', 'demo', '--params_override',
               'data.dataset=tfrecord,data.train.path=empty,'
               'data.eval.path=empty'],
     'empty/metadata.json does not exist: convert the dataset with pdl-data'),
    ('data', ['--dataset', 'coco_panoptic', '--input', 'empty', '--split',
              'val2017', '--output', 'o'],
     "no COCO panoptic JSON for split 'val2017'"),
    ('train', ['--experiment', 'coco_r50_os32', '--mode', 'eval',
               '--params_override', 'data.eval.path=cocojson'],
     "no COCO image folder for split 'val2017': 'cocojson/val2017' does not "
     'exist (expected root/<split>/*.jpg)'),
    ('data', ['--dataset', 'coco_panoptic', '--input', 'cocojson', '--split',
              'val2017', '--output', 'o'],
     "no COCO image folder for split 'val2017'"),
    ('train', ['--experiment', 'mapillary_vistas_r50_os32', '--mode', 'eval',
               '--params_override', 'data.eval.path=vistasjson'],
     "no Mapillary Vistas image folder for split 'validation': "
     "'vistasjson/validation/images' does not exist"),
    ('train', ['--experiment', 'cityscapes_r50_os32', '--mode', 'train',
               '--params_override', 'data.train.path=cityempty'],
     "no Cityscapes images for split 'train': nothing matches "
     "'cityempty/leftImg8bit/train/*/*_leftImg8bit.png'."),
    ('train', ['--experiment', 'demo', '--params_override',
               'data.train.split=val'],
     "'data.train.split' 'val' is not a synthetic split; known: train, "
     'validation, test.'),
    ('data', ['--dataset', 'synthetic', '--split', 'train', '--split', 'val',
              '--num_examples', '2', '--output', 'o'],
     "--split 'val' is not a synthetic split; known: train, validation, "
     'test.'),
    ('train', ['--experiment', 'demo', '--params_override',
               'model.num_classes=7'],
     "'model.num_classes' is 7 but dataset 'synthetic' has 6 classes: 0 sky, 1 grass"),
    ('evaluate', ['--experiment', 'cityscapes_r50_os32', '--checkpoint',
                  'withckpt', '--params_override',
                  'model.num_classes=20,data.eval.path=cityroot'],
     "'model.num_classes' is 20 but dataset 'cityscapes' has 19 classes: 0 road"),
    ('train', ['--experiment', 'demo', '--params_override',
               'data.dataset=tfrecord,data.train.path=records,'
               'data.eval.path=records,model.num_classes=6'],
     "'model.num_classes' is 6 but dataset 'tfrecord' at "),
    ('train', ['--experiment', 'demo', '--params_override',
               'data.dataset=tfrecord,data.train.path=records,'
               'data.eval.path=records,data.eval.split=val'],
     "records: split 'val' is not converted; converted: ['train']"),
    ('data', ['--dataset', 'coco_panoptic', '--input', 'badcoco', '--split',
              'val2017', '--output', 'o'],
     "COCO panoptic JSON 'badcoco/annotations/panoptic_val2017.json' is not "
     'a JSON object: it is empty.'),
    ('train', ['--experiment', 'demo', '--params_override',
               'data.dataset=tfrecord,data.train.path=badrecords,'
               'data.eval.path=badrecords'],
     "badrecords/metadata.json is not a pdl-data metadata file (no 'splits')"),
    ('train', ['--experiment', 'demo', '--model_dir', 'afile/'],
     "--model_dir 'afile/' is a file, not a folder"),
    ('train', ['--experiment', 'coco_r50_os32', '--mode', 'eval',
               '--params_override', 'data.eval.path=afile'],
     "'data.eval.path' 'afile' is a file, not a folder"),
    ('train', ['--experiment', 'demo', '--model_dir', 'afile'],
     "--model_dir 'afile' is a file, not a folder"),
    ('train', ['--experiment', 'demo', '--model_dir', 'afile/run'],
     "--model_dir 'afile/run' cannot be created: "),
    ('train', ['--experiment', 'demo', '--mode', 'eval', '--model_dir',
               'empty'], "--mode eval: no checkpoint in --model_dir 'empty'"),
    ('train', ['--experiment', 'demo', '--params_override',
               'model.backbone.init_checkpoint=nockpt'],
     "no checkpoint at 'nockpt' ('model.backbone.init_checkpoint')"),
    ('train', ['--experiment', 'demo', '--init_checkpoint', 'nockpt'],
     "no checkpoint at 'nockpt' (--init_checkpoint / train.init_checkpoint)"),
    ('train', ['--experiment', 'demo', '--init_checkpoint', 'mnv3run'],
     "'train.init_checkpoint': mnv3run is a deeplab2_mobilenet_v3_small "
     'network (its params.yaml) but this run builds a tiny network: the '
     'network comes from --experiment and any model: section'),
    ('train', ['--experiment', 'demo', '--params_override',
               'train.init_checkpoint=none'],
     "no checkpoint at 'none' (--init_checkpoint / train.init_checkpoint): "
     'neither a folder nor a checkpoint prefix'),
    ('evaluate', ['--experiment', 'demo', '--checkpoint', 'none'],
     "no checkpoint at 'none' (--checkpoint): neither a folder nor"),
    ('evaluate', ['--experiment', 'demo', '--checkpoint', 'nockpt'],
     "no checkpoint at 'nockpt' (--checkpoint): the folder has no "
     "'checkpoint' file"),
    ('export', ['--experiment', 'demo', '--checkpoint', 'x', '--output',
                'y'], "no checkpoint at 'x'"),
    ('export', ['--experiment', 'demo', '--params_override', 'oops=1',
                '--checkpoint', 'x', '--output', 'y'],
     "unknown config key 'oops'"),
    ('predict', ['a.jpg', '--saved_model', 'm', '--output', 'o'],
     "input 'a.jpg' does not exist"),
    ('predict', ['empty', '--saved_model', 'm', '--output', 'o'],
     "folder 'empty' holds no image files"),
    ('predict', ['image.png', '--saved_model', 'nowhere', '--output', 'o'],
     "--saved_model 'nowhere' does not exist"),
    ('predict', ['image.png', '--saved_model', 'empty', '--output', 'o'],
     "'empty' holds no saved_model.pb"),
    ('predict', ['image.png', '--tflite', 'm.tflite', '--output', 'o'],
     "--tflite 'm.tflite' does not exist"),
    ('predict', ['image.png', '--tflite', 'image.png', '--output', 'o'],
     "--tflite 'image.png' is not a TFLite model"),
    ('predict', ['image.png', '--saved_model', 'empty', '--label_divisor',
                 '-5', '--output', 'o'], '--label_divisor must be >= 1'),
    ('predict', ['image.png', '--server', 'localhost:1', '--output',
                 'afile'], "--output 'afile' is a file, not a folder"),
    ('predict', ['image.png', '--server', '127.0.0.1:notaport', '--output',
                 'o'], "--server '127.0.0.1:notaport' is not a server "
     'address; expected [http://]host:port, e.g. localhost:8501.'),
    ('predict', ['image.png', '--server', '', '--grpc', '--output', 'o'],
     "--server '' is not a server address; expected host:port"),
    ('export', ['--experiment', 'demo', '--checkpoint', 'withckpt',
                '--output', 'y', '--format', 'tflite', '--quantization',
                'int8', '--calibration_images', '0'],
     '--calibration_images must be >= 1 for int8, got 0.'),
    ('train', ['--experiment', 'demo', '--mode', 'continuous_eval',
               '--eval_timeout', '-1'],
     '--eval_timeout must be >= 0 seconds, got -1.0.'),
    ('data', ['--dataset', 'coco_panoptic', '--input', 'nowhere', '--split',
              'val2017', '--output', 'o'], "--input 'nowhere' does not exist"),
    ('data', ['--dataset', 'cityscapes', '--split', 'val', '--output', 'o'],
     '--input (the cityscapes root folder) is required'),
    ('data', ['--dataset', 'synthetic', '--split', 'train', '--output', 'o'],
     '--num_examples (scenes per split) must be >= 1'),
    ('data', ['--dataset', 'synthetic', '--split', 'train', '--num_examples',
              '2', '--inspect', '--output', 'o'],
     '--inspect writes nothing; drop --output'),
    ('data', ['--dataset', 'synthetic', '--split', 'train', '--num_examples',
              '2', '--inspect', '--format', 'coco_panoptic'],
     '--inspect writes nothing; drop --format'),
    ('data', ['--dataset', 'synthetic', '--split', 'train', '--num_examples',
              '2'], '--output is required (or --inspect to summarise'),
    ('data', ['--dataset', 'synthetic', '--split', 'train', '--num_examples',
              '2', '--format', 'coco_panoptic', '--output', 'cocoout'],
     "cocoout/annotations/panoptic_train.json exists: 'cocoout' already "
     "holds split 'train' in coco_panoptic format"),
    ('data', ['--dataset', 'synthetic', '--split', 'train', '--num_examples',
              '2', '--format', 'coco_instances', '--output', 'cocoout'],
     "cocoout/train exists: 'cocoout' already holds split 'train' in "
     'coco_instances format'),
    ('data', ['--dataset', 'tfrecord', '--input', 'records', '--split',
              'train', '--output', 'o'],
     '--dataset tfrecord is read as tf.data records: --format tfrecord '
     'converts only the listed datasets'),
    ('data', ['--dataset', 'synthetic', '--split', 'test', '--split', 'test',
              '--num_examples', '2', '--format', 'coco_instances', '--output',
              'o'], "--split 'test' is given twice."),
    ('train', ['--experiment', 'demo', '--params_override',
               'data.train.crop_size=[100,100]'],
     "'data.train.crop_size' [100, 100]: height 100 must be a multiple of "
     'the output stride 16 or a multiple plus one (e.g. 96, 97, 112 or '
     '113).'),
    ('evaluate', ['--experiment', 'demo', '--checkpoint', 'withckpt',
                  '--params_override', 'data.eval.crop_size=[64,70]'],
     "'data.eval.crop_size' [64, 70]: width 70 must be a multiple of the "
     'output stride 16 or a multiple plus one (e.g. 64, 65, 80 or 81).'),
    ('export', ['--experiment', 'coco_r50_os32', '--checkpoint', 'withckpt',
                '--output', 'y', '--params_override',
                'export.input_size=[641,600]'],
     "'export.input_size' [641, 600]: width 600 must be a multiple of the "
     'output stride 32 or a multiple plus one (e.g. 576, 577, 608 or 609).'),
    ('predict', ['image.png', '--saved_model', 'exported', '--label_divisor',
                 '256', '--output', 'o'],
     '--label_divisor 256 does not fit the export: its panoptic ids are '
     'class x 1000 + instance (data.label_divisor in exported/1/params.yaml)'
     '; leave --label_divisor out.'),
    ('predict', ['image.png', '--tflite', 'exported/model.tflite',
                 '--label_divisor', '256', '--output', 'o'],
     '--label_divisor 256 does not fit the export: its panoptic ids are '
     'class x 1000 + instance (data.label_divisor in exported/params.yaml)'),
    ('import_checkpoint', ['deeplab2', '--checkpoint', 'nockpt/ckpt-1',
                           '--experiment', 'cityscapes_deeplab2_mnv3_small_os16',
                           '--model_dir', 'o'],
     "no checkpoint at 'nockpt/ckpt-1'"),
    ('import_checkpoint', ['deeplab2', '--checkpoint', 'nockpt',
                           '--experiment', 'demo', '--model_dir', 'o'],
     "experiment 'demo' is not a deeplab2 one"),
    ('import_checkpoint', ['deeplab2', '--checkpoint', 'nockpt',
                           '--experiment', 'cityscapes_deeplab2_mnv3_small_os16',
                           '--model_dir', 'afile'],
     "--model_dir 'afile' already exists and is not empty"),
]

_RUN_COMMAND = """
import json, sys
from pdl_tf.cli.shared import common
from pdl_tf.cli import {module} as command
code = common.run(command.main, json.loads(sys.argv[1]),
                  command.build_parser())
print(json.dumps({{'code': code,
                   'tensorflow': 'tensorflow' in sys.modules}}))
"""


def _files(folder):
  return sorted(os.path.relpath(os.path.join(root, name), folder)
                for root, dirs, names in os.walk(folder)
                for name in dirs + names)


def make_bad_argument_folder(folder):
  """The files BAD_ARGUMENTS refers to, in ``folder`` (a pathlib.Path);
  bench/bench_cli_errors.py uses it too."""
  (folder / 'afile').write_text('x')
  (folder / 'empty').mkdir()
  (folder / 'nockpt').mkdir()
  (folder / 'image.png').write_bytes(b'not read by the checks')
  (folder / 'badcoco' / 'annotations').mkdir(parents=True)
  (folder / 'badcoco' / 'annotations' / 'panoptic_val2017.json').touch()
  (folder / 'badrecords').mkdir()
  (folder / 'badrecords' / 'metadata.json').write_text('{}')
  (folder / 'records').mkdir()
  (folder / 'records' / 'metadata.json').write_text(  # as pdl-data's
      '{"format": "pdl_tf panoptic tfrecords", "splits": {"train": {}}, '
      '"metadata": {"class_names": ["a", "b"]}}')
  (folder / 'cityempty' / 'leftImg8bit' / 'train' / 'aachen').mkdir(
      parents=True)
  (folder / 'cityempty' / 'gtFine' / 'train' / 'aachen').mkdir(parents=True)
  (folder / 'cocojson' / 'annotations' / 'panoptic_val2017').mkdir(
      parents=True)
  (folder / 'cocojson' / 'annotations' / 'panoptic_val2017.json'
   ).write_text('{}')
  (folder / 'vistasjson' / 'validation' / 'panoptic').mkdir(parents=True)
  (folder / 'vistasjson' / 'validation' / 'panoptic' /
   'panoptic_2018.json').write_text('{}')
  for kind in ('leftImg8bit', 'gtFine'):
    (folder / 'cityroot' / kind / 'val' / 'x').mkdir(parents=True)
  (folder / 'cityroot' / 'leftImg8bit' / 'val' / 'x' /
   'x_000000_000000_leftImg8bit.png').write_bytes(b'not read')
  (folder / 'withckpt').mkdir()
  (folder / 'cocoout' / 'annotations').mkdir(parents=True)  # pdl-data's
  (folder / 'cocoout' / 'annotations' / 'panoptic_train.json').write_text(
      '{}')
  (folder / 'cocoout' / 'train').mkdir()
  # An export as pdl-export writes it (contents not read by the checks).
  (folder / 'exported' / '1').mkdir(parents=True)
  (folder / 'exported' / '1' / 'saved_model.pb').write_bytes(b'x')
  for params in (folder / 'exported' / '1' / 'params.yaml',
                 folder / 'exported' / 'params.yaml'):
    params.write_text('data:\n  label_divisor: 1000\n')
  (folder / 'exported' / 'model.tflite').write_bytes(b'\x1c\x00\x00\x00TFL3')
  (folder / 'withckpt' / 'checkpoint').write_text('')
  # A run folder of another network (as pdl-import writes one).
  (folder / 'mnv3run').mkdir()
  (folder / 'mnv3run' / 'checkpoint').write_text('')
  (folder / 'mnv3run' / 'params.yaml').write_text(
      'model:\n  backbone:\n    type: deeplab2_mobilenet_v3_small\n')


@pytest.mark.parametrize('module,argv,message', BAD_ARGUMENTS)
def test_bad_arguments_fail_before_tensorflow_and_write_nothing(
    tmp_path, module, argv, message):
  make_bad_argument_folder(tmp_path)
  before = _files(tmp_path)
  start = time.perf_counter()
  result = subprocess.run(
      [sys.executable, '-c', _RUN_COMMAND.format(module=module),
       json.dumps(argv)], cwd=tmp_path, capture_output=True, text=True,
      timeout=120, check=False)
  seconds = time.perf_counter() - start
  assert result.returncode == 0, result.stderr
  outcome = json.loads(result.stdout.strip().splitlines()[-1])
  assert outcome == {'code': 2, 'tensorflow': False}, result.stderr
  assert message in result.stderr
  assert len(result.stderr.strip().splitlines()) == 1, result.stderr
  assert _files(tmp_path) == before
  assert seconds < 20  # ~0.3 s alone; a loose bound for a busy machine


def test_help_has_no_duplicated_defaults_and_every_option_explained():
  for module in (train, evaluate, export, predict, data, import_checkpoint):
    parser = module.build_parser()
    text = ' '.join(parser.format_help().split())  # unwrapped
    assert '(default: None)' not in text and '(default: False)' not in text
    for action in parser._actions:  # pylint: disable=protected-access
      assert action.help, (parser.prog, action.option_strings)
  text = ' '.join(train.build_parser().format_help().split())
  assert text.count('(default:') == 3  # runs/EXPERIMENT, --mode, timeout
  assert '(default: runs/EXPERIMENT) (default' not in text


def test_verbose_sets_the_native_log_level_before_main(monkeypatch):
  monkeypatch.delenv('TF_CPP_MIN_LOG_LEVEL', raising=False)
  seen = []

  def main(args):
    del args
    seen.append(os.environ['TF_CPP_MIN_LOG_LEVEL'])
    return 0

  parser = common.new_parser('pdl-x', 'test')
  assert common.run(main, ['--verbose'], parser) == 0
  monkeypatch.delenv('TF_CPP_MIN_LOG_LEVEL')
  assert common.run(main, [], parser) == 0
  assert seen[0] == '0' and seen[1] in ('1', '3')
  monkeypatch.setenv('TF_CPP_MIN_LOG_LEVEL', '2')
  assert common.run(main, ['--verbose'], parser) == 0
  assert seen[2] == '2'  # the user's own setting wins


def test_native_log_level_quiet_by_default_user_and_verbose_win():
  level = common.native_log_level
  assert level(False, {}, gpu_driver=True) == '1'  # warnings and errors
  assert level(False, {}, gpu_driver=False) == '3'  # no cuInit error line
  assert level(True, {}, gpu_driver=False) == '0'
  assert level(True, {'TF_CPP_MIN_LOG_LEVEL': '2'}, gpu_driver=True) == '2'
  assert level(False, {'TF_CPP_MIN_LOG_LEVEL': '0'}, gpu_driver=False) == '0'


def test_gitignore_covers_what_the_readme_commands_write():
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  with open(os.path.join(root, '.gitignore'), encoding='utf-8') as f:
    ignored = f.read().split()
  for folder in ('/runs/', '/exports/', '.venv/'):
    assert folder in ignored, folder


def test_predict_lists_each_image_once(tmp_path):
  (tmp_path / 'x.png').write_bytes(b'')
  folder, alone = str(tmp_path), str(tmp_path / 'x.png')
  assert predict.list_images([alone, folder, alone]) == [alone]


def test_predict_output_names_never_collide():
  stems = predict.output_stems(['a/good.jpg', 'a/good.png', 'b/x.png',
                                'c/x.png', 'c/solo.webp'])
  assert stems == {'a/good.jpg': 'good_jpg', 'a/good.png': 'good_png',
                   'b/x.png': 'x_png', 'c/x.png': 'x_png_2',
                   'c/solo.webp': 'solo'}


def test_fixed_class_counts_match_the_readers():
  # pylint: disable=g-import-not-at-top
  from pdl_tf.data.readers import cityscapes
  from pdl_tf.data.catalog import names
  from pdl_tf.data.readers import synthetic
  # pylint: enable=g-import-not-at-top
  assert (synthetic.metadata().num_classes, cityscapes.metadata().num_classes
         ) == (6, 19)
  assert names.SYNTHETIC_SPLITS == tuple(synthetic.SPLIT_SEEDS)


def test_a_dataset_that_does_not_fit_the_config_writes_nothing(tmp_path,
                                                               capsys):
  # COCO's classes come from its JSON, read before TensorFlow starts: the
  # demo's 6 classes against the sample's 133 fail there, with one line
  # naming the dataset's classes and nothing left in the new model_dir.
  coco_layout(tmp_path / 'coco')
  model_dir = tmp_path / 'run'
  code = run_cli(train, [
      '--experiment', 'demo', '--mode', 'train', '--model_dir',
      str(model_dir), '--params_override',
      SMALL + f',data.dataset=coco_panoptic,data.train.path={tmp_path}/coco,'
      'data.train.split=val2017,model.num_classes=6'])
  assert code == 2
  error = capsys.readouterr().err
  assert ("'model.num_classes' is 6 but dataset 'coco_panoptic' at "
          f'{tmp_path}/coco has 133 classes: 0 person (thing), 1 bicycle '
          '(thing)') in error
  assert '(133 in all)' in error
  assert not model_dir.exists()


COCO_DEMO = (SMALL + ',model.num_classes=133,data.thing_class_ids=[],'
             'data.dataset=coco_panoptic,data.train.split=val2017,'
             'data.train.crop_size=[64,64]')


def test_an_empty_dataset_is_one_line(tmp_path, capsys):
  # A COCO JSON without images is found when the split is listed (after
  # TensorFlow starts): one line, status 2, nothing written.
  data = coco_layout(tmp_path / 'coco')
  (tmp_path / 'coco' / 'annotations' / 'panoptic_val2017.json').write_text(
      json.dumps(dict(data, images=[], annotations=[])))
  code = run_cli(train, [
      '--experiment', 'demo', '--mode', 'train', '--model_dir',
      str(tmp_path / 'run'), '--params_override',
      COCO_DEMO + f',data.train.path={tmp_path}/coco'])
  assert code == 2
  err = capsys.readouterr().err
  assert err.startswith('pdl-train: error: ') and (
      'no annotations (empty image list).' in err), err
  assert len(err.strip().splitlines()) == 1, err
  assert not (tmp_path / 'run').exists()


@pytest.mark.slow
def test_a_missing_image_met_while_training_is_one_line(tmp_path, capsys):
  # The JSON lists an image that is not there: tf.data meets it at the
  # first step; the user gets the reader's message, not a traceback.
  coco_layout(tmp_path / 'coco')
  (tmp_path / 'coco' / 'val2017' / '000000142238.jpg').unlink()
  code = run_cli(train, [
      '--experiment', 'demo', '--mode', 'train', '--model_dir',
      str(tmp_path / 'run'), '--params_override',
      COCO_DEMO + f',data.train.path={tmp_path}/coco'])
  assert code == 2
  lines = [line for line in capsys.readouterr().err.splitlines()
           if line.startswith('pdl-train: error: ')]
  assert len(lines) == 1, lines
  assert lines[0].endswith("000000142238.jpg' does not exist."), lines


@pytest.mark.parametrize('address,grpc', [
    ('localhost:8501', False), ('http://localhost:8501', False),
    ('https://serving.example/v1', False), ('[::1]:8501', False),
    ('localhost:8500', True), ('[::1]:8500', True),
    ('unix:///tmp/tfs.sock', True), ('dns:///localhost:8500', True),
    ('ipv4:127.0.0.1:8500', True)])
def test_server_addresses_that_work_are_accepted(address, grpc):
  # pylint: disable-next=g-import-not-at-top
  from pdl_tf.cli.shared import checks
  assert checks.server_address(address, '--server', grpc=grpc) == address


def test_int8_calibration_takes_any_dataset_s_images(tmp_path):
  # Calibration reads images only: a Cityscapes training split calibrates
  # a 6-class model (no class-count check), its folders still checked.
  # pylint: disable-next=g-import-not-at-top
  from pdl_tf.cli.shared import checks
  from pdl_tf import config_io
  make_bad_argument_folder(tmp_path)
  config = config_io.load_config('demo', params_override=(
      f'data.dataset=cityscapes,data.train.path={tmp_path}/cityroot,'
      'data.train.split=val,model.num_classes=6'))
  checks.data_split(config, 'data.train', classes=False)
  with pytest.raises(Exception, match="'model.num_classes' is 6 but"):
    checks.data_split(config, 'data.train')


def test_pdl_data_size_must_be_h_by_w(capsys):
  for bad in ('64', 'axb', '0x64'):
    with pytest.raises(SystemExit):
      data.build_parser().parse_args(['--dataset', 'synthetic', '--output',
                                      'o', '--size', bad])
    err = capsys.readouterr().err
    assert 'argument --size: expected ' in err and repr(bad) in err, err
    assert '_size' not in err
