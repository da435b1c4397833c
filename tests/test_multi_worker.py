"""MultiWorkerMirroredStrategy: two worker processes on localhost."""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from helpers import SMALL_DEMO

WORKER = '''
import json, os, sys
os.environ['TF_CONFIG'] = json.dumps({
    'cluster': {'worker': WORKERS}, 'task': {'type': 'worker', 'index': INDEX}})
from pdl_tf import config_io
from pdl_tf.training import interrupt
from pdl_tf.training import strategy as strategy_lib
from pdl_tf.training import trainer as trainer_lib
strategy = strategy_lib.get_strategy('multi_worker_mirrored')
config = config_io.load_config('demo', params_override=OVERRIDE)
trainer = trainer_lib.Trainer(config, MODEL_DIR, strategy)
try:
  losses = trainer.train()
except interrupt.TrainingInterrupted as e:
  print('STOPPED', e.signal_name, e.step, e.checkpoint, flush=True)
  sys.exit(0)
print('RESULT', strategy.num_replicas_in_sync, trainer.step,
      repr(losses['total_loss']), flush=True)
'''


def free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(('localhost', 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def start_workers(tmp_path, override):
  workers = [f'localhost:{port}' for port in free_ports(2)]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  processes = []
  for index in range(2):
    code = (WORKER.replace('WORKERS', repr(workers))
            .replace('INDEX', str(index)).replace('OVERRIDE', repr(override))
            .replace('MODEL_DIR', repr(str(tmp_path))))
    processes.append(subprocess.Popen(
        [sys.executable, '-c', textwrap.dedent(code)], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
  return processes


def finish(processes, tag):
  """Each worker's line starting with ``tag``, split."""
  results = []
  try:
    for process in processes:
      out, err = process.communicate(timeout=420)
      assert process.returncode == 0, err[-3000:]
      results.append([line for line in out.splitlines()
                      if line.startswith(tag)][0].split())
  finally:
    for process in processes:
      if process.poll() is None:
        process.kill()
  return results


@pytest.mark.slow
def test_two_workers_train_in_step(tmp_path):
  override = (f'{SMALL_DEMO},train.steps=2,'
              'train.strategy=multi_worker_mirrored')
  results = finish(start_workers(tmp_path, override), 'RESULT')
  # Both workers: 2 replicas in sync, step 2, the same all-reduced loss.
  assert results[0][1:3] == ['2', '2'] and results[0] == results[1]
  # The chief (worker 0) wrote model_dir; worker 1 its private folder.
  assert (tmp_path / 'ckpt-2.index').exists()
  assert (tmp_path / '.worker_1' / 'ckpt-2.index').exists()


@pytest.mark.slow
def test_sigterm_to_one_worker_stops_both_at_one_step(tmp_path):
  override = (f'{SMALL_DEMO},train.steps=40,train.steps_per_loop=1000,'
              'train.checkpoint_interval=5,train.checkpoint_interval_minutes=0,'
              'train.strategy=multi_worker_mirrored')
  processes = start_workers(tmp_path, override)
  deadline = time.time() + 420
  while not (tmp_path / '.worker_1' / 'ckpt-5.index').exists():
    if time.time() > deadline or any(p.poll() is not None for p in processes):
      finish(processes, 'STOPPED')  # reports the error
      pytest.fail('no checkpoint at step 5')
    time.sleep(0.05)
  processes[1].send_signal(signal.SIGTERM)  # worker 1 only
  chief, other = finish(processes, 'STOPPED')
  step = other[2]
  assert 5 <= int(step) < 40
  # The chief stopped at the same step (told by the all-reduce) and saved.
  assert chief == ['STOPPED', 'None', step, str(tmp_path / f'ckpt-{step}')]
  assert other == ['STOPPED', 'SIGTERM', step,
                   str(tmp_path / '.worker_1' / f'ckpt-{step}')]
