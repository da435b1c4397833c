"""The CPU runtime settings of the pdl-* commands (pdl_tf.cpu_runtime)."""

import os

from pdl_tf import cpu_runtime
from pdl_tf.cli.shared import common

FLAG = '--xla_cpu_enable_concurrency_optimized_scheduler=false'
BFC = 'TF_CPU_ALLOCATOR_USE_BFC'


def test_adds_both_settings_to_empty_or_other_flags(monkeypatch):
  monkeypatch.delenv('XLA_FLAGS', raising=False)
  monkeypatch.delenv(BFC, raising=False)
  assert cpu_runtime.apply() == {'XLA_FLAGS': FLAG, BFC: 'true'}
  assert os.environ[BFC] == 'true'
  monkeypatch.setenv('XLA_FLAGS', '--xla_dump_to=/tmp/x')
  for _ in range(2):  # added once only
    assert cpu_runtime.apply()['XLA_FLAGS'] == '--xla_dump_to=/tmp/x ' + FLAG


def test_the_users_settings_win(monkeypatch):
  mine = '--xla_cpu_enable_concurrency_optimized_scheduler=true'
  monkeypatch.setenv('XLA_FLAGS', mine)
  monkeypatch.setenv(BFC, 'false')
  assert cpu_runtime.apply() == {'XLA_FLAGS': mine, BFC: 'false'}


def test_with_settings_leaves_its_argument_alone():
  environ = {'HOME': '/h'}
  assert cpu_runtime.with_settings(environ) == {
      'HOME': '/h', 'XLA_FLAGS': FLAG, BFC: 'true'}
  assert environ == {'HOME': '/h'}


def test_commands_set_them_before_running(monkeypatch):
  monkeypatch.delenv('XLA_FLAGS', raising=False)
  monkeypatch.delenv(BFC, raising=False)
  seen = []
  parser = common.new_parser('pdl-test', 'test')
  common.run(lambda args: seen.append(
      (os.environ['XLA_FLAGS'], os.environ[BFC])), [], parser)
  assert seen == [(FLAG, 'true')]
