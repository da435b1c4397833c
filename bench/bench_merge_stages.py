"""Where the XLA merge's time goes, stage by stage, next to its floor.

On the 1024x2048 Cityscapes-like scene of bench_postprocess.py (19
classes, 30 instances, top_k 200), with the pdl-* commands' CPU settings,
each stage of ``postprocess.panoptic_merge`` is compiled on its own and
timed in one process, the stages called in turn (so the machine's drift
touches all alike): the floor of bench_floors.py (one max over the classes
of the logits, classes on the minor axis as the network writes them), the
same max over a [classes, pixels] copy (the memory floor), the semantic
argmax, center finding (NMS + top-k), the pixel grouping, the majority
vote, the stuff areas, the instance scores (and their one-hot pick of the
instance class's logit alone), and the whole merge. Stages are timed on
their own, so they do not add up exactly.

Usage: python bench/bench_merge_stages.py [--rounds 9]
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..'))
sys.path.insert(0, os.path.join(HERE, '..', 'tests'))
sys.path.insert(0, HERE)

from pdl_tf import cpu_runtime  # pylint: disable=g-import-not-at-top

cpu_runtime.apply()  # before TensorFlow starts: as the pdl-* commands run

import tensorflow as tf  # pylint: disable=g-import-not-at-top

from bench_postprocess import CASES, make_inputs, merge_kwargs  # pylint: disable=g-import-not-at-top
from pdl_tf.postprocess import grouping  # pylint: disable=g-import-not-at-top
from pdl_tf import keys  # pylint: disable=g-import-not-at-top
from pdl_tf import postprocess  # pylint: disable=g-import-not-at-top


def _xla(function):
  return tf.function(function, jit_compile=True)


def stages():
  """{name: (compiled function, its inputs)} on the 1024x2048 scene."""
  case = CASES[0]
  kwargs = merge_kwargs(case)
  logits, heatmap, offsets = (tf.constant(x) for x in make_inputs(case, 1))
  merge = postprocess.merge_fn(jit_compile=True, **kwargs)
  result = merge(logits, heatmap, offsets)
  num_classes = logits.shape[-1]
  flat = tf.reshape(logits, [1, -1, num_classes])
  transposed = tf.constant(tf.transpose(flat, [0, 2, 1]).numpy())
  instance = tf.reshape(result[keys.INSTANCE], [1, -1])
  semantic = tf.reshape(result[keys.SEMANTIC], [1, -1])
  classes = result[postprocess.INSTANCE_CLASSES]
  things = tf.scatter_nd([[c] for c in kwargs['thing_class_ids']],
                         tf.ones([len(kwargs['thing_class_ids'])], tf.bool),
                         [num_classes])
  class_of = lambda i, c: tf.gather(tf.pad(tf.maximum(c, 0), [[0, 0], [1, 0]]),
                                    i, batch_dims=1)
  return {
      'floor: max over classes': (
          _xla(lambda x: tf.reduce_max(x, -1)), (flat,)),
      'max over a [C, N] copy': (
          _xla(lambda x: tf.reduce_max(x, 1)), (transposed,)),
      'semantic argmax (keys)': (
          _xla(postprocess.argmax_by_keys), (flat,)),
      'centers (NMS + top-k)': (_xla(lambda h: grouping.find_centers(
          h, center_threshold=kwargs['center_threshold'],
          nms_kernel=kwargs['nms_kernel'], top_k=kwargs['top_k'])),
                                (heatmap,)),
      'grouping': (_xla(lambda o, p, v: grouping.group_pixels(o, p, v)),
                   (offsets, result[postprocess.CENTER_POINTS],
                    result[postprocess.CENTER_VALID])),
      'majority vote': (_xla(lambda s, i: postprocess.majority_vote(
          s, i, num_classes, kwargs['top_k'])), (semantic, instance)),
      'stuff areas': (_xla(lambda s: postprocess.stuff_panoptic(
          s, tf.gather(things, s), tf.ones_like(s, tf.bool),
          num_classes=num_classes, stuff_area=kwargs['stuff_area'],
          label_divisor=kwargs['label_divisor'])), (semantic,)),
      'instance scores': (_xla(postprocess.instance_scores), (
          flat, instance, classes, result[postprocess.INSTANCE_AREAS],
          result[postprocess.CENTER_SCORES])),
      '  of which the pick': (_xla(lambda x, i, c: postprocess._one_hot_pick(  # pylint: disable=protected-access
          x, class_of(i, c))), (flat, instance, classes)),
      'whole merge': (merge, (logits, heatmap, offsets)),
  }


def _call(function, inputs):
  tf.nest.map_structure(lambda t: t.numpy(), function(*inputs))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--rounds', type=int, default=9)
  args = parser.parse_args()
  table = stages()
  for function, inputs in table.values():
    _call(function, inputs)  # compiles
  times = {name: [] for name in table}
  for _ in range(args.rounds):
    for name, (function, inputs) in table.items():
      start = time.perf_counter()
      _call(function, inputs)
      times[name].append(1000 * (time.perf_counter() - start))
  floor = statistics.median(times['floor: max over classes'])
  print(f'{os.cpu_count()} CPU cores; 1024x2048, 19 classes, 30 instances; '
        f'ms, median (quartiles) of {args.rounds} rounds')
  print('| stage | time | / floor |')
  print('| --- | --- | --- |')
  for name, values in times.items():
    quartiles = statistics.quantiles(values, n=4)
    median = statistics.median(values)
    print(f'| {name} | {median:.1f} ({quartiles[0]:.1f}-{quartiles[2]:.1f}) '
          f'| {median / floor:.2f}x |')


if __name__ == '__main__':
  main()
