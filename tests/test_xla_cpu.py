"""The XLA:CPU scheduler setting of the pdl-* commands."""

from pdl_tf import xla_cpu
from pdl_tf.cli import common

FLAG = '--xla_cpu_enable_concurrency_optimized_scheduler=false'


def test_adds_the_flag_to_empty_or_other_flags(monkeypatch):
  monkeypatch.delenv('XLA_FLAGS', raising=False)
  assert xla_cpu.prefer_memory_optimized_scheduler() == FLAG
  monkeypatch.setenv('XLA_FLAGS', '--xla_dump_to=/tmp/x')
  assert xla_cpu.prefer_memory_optimized_scheduler() == (
      '--xla_dump_to=/tmp/x ' + FLAG)
  assert xla_cpu.prefer_memory_optimized_scheduler() == (
      '--xla_dump_to=/tmp/x ' + FLAG)  # once only


def test_the_users_setting_wins(monkeypatch):
  mine = '--xla_cpu_enable_concurrency_optimized_scheduler=true'
  monkeypatch.setenv('XLA_FLAGS', mine)
  assert xla_cpu.prefer_memory_optimized_scheduler() == mine


def test_commands_set_it_before_running(monkeypatch):
  monkeypatch.delenv('XLA_FLAGS', raising=False)
  seen = []
  parser = common.new_parser('pdl-test', 'test')
  common.run(lambda args: seen.append(xla_cpu.os.environ['XLA_FLAGS']),
             [], parser)
  assert seen == [FLAG]
