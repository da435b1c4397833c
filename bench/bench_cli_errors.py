"""How long a pdl-* command takes to refuse bad arguments, and its memory.

Runs each case of tests/test_cli.py's BAD_ARGUMENTS (unknown experiment,
typo'd key, missing input, empty folder, missing checkpoint, a coco_panoptic
experiment without its data path, a model_dir that is a file...) as
``python -m pdl_tf.cli.<command> ARGS`` from a scratch folder, --runs times
in turns (case 1, case 2, ..., case 1, ...), and prints per case the median
wall time, the spread (min-max) and the median peak resident memory
(getrusage of the child). Target (issue 17): under 2 s.

Usage: python bench/bench_cli_errors.py [--runs 5] [--pythonpath DIR]
  --pythonpath: the checkout whose pdl_tf is measured (default: this one);
  point it at an older checkout to compare.
"""

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests'))

import peak_rss  # pylint: disable=g-import-not-at-top,wrong-import-position
from test_cli import BAD_ARGUMENTS  # pylint: disable=g-import-not-at-top,wrong-import-position
from test_cli import make_bad_argument_folder  # pylint: disable=g-import-not-at-top,wrong-import-position


def run_once(module, argv, folder, env):
  """(seconds, peak RSS in MiB, exit status, last stderr line)."""
  start = time.perf_counter()
  done, peak = peak_rss.run(
      [sys.executable, '-m', f'pdl_tf.cli.{module}'] + argv, cwd=folder,
      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  seconds = time.perf_counter() - start
  error = done.stderr.strip().splitlines()
  return seconds, peak / 2**20, done.returncode, error[-1] if error else ''


def scratch_folder():
  folder = tempfile.mkdtemp(prefix='bench_cli_errors_')
  make_bad_argument_folder(pathlib.Path(folder))  # as tests/test_cli.py's
  return folder


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--runs', type=int, default=5)
  parser.add_argument('--pythonpath', default=os.path.join(HERE, '..'))
  parser.add_argument('--cases', type=int, nargs='*', default=None,
                      help='indices into BAD_ARGUMENTS (default: all)')
  args = parser.parse_args()
  env = dict(os.environ, PYTHONPATH=os.path.abspath(args.pythonpath))
  env.pop('TF_CPP_MIN_LOG_LEVEL', None)  # as a user runs it
  cases = [BAD_ARGUMENTS[i] for i in (args.cases or
                                      range(len(BAD_ARGUMENTS)))]
  folder = scratch_folder()
  times = {i: [] for i in range(len(cases))}
  memory = {i: [] for i in range(len(cases))}
  last = {}
  for _ in range(args.runs):
    for i, (module, argv, _) in enumerate(cases):
      seconds, mib, code, error = run_once(module, argv, folder, env)
      times[i].append(seconds)
      memory[i].append(mib)
      last[i] = (code, error)
  print(f'{args.runs} runs per case, pdl_tf from {args.pythonpath}')
  print('| command | arguments | median s | min-max s | peak MiB | exit |')
  print('| --- | --- | --- | --- | --- | --- |')
  for i, (module, argv, _) in enumerate(cases):
    print(f'| {module} | `{" ".join(argv)}` | '
          f'{statistics.median(times[i]):.2f} | {min(times[i]):.2f}-'
          f'{max(times[i]):.2f} | {statistics.median(memory[i]):.0f} | '
          f'{last[i][0]} |')
  for i, (module, _, _) in enumerate(cases):
    print(f'{module}: {last[i][1]}')


if __name__ == '__main__':
  main()
