"""Checkpoint schedule (steps, minutes) and Ctrl-C / SIGTERM during training."""

import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from helpers import SMALL_DEMO
from pdl_tf import config_io
from pdl_tf.training import interrupt
from pdl_tf.training import trainer as trainer_lib

STEPS = 10


def config(extra):
  return config_io.load_config('demo', params_override=(
      f'{SMALL_DEMO},train.steps={STEPS},{extra}'))


def train(model_dir, extra):
  trainer = trainer_lib.Trainer(config(extra), str(model_dir),
                                tf.distribute.get_strategy())
  trainer.train()
  return trainer


def checkpoint_steps(trainer):
  return [int(path.rsplit('-', 1)[1]) for path in trainer.manager.checkpoints]


def checkpoint_values(path):
  """Every variable in a checkpoint (weights, optimizer slots and step) by
  its object-graph key, except the count of saves."""
  reader = tf.train.load_checkpoint(path)
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()
          if name.endswith('VARIABLE_VALUE') and  # not the graph itself
          not name.startswith('save_counter')}


def assert_same_values(a, b):
  assert a.keys() == b.keys()
  for key, value in a.items():
    np.testing.assert_array_equal(b[key], value, err_msg=key)


def assert_same_weights(a, b):
  """Trainers ``a`` and ``b`` saved bit-identical last checkpoints."""
  assert_same_values(checkpoint_values(a.manager.latest_checkpoint),
                     checkpoint_values(b.manager.latest_checkpoint))


@pytest.fixture(scope='module')
def straight(tmp_path_factory):
  """10 steps in loops of 3, checkpoint interval 4, no time checkpoints."""
  return train(tmp_path_factory.mktemp('straight'),
               'train.steps_per_loop=3,train.checkpoint_interval=4,'
               'train.checkpoint_interval_minutes=0')


def test_checkpoints_at_multiples_of_the_interval(straight):
  # Not 3, 7, 10 (the count of tf.train.CheckpointManager's
  # checkpoint_interval starts at the first save, which is the first loop).
  assert checkpoint_steps(straight) == [4, 8, 10]


def test_time_checkpoints_stop_loops_and_change_nothing(tmp_path, straight):
  # Due before every step: one loop of 1000 steps is cut at each step.
  trainer = train(tmp_path, 'train.steps_per_loop=1000,'
                  'train.checkpoint_interval=1000,'
                  'train.checkpoint_interval_minutes=1.0e-9')
  assert checkpoint_steps(trainer) == [8, 9, 10]  # max_to_keep=3
  assert_same_weights(trainer, straight)


def send_when_step(trainer, step, number):
  """Sends signal ``number`` to this process once ``trainer`` reaches
  ``step`` (read from a thread while the main thread is in the loop)."""
  def watch():
    while trainer.step < step:
      time.sleep(0.01)
    os.kill(os.getpid(), number)
  thread = threading.Thread(target=watch, daemon=True)
  thread.start()
  return thread


def test_sigint_mid_loop_saves_that_step_and_resume_is_identical(
    tmp_path, straight):
  late = []  # a signal after train() returned lands here, not in pytest
  def catch_late(*args):
    late.append(args)
  previous = signal.signal(signal.SIGINT, catch_late)
  try:
    extra = ('train.steps_per_loop=1000,train.checkpoint_interval=1000,'
             'train.checkpoint_interval_minutes=0')
    trainer = trainer_lib.Trainer(config(extra), str(tmp_path),
                                  tf.distribute.get_strategy())
    send_when_step(trainer, 2, signal.SIGINT)
    with pytest.raises(interrupt.TrainingInterrupted) as raised:
      trainer.train()
    assert signal.getsignal(signal.SIGINT) is catch_late and not late
  finally:
    signal.signal(signal.SIGINT, previous)
  stopped = raised.value
  # Stopped inside the one loop of 10 steps, at the step reached.
  assert stopped.signal_name == 'SIGINT' and 2 <= stopped.step < STEPS
  assert stopped.step == trainer.step
  assert stopped.checkpoint == str(tmp_path / f'ckpt-{stopped.step}')
  assert checkpoint_steps(trainer) == [stopped.step]
  assert interrupt.exit_code(stopped) == 130
  assert str(stopped) == (
      f'interrupted by SIGINT at step {stopped.step}; saved checkpoint '
      f'{stopped.checkpoint}; run the same command again to resume.')
  resumed = train(tmp_path, extra)
  assert resumed.step == STEPS
  assert_same_weights(resumed, straight)


# pdl-train in a subprocess, signalled from outside.
CLI_OVERRIDE = (f'{SMALL_DEMO},train.steps=40,train.steps_per_loop=1000,'
                'train.checkpoint_interval=5,train.checkpoint_interval_minutes=0')


def pdl_train(model_dir, log):
  """Starts `pdl-train --mode train` on the small demo; output to ``log``."""
  command = [sys.executable, '-m', 'pdl_tf.cli.train', '--experiment', 'demo',
             '--mode', 'train', '--model_dir', str(model_dir),
             '--params_override', CLI_OVERRIDE]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                          env=env)


def run_to_end(model_dir, log_path):
  with open(log_path, 'w', encoding='utf-8') as log:
    process = pdl_train(model_dir, log)
    assert process.wait(timeout=900) == 0, log_path.read_text()[-3000:]


@pytest.fixture(scope='module')
def cli_straight(tmp_path_factory):
  folder = tmp_path_factory.mktemp('cli_straight')
  run_to_end(folder / 'run', folder / 'log.txt')
  return checkpoint_values(str(folder / 'run' / 'ckpt-40'))


@pytest.mark.slow
@pytest.mark.parametrize('number', [signal.SIGTERM, signal.SIGINT])
def test_signalled_pdl_train_saves_exits_and_resumes_identically(
    tmp_path, cli_straight, number):
  model_dir, log_path = tmp_path / 'run', tmp_path / 'log.txt'
  with open(log_path, 'w', encoding='utf-8') as log:
    process = pdl_train(model_dir, log)
    deadline = time.time() + 900
    # Mid-run: the first checkpoint (step 5) exists, 35 steps remain.
    while not (model_dir / 'ckpt-5.index').exists():
      assert process.poll() is None, log_path.read_text()[-3000:]
      assert time.time() < deadline, 'no checkpoint at step 5'
      time.sleep(0.05)
    process.send_signal(number)
    code = process.wait(timeout=300)
  output = log_path.read_text()
  assert code == 128 + number, output[-3000:]
  name = signal.Signals(number).name
  lines = [line for line in re.split(r'[\r\n]', output) if name in line]
  match = re.fullmatch(
      rf'pdl-train: interrupted by {name} at step (\d+); saved checkpoint '
      r'(\S+); run the same command again to resume\.', lines[-1])
  assert len(lines) == 1 and match, output[-3000:]
  step = int(match[1])
  assert 5 <= step < 40
  assert match[2] == str(model_dir / f'ckpt-{step}')
  assert tf.train.latest_checkpoint(str(model_dir)) == match[2]
  run_to_end(model_dir, tmp_path / 'rerun_log.txt')
  assert f'starting at step {step}' in (tmp_path / 'rerun_log.txt').read_text()
  assert_same_values(cli_straight,
                     checkpoint_values(str(model_dir / 'ckpt-40')))
