"""Ctrl-C and SIGTERM: one line and the shell's status from every command
(cli/shared/signals.py through common.run), and outputs written whole or not at
all (atomic_write.py), so that a rerun just works."""

import os
import types

import pytest

from helpers import run_python
from pdl_tf import atomic_write
from pdl_tf import config_io
from pdl_tf.export import saved_model

_INTERRUPTED = '''
import os, signal, sys, time
from pdl_tf.cli.shared import common
def main(args):
  os.kill(os.getpid(), signal.{name})
  time.sleep(30)  # the signal arrives here
  return 0
parser = common.new_parser('pdl-x', 'A command.')
sys.exit(common.run(main, [], parser))
'''


@pytest.mark.parametrize('name,status', [('SIGINT', 130), ('SIGTERM', 143)])
def test_a_signal_ends_a_command_with_one_line(name, status):
  result = run_python(_INTERRUPTED.format(name=name), timeout=60)
  assert result.returncode == status
  assert result.stderr == f'pdl-x: interrupted by {name}; stopped.\n'


def test_the_sigterm_handler_is_given_back():
  result = run_python('''
    import signal
    from pdl_tf.cli.shared import common
    before = signal.getsignal(signal.SIGTERM)
    common.run(lambda args: 0, [], common.new_parser('pdl-x', 'A command.'))
    print(signal.getsignal(signal.SIGTERM) is before)
  ''')
  assert result.stdout.strip() == 'True', result.stderr[-2000:]


@pytest.mark.parametrize('error', [KeyboardInterrupt, ValueError])
def test_an_interrupted_write_leaves_nothing(tmp_path, error):
  target = tmp_path / 'model.tflite'
  with pytest.raises(error):
    with atomic_write.atomic_path(str(target)) as temporary:
      with open(temporary, 'wb') as f:
        f.write(b'half')
      raise error()
  assert os.listdir(tmp_path) == []
  with atomic_write.atomic_path(str(target)) as temporary:
    with open(temporary, 'wb') as f:
      f.write(b'whole')
  assert target.read_bytes() == b'whole' and os.listdir(tmp_path) == [
      'model.tflite']


def test_an_interrupted_params_yaml_keeps_the_old_one(tmp_path, monkeypatch):
  config = config_io.load_config('demo')
  path = config_io.save_config(config, str(tmp_path))
  before = open(path, encoding='utf-8').read()

  def half_dump(data, stream, **unused):
    stream.write('model:\n  num_cla')
    raise KeyboardInterrupt()
  monkeypatch.setattr(config_io.yaml, 'safe_dump', half_dump)
  with pytest.raises(KeyboardInterrupt):
    config_io.save_config(config, str(tmp_path))
  assert open(path, encoding='utf-8').read() == before
  assert os.listdir(tmp_path) == ['params.yaml']


def test_an_interrupted_saved_model_export_can_be_rerun(tmp_path,
                                                        monkeypatch):
  # The field report: Ctrl-C while TensorFlow wrote OUT/1 left
  # OUT/1/saved_model.pb.tmp..., and the rerun refused "'OUT/1' already
  # exists". Now the version folder appears only when complete.
  module = types.SimpleNamespace(serve_bytes=None, serve_images=None,
                                 signatures=lambda: {})
  interrupt = [True]

  def save(unused_module, path, **unused):
    os.makedirs(path)
    with open(os.path.join(path, 'saved_model.pb.tmp123'), 'wb') as f:
      f.write(b'half')
    if interrupt[0]:
      raise KeyboardInterrupt()
    os.replace(os.path.join(path, 'saved_model.pb.tmp123'),
               os.path.join(path, 'saved_model.pb'))
  monkeypatch.setattr(saved_model.tf.saved_model, 'save', save)
  monkeypatch.setattr(saved_model.tf.saved_model, 'SaveOptions',
                      lambda **unused: None)
  config = config_io.load_config('demo')
  output = tmp_path / 'exp'
  with pytest.raises(KeyboardInterrupt):
    saved_model.export_saved_model(module, str(output), 1, config)
  assert os.listdir(output) == []  # no '1', no temporary folder
  interrupt[0] = False
  path = saved_model.export_saved_model(module, str(output), 1, config)
  assert path == str(output / '1') and os.listdir(output) == ['1']
  assert sorted(os.listdir(path)) == ['params.yaml', 'saved_model.pb']
