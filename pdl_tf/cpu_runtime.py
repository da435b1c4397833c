"""The CPU runtime settings the pdl-* commands run with.

Two environment variables, both read once per process by TensorFlow, so they
must be set before its first XLA compilation and before it creates its CPU
device (in practice: before the first TensorFlow op):

- ``TF_CPU_ALLOCATOR_USE_BFC=true``: TensorFlow's CPU tensors come from its
  BFC allocator, which keeps freed memory for reuse, instead of malloc. With
  malloc, every buffer of 32 MB or more is a fresh mmap whose pages the
  kernel faults in and zeroes on each use: the 1024x2048 merge at batch 4
  took about 13,000 page faults and 30 ms of system time per image (118
  against 98 ms per image with BFC, bench/README.md).
- ``XLA_FLAGS=--xla_cpu_enable_concurrency_optimized_scheduler=false``:
  XLA:CPU's memory-optimized instruction scheduler instead of its default,
  concurrency-optimized one; a little faster for the merge on 2 cores.

Neither changes any result. A Python program or a model server that runs
the merge can set the same variables.
"""

import os

SCHEDULER_FLAG = 'xla_cpu_enable_concurrency_optimized_scheduler'
BFC_VARIABLE = 'TF_CPU_ALLOCATOR_USE_BFC'


def with_memory_optimized_scheduler(flags):
  """``flags`` (an XLA_FLAGS string) with
  ``--xla_cpu_enable_concurrency_optimized_scheduler=false`` appended,
  unless it already sets that flag (the user's choice wins)."""
  if SCHEDULER_FLAG in flags:
    return flags
  return f'{flags} --{SCHEDULER_FLAG}=false'.strip()


def with_settings(environ):
  """A copy of ``environ`` (a mapping of environment variables) with both
  settings added where the user has not set them."""
  environ = dict(environ)
  environ['XLA_FLAGS'] = with_memory_optimized_scheduler(
      environ.get('XLA_FLAGS', ''))
  environ.setdefault(BFC_VARIABLE, 'true')
  return environ


def apply():
  """Adds both settings to this process's environment (the user's own
  values win).

  Returns:
    dict: the resulting values of XLA_FLAGS and TF_CPU_ALLOCATOR_USE_BFC.
  """
  settings = with_settings(os.environ)
  applied = {name: settings[name] for name in ('XLA_FLAGS', BFC_VARIABLE)}
  os.environ.update(applied)
  return applied
