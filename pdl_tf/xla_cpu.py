"""The XLA:CPU setting the pdl-* commands run with.

XLA:CPU's default, concurrency-optimized instruction scheduler interleaves
independent parts of a computation; its memory-optimized scheduler runs them
in an order that keeps data in cache. For the panoptic merge the second is
faster on a 2-core CPU (1024x2048: about 108 against 128 ms per image,
bench/README.md) and it changes no result. The pdl-* commands switch to it;
a Python program or a model server that runs the merge can do the same with
``XLA_FLAGS=--xla_cpu_enable_concurrency_optimized_scheduler=false``.

XLA reads XLA_FLAGS once, at its first compilation in a process, so the
setting must be made before that.
"""

import os

SCHEDULER_FLAG = 'xla_cpu_enable_concurrency_optimized_scheduler'


def with_memory_optimized_scheduler(flags):
  """``flags`` (an XLA_FLAGS string) with
  ``--xla_cpu_enable_concurrency_optimized_scheduler=false`` appended,
  unless it already sets that flag (the user's choice wins)."""
  if SCHEDULER_FLAG in flags:
    return flags
  return f'{flags} --{SCHEDULER_FLAG}=false'.strip()


def prefer_memory_optimized_scheduler():
  """Adds ``--xla_cpu_enable_concurrency_optimized_scheduler=false`` to
  XLA_FLAGS unless XLA_FLAGS already sets that flag (the user's choice
  wins).

  Returns:
    The resulting XLA_FLAGS string.
  """
  os.environ['XLA_FLAGS'] = with_memory_optimized_scheduler(
      os.environ.get('XLA_FLAGS', ''))
  return os.environ['XLA_FLAGS']
