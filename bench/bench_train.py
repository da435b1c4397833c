"""Training throughput (images/s) and the share of step time spent on input.

For each case, builds the Trainer (model, optimizer, tf.distribute loop) in
a temporary model_dir and times loops of --steps steps (one tf.function call
each, as pdl-train runs them), median of --runs loops after a warm-up loop
that also traces. Where the training split is cached in memory
(data.train.cache, as the demo ships), the warm-up runs one epoch plus
--steps steps, so that the timed loops read the filled cache as all but the
first epoch of training does; the first epoch, which generates or decodes
each example once, is the 'demo_first_epoch' case. The same loops then run on
one cached batch repeated (no input work at all); the input-wait share is
  1 - (time per step on the cached batch) / (time per step on real input).

Cases: the demo experiment as configured, its first epoch (the scenes
generated in Python while the cache fills), the demo without its in-memory
cache, and ResNet-50 OS32 at 512x1024
(the network of cityscapes_r50_os32 on synthetic 512x1024 scenes, batch 1:
no Cityscapes data here).

Usage: python bench/bench_train.py [--cases demo r50_512x1024] [--runs 3]
         [--steps 5]
"""

import argparse
import math
import os
import sys
import statistics
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
# Measure this checkout's pdl_tf, not an installed copy.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..'))  # the working tree

# As the pdl-* commands run (pdl_tf.cpu_runtime), before TensorFlow starts.
from pdl_tf import cpu_runtime  # pylint: disable=g-import-not-at-top
cpu_runtime.apply()

import tensorflow as tf  # pylint: disable=g-import-not-at-top

from pdl_tf import config_io  # pylint: disable=g-import-not-at-top
from pdl_tf.data import pipeline  # pylint: disable=g-import-not-at-top
from pdl_tf.training import trainer as trainer_lib  # pylint: disable=g-import-not-at-top

CASES = {
    'demo': ('demo', ''),
    'demo_first_epoch': ('demo', ''),
    'demo_uncached': ('demo', 'data.train.cache=false'),
    'r50_512x1024': ('cityscapes_r50_os32', (
        'data.dataset=synthetic,model.num_classes=6,'
        'data.thing_class_ids=[3,4,5],data.train.crop_size=[512,1024],'
        'data.train.num_examples=64,data.eval.num_examples=1,'
        'data.train.batch_size=1,data.train.min_scale=1.0,'
        'data.train.max_scale=1.0')),
}


def _seconds_per_step(trainer, dataset, steps, runs, warmup_steps):
  """Median seconds per step of ``runs`` loops of ``steps`` steps, after
  ``warmup_steps`` steps (in one loop, which also traces)."""
  iterator = iter(trainer.strategy.experimental_distribute_dataset(dataset))
  train_loop = trainer._make_train_loop()  # pylint: disable=protected-access
  no_deadline = tf.constant(math.inf, tf.float64)  # no time checkpoint
  train_loop(iterator, tf.constant(warmup_steps), no_deadline)
  times = []
  for _ in range(runs):
    start = time.perf_counter()
    means = train_loop(iterator, tf.constant(steps), no_deadline)[0]
    means.numpy()
    times.append((time.perf_counter() - start) / steps)
  return statistics.median(times)


def measure(name, runs, steps):
  experiment, override = CASES[name]
  config = config_io.load_config(experiment, params_override=override)
  batch = config.data.train.batch_size
  with tempfile.TemporaryDirectory() as model_dir:
    trainer = trainer_lib.Trainer(config, model_dir,
                                  tf.distribute.get_strategy())
    real = pipeline.build_dataset(config)
    warmup = steps
    if config.data.train.cache and name != 'demo_first_epoch':
      warmup += -(-config.data.train.num_examples // batch)  # one epoch
    real_step = _seconds_per_step(trainer, real, steps, runs, warmup)
    cached = real.take(1).cache().repeat()
    compute_step = _seconds_per_step(trainer, cached, steps, runs, steps)
  height, width = config.data.train.crop_size
  share = max(0.0, 1.0 - compute_step / real_step)
  print(f'| {name} ({config.model.backbone.type}, {height}x{width}, batch '
        f'{batch}) | {batch / real_step:.2f} images/s | {real_step:.3f} s '
        f'| {compute_step:.3f} s | {100 * share:.1f}% |', flush=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--cases', nargs='+', default=list(CASES),
                      choices=list(CASES))
  parser.add_argument('--runs', type=int, default=3)
  parser.add_argument('--steps', type=int, default=5)
  args = parser.parse_args()
  print(f'{os.cpu_count()} CPU cores; median of {args.runs} loops of '
        f'{args.steps} steps')
  print('| case | throughput | s/step, real input | s/step, cached batch '
        '| input wait |')
  print('| --- | --- | --- | --- | --- |')
  for name in args.cases:
    measure(name, args.runs, args.steps)


if __name__ == '__main__':
  main()
