"""Target-generation throughput: vectorised vs. a per-instance loop.

Prints labels/s of ``pdl_tf.data.targets.targets.generate_targets`` (inside a
tf.function, as in a tf.data map) at 1024x2048 with 30 instances and at
512x512 with 10, next to a per-instance-loop implementation of the same
targets (the peers' approach: tf.unique, then a tf.while_loop that builds a
full-image mask, center and Gaussian per instance), measured in the same run.
Both produce the same targets (checked before timing). Also prints the
vectorised version's throughput inside a tf.data map with AUTOTUNE
parallel calls, as the input pipeline runs it.

Usage: python bench/bench_targets.py [--runs 5]
"""

import argparse
import os
import sys
import statistics
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
# Measure this checkout's pdl_tf, not an installed copy.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..'))  # the working tree

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from pdl_tf import keys  # pylint: disable=g-import-not-at-top
from pdl_tf.data.targets.center_heatmap import gaussian_window  # pylint: disable=g-import-not-at-top
from pdl_tf.data.targets.targets import generate_targets  # pylint: disable=g-import-not-at-top

THINGS = tuple(range(11, 19))
DIVISOR, IGNORE, SIGMA = 1000, 255, 8.0


def make_label(height, width, num_instances, seed=0):
  """Stuff bands, thing rectangles of many sizes, a crowd and an ignore band."""
  rng = np.random.default_rng(seed)
  label = np.zeros((height, width), np.int32)
  for i, y in enumerate(np.sort(rng.integers(0, height, 5))):
    label[y:] = (i + 1) * DIVISOR
  label[:, -width // 50:] = IGNORE * DIVISOR
  for i in range(num_instances):
    h = int(rng.integers(8, height // 4))
    w = int(rng.integers(8, width // 4))
    y, x = int(rng.integers(0, height - h)), int(rng.integers(0, width - w))
    instance = 0 if i == 0 else i  # the first one is a crowd
    label[y:y + h, x:x + w] = int(rng.choice(THINGS)) * DIVISOR + instance
  return label


def loop_targets(panoptic):
  """Per-instance loop baseline (heatmap, offsets, offset weights)."""
  height, width = tf.shape(panoptic)[0], tf.shape(panoptic)[1]
  values, _ = tf.unique(tf.reshape(panoptic, [-1]))
  ys = tf.cast(tf.range(height), tf.float32)[:, None]
  xs = tf.cast(tf.range(width), tf.float32)[None, :]
  _, radius = gaussian_window(SIGMA)
  heatmap = tf.zeros([height, width])
  offsets = tf.zeros([height, width, 2])
  weights = tf.zeros([height, width])
  for i in tf.range(tf.size(values)):
    value = values[i]
    cls = value // DIVISOR
    is_instance = tf.reduce_any(tf.equal(cls, THINGS)) & (value % DIVISOR > 0)
    if is_instance:
      mask = tf.equal(panoptic, value)
      maskf = tf.cast(mask, tf.float32)
      area = tf.reduce_sum(maskf)
      cy = tf.reduce_sum(maskf * ys) / area
      cx = tf.reduce_sum(maskf * xs) / area
      ry, rx = tf.round(cy), tf.round(cx)
      in_window = ((tf.abs(ys - ry) <= radius) & (tf.abs(xs - rx) <= radius))
      gaussian = tf.exp(-((ys - ry) ** 2 + (xs - rx) ** 2) / (2 * SIGMA ** 2))
      heatmap = tf.maximum(heatmap, tf.where(in_window, gaussian, 0.0))
      offsets = tf.where(mask[..., None],
                         tf.stack([cy - ys + 0 * xs, cx - xs + 0 * ys], -1),
                         offsets)
      weights = tf.where(mask, 1.0, weights)
  return heatmap, offsets, weights


def median_rate(fn, label, runs):
  fn(label)  # warm-up / tracing
  times = []
  for _ in range(runs):
    start = time.perf_counter()
    tf.nest.map_structure(lambda t: t.numpy(), fn(label))
    times.append(time.perf_counter() - start)
  return 1.0 / statistics.median(times)


def pipeline_rate(fn, label, runs, count=8):
  """labels/s of fn in a tf.data map with AUTOTUNE parallel calls."""
  dataset = tf.data.Dataset.from_tensors(label).repeat(count).map(
      fn, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
  for _ in dataset:  # warm-up / tracing
    pass
  times = []
  for _ in range(runs):
    start = time.perf_counter()
    for _ in dataset:
      pass
    times.append(time.perf_counter() - start)
  return count / statistics.median(times)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--runs', type=int, default=5)
  args = parser.parse_args()
  vectorised = tf.function(lambda p: generate_targets(
      p, thing_class_ids=THINGS, label_divisor=DIVISOR, ignore_label=IGNORE,
      sigma=SIGMA))
  loop = tf.function(loop_targets)
  print(f'{os.cpu_count()} CPU cores; median of {args.runs} runs')
  for height, width, instances in ((1024, 2048, 30), (512, 512, 10)):
    label = tf.constant(make_label(height, width, instances))
    fast, slow = vectorised(label), loop(label)
    np.testing.assert_allclose(fast[keys.CENTER_HEATMAP], slow[0], atol=1e-6)
    np.testing.assert_allclose(fast[keys.OFFSETS], slow[1], atol=1e-3)
    np.testing.assert_array_equal(fast[keys.OFFSET_WEIGHTS], slow[2])
    fast_rate = median_rate(vectorised, label, args.runs)
    slow_rate = median_rate(loop, label, args.runs)
    print(f'{height}x{width}, {instances} instances: vectorised '
          f'{fast_rate:6.1f} labels/s, per-instance loop {slow_rate:6.1f} '
          f'labels/s ({fast_rate / slow_rate:4.1f}x)', flush=True)
    mapped = pipeline_rate(vectorised, label, args.runs)
    print(f'{height}x{width}, {instances} instances: vectorised in a '
          f'tf.data map (AUTOTUNE parallel calls) {mapped:6.1f} labels/s',
          flush=True)


if __name__ == '__main__':
  main()
