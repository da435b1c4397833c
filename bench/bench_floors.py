"""The merge and the target generation against their physical floors.

Both are memory-bound passes over full-resolution maps, so each is timed
next to the cheapest pass that must read the same input once, in the same
process, alternating calls, so that the machine's drift cancels:

* merge (``postprocess.merge_fn``, XLA, the pdl-* commands' CPU settings)
  on 1024x2048 Cityscapes-like outputs (19 classes, 30 instances, top_k
  200) against one XLA-compiled max over the classes of the same logits;
* targets (``targets.generate_targets`` in a tf.function, as the input
  pipeline calls it) for a 1024x2048 label with 30 instances against one
  ``tf.math.bincount`` over the same label.

Prints, per pair, the median and the quartiles of each time and of the
per-pair ratio. Goals (issue 18): merge at most 2.5x its floor, targets at
most 5x theirs.

Usage: python bench/bench_floors.py [--pairs 15] [--only merge|targets]
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
HERE = os.path.dirname(os.path.abspath(__file__))
# Measure this checkout's pdl_tf (not an installed copy) and its oracle.
sys.path.insert(0, os.path.join(HERE, '..'))
sys.path.insert(0, os.path.join(HERE, '..', 'tests'))
sys.path.insert(0, HERE)

from pdl_tf import cpu_runtime  # pylint: disable=g-import-not-at-top

cpu_runtime.apply()  # before TensorFlow starts: as the pdl-* commands run

import tensorflow as tf  # pylint: disable=g-import-not-at-top

GOALS = {'merge': 2.5, 'targets': 5.0}


def _ms(function):
  start = time.perf_counter()
  function()
  return 1000 * (time.perf_counter() - start)


def alternate(work, floor, pairs):
  """(work ms, floor ms, ratio) lists of ``pairs`` alternating calls, after
  one warm-up call of each (which also compiles)."""
  work()
  floor()
  rows = []
  for _ in range(pairs):
    work_ms, floor_ms = _ms(work), _ms(floor)
    rows.append((work_ms, floor_ms, work_ms / floor_ms))
  return [list(column) for column in zip(*rows)]


def _spread(values):
  quartiles = statistics.quantiles(values, n=4)
  return (f'{statistics.median(values):7.1f} (quartiles {quartiles[0]:.1f}'
          f'-{quartiles[2]:.1f})')


def merge_pair():
  """The XLA merge and its floor on one 1024x2048 scene."""
  # pylint: disable=g-import-not-at-top
  from bench_postprocess import CASES, make_inputs, merge_kwargs
  from pdl_tf import postprocess
  # pylint: enable=g-import-not-at-top
  case = CASES[0]
  logits, heatmap, offsets = (tf.constant(x) for x in make_inputs(case, 1))
  merge = postprocess.merge_fn(jit_compile=True, **merge_kwargs(case))
  floor = tf.function(lambda x: tf.reduce_max(x, axis=-1), jit_compile=True)
  return (lambda: merge(logits, heatmap, offsets)['panoptic'].numpy(),
          lambda: floor(logits).numpy())


def targets_pair():
  """generate_targets and its floor on one 1024x2048 label."""
  # pylint: disable=g-import-not-at-top
  from bench_targets import DIVISOR, IGNORE, SIGMA, THINGS, make_label
  from pdl_tf.data.targets.targets import generate_targets
  # pylint: enable=g-import-not-at-top
  label = tf.constant(make_label(1024, 2048, 30))
  targets = tf.function(lambda p: generate_targets(
      p, thing_class_ids=THINGS, label_divisor=DIVISOR, ignore_label=IGNORE,
      sigma=SIGMA))
  floor = tf.function(lambda p: tf.math.bincount(tf.reshape(p, [-1])))
  return (lambda: tf.nest.map_structure(lambda t: t.numpy(), targets(label)),
          lambda: floor(label).numpy())


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--pairs', type=int, default=15)
  parser.add_argument('--only', choices=tuple(GOALS))
  args = parser.parse_args()
  print(f'{os.cpu_count()} CPU cores; {args.pairs} alternating pairs; ms, '
        'median (quartiles)')
  print('| stage | time | floor | ratio | goal |')
  print('| --- | --- | --- | --- | --- |')
  for name, make in (('merge', merge_pair), ('targets', targets_pair)):
    if args.only and name != args.only:
      continue
    work_ms, floor_ms, ratio = alternate(*make(), args.pairs)
    print(f'| {name} | {_spread(work_ms)} | {_spread(floor_ms)} | '
          f'{_spread(ratio)} | <= {GOALS[name]}x |', flush=True)


if __name__ == '__main__':
  main()
