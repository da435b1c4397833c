"""Latency and peak memory of the panoptic merge, next to the numpy oracle.

Cases: 1024x2048 with 19 classes, 30 instances, top_k 200 (Cityscapes) and
640x640 with 133 classes (COCO), batch 1 and 4, XLA on and off. Each case
runs in a fresh process so that its peak resident memory (ru_maxrss) is its
own (TensorFlow, the inputs and the XLA compile included: a 1024x2048x19
float32 logits map is 160 MB per image); 'merge adds' is the growth of the
peak during the timed runs (the peak is reset after the warm-up call), or,
under TensorFlow's BFC allocator (mode xla_cmd, as the pdl-* commands run),
which keeps the memory it once took, the allocator's peak in use during
the timed runs above what was in use before them.
Timings are the median of --runs runs after one warm-up (which also
compiles).

Usage: python bench/bench_postprocess.py [--runs 5] [--skip_oracle]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
HERE = os.path.dirname(os.path.abspath(__file__))
# Measure this checkout's pdl_tf (not an installed copy) and its oracle.
sys.path.insert(0, os.path.join(HERE, '..'))
sys.path.insert(0, os.path.join(HERE, '..', 'tests'))

from pdl_tf import cpu_runtime  # pylint: disable=g-import-not-at-top

CASES = [
    dict(name='cityscapes', height=1024, width=2048, num_classes=19,
         things=list(range(11, 19)), instances=30, nms_kernel=7,
         stuff_area=2048),
    dict(name='coco', height=640, width=640, num_classes=133,
         things=list(range(80)), instances=30, nms_kernel=41,
         stuff_area=4096),
]


def make_inputs(case, batch):
  import numpy as np  # pylint: disable=g-import-not-at-top
  from merge_oracle import random_scene  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  scenes = [random_scene(rng, case['height'], case['width'],
                         case['num_classes'], case['things'],
                         case['instances']) for _ in range(batch)]
  return [np.stack(part) for part in zip(*scenes)]


def merge_kwargs(case):
  return dict(thing_class_ids=case['things'], label_divisor=1000,
              stuff_area=case['stuff_area'], center_threshold=0.1,
              nms_kernel=case['nms_kernel'], top_k=200)


def run_case(case, batch, mode, runs):
  """Runs one case in this process; returns a dict of figures."""
  inputs = make_inputs(case, batch)
  if mode == 'oracle':
    from merge_oracle import np_merge  # pylint: disable=g-import-not-at-top
    fn = lambda: np_merge(*inputs, **merge_kwargs(case))
  else:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from pdl_tf import postprocess  # pylint: disable=g-import-not-at-top
    merge = postprocess.merge_fn(jit_compile=(mode != 'no_xla'),
                                 **merge_kwargs(case))
    tensors = [tf.constant(x) for x in inputs]
    fn = lambda: merge(*tensors)['panoptic'].numpy()
  fn()
  # Linux: '5' in clear_refs resets the peak RSS (VmHWM), so the runs after
  # the warm-up measure the merge alone, without the one-off XLA compile.
  with open('/proc/self/clear_refs', 'w') as f:
    f.write('5')
  steady_before_mb = _status_mb('VmRSS')
  allocator = None if mode == 'oracle' else _allocator_stats(True)
  times = []
  for _ in range(runs):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  if allocator is None:  # malloc: the process's memory grows
    added_mb = _status_mb('VmHWM') - steady_before_mb
  else:  # BFC keeps the warm-up's memory: its own peak above the inputs
    added_mb = (_allocator_stats()['peak'] - allocator['current']) / 2**20
  return dict(ms_per_image=1000 * statistics.median(times) / batch,
              peak_mb=peak_mb, steady_added_mb=added_mb)


def _allocator_stats(reset_peak=False):
  """Bytes in use in TensorFlow's CPU allocator, {'current', 'peak'} (after
  resetting the peak if ``reset_peak``), or None where it keeps no
  statistics (malloc; the BFC allocator does)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    if reset_peak:
      tf.config.experimental.reset_memory_stats('CPU:0')
    return tf.config.experimental.get_memory_info('CPU:0')
  except ValueError:  # "Allocator stats not available"
    return None


def _status_mb(field):
  """A memory field of /proc/self/status (e.g. VmRSS, VmHWM) in MB."""
  with open('/proc/self/status') as f:
    for line in f:
      if line.startswith(field + ':'):
        return int(line.split()[1]) / 1024
  raise KeyError(f'{field} not in /proc/self/status')


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--runs', type=int, default=5)
  parser.add_argument('--skip_oracle', action='store_true')
  parser.add_argument('--child', help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    name, batch, mode = args.child.split(':')
    case = next(c for c in CASES if c['name'] == name)
    print(json.dumps(run_case(case, int(batch), mode, args.runs)))
    return
  print(f'{os.cpu_count()} CPU cores; median of {args.runs} runs')
  # 'xla_cmd': XLA with the CPU runtime settings of the pdl-* commands
  # (pdl_tf.cpu_runtime: BFC allocator, XLA scheduler), given to the child
  # process in its environment; 'xla' runs with the environment as it is.
  modes = ['xla', 'xla_cmd', 'no_xla'] + (
      [] if args.skip_oracle else ['oracle'])
  for case in CASES:
    for batch in (1, 4):
      for mode in modes:
        runs = 1 if mode == 'oracle' else args.runs
        env = dict(os.environ)
        if mode == 'xla_cmd':
          env = cpu_runtime.with_settings(env)
        out = subprocess.run(
            [sys.executable, __file__, '--runs', str(runs), '--child',
             f"{case['name']}:{batch}:{mode}"],
            capture_output=True, text=True, check=True, env=env)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{case['name']:10s} {case['height']}x{case['width']} "
              f"C={case['num_classes']:3d} batch={batch} {mode:8s}: "
              f"{result['ms_per_image']:9.1f} ms/image, peak RSS "
              f"{result['peak_mb']:6.0f} MB, merge adds "
              f"{result['steady_added_mb']:5.0f} MB", flush=True)


if __name__ == '__main__':
  main()
