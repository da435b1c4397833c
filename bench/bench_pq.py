"""PQ at dataset scale: pdl_tf's two paths against panopticapi's algorithm
(cityscapesScripts' copy, single core) and hotcoco (where installed).

Seeded COCO-size files (bench/pq_data.py: 640x480, ~21 segments per image,
133 categories, predictions perturbed from the ground truth) are generated
once per size into --data_dir. Each tool runs in a fresh process, the tools
alternating, --runs times; the figure is the process's CPU seconds (user +
sys, getrusage: start-up, JSON and PNG reading included), median with the
spread (min-max) of the runs. Tools:

* panopticapi: ``pq_compute_single_core`` of cityscapesScripts'
  evalPanopticSemanticLabeling (panopticapi's code) on all images.
* hotcoco: ``hotcoco.panoptic.pq_compute`` (Rust).
* pq_compute: ``pdl_tf.evaluation.pq_compute`` (crowd_rule panopticapi;
  threads, all of their CPU time counted).
* streaming: what pdl-eval does per image: ``StreamingPanopticQuality.update``
  on label-encoded maps. The process reads each PNG pair and turns it into
  label maps (the input pipeline's work in pdl-eval), which is left out: the
  figure is the CPU time of ``update`` alone, also given per image.

Every tool's All PQ is printed; they must agree (the table says the largest
difference).

Usage: python bench/bench_pq.py [--sizes 500 5000] [--runs 3]
           [--data_dir /tmp/pdl_bench_pq]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, '..')

TOOLS = ('panopticapi', 'hotcoco', 'pq_compute', 'streaming')

# Run in a fresh interpreter: argv = tool, data folder. Prints JSON.
_CHILD = r'''
import json, os, resource, sys, time
tool, folder = sys.argv[1], sys.argv[2]
gt_json, pred_json = f'{folder}/gt.json', f'{folder}/pred.json'
gt_folder, pred_folder = f'{folder}/gt', f'{folder}/pred'
extra = {}
if tool == 'hotcoco':
  import contextlib, io
  from hotcoco.panoptic import pq_compute
  with contextlib.redirect_stdout(io.StringIO()):
    pq = pq_compute(gt_json, pred_json, gt_folder, pred_folder)['All']['pq']
elif tool == 'panopticapi':
  import contextlib, io
  from cityscapesscripts.evaluation import evalPanopticSemanticLabeling as ref
  gt = json.load(open(gt_json)); pred = json.load(open(pred_json))
  categories = {c['id']: c for c in gt['categories']}
  predictions = {a['image_id']: a for a in pred['annotations']}
  pairs = [(a, predictions[a['image_id']]) for a in gt['annotations']]
  with contextlib.redirect_stdout(io.StringIO()):
    stat = ref.pq_compute_single_core(0, pairs, gt_folder, pred_folder,
                                      categories)
  pq = stat.pq_average(categories, isthing=None)[0]['pq']
elif tool == 'pq_compute':
  from pdl_tf.evaluation import pq_compute
  pq = pq_compute(gt_json, pred_json, gt_folder, pred_folder,
                  crowd_rule='panopticapi')['All']['pq']
elif tool == 'streaming':
  import numpy as np
  from pdl_tf.evaluation import StreamingPanopticQuality
  from pdl_tf.labels.panoptic_format import read_id_map
  gt = json.load(open(gt_json)); pred = json.load(open(pred_json))
  things = {c['id'] for c in gt['categories'] if c['isthing']}
  categories = sorted(c['id'] for c in gt['categories'])
  index = {c: k for k, c in enumerate(categories)}

  def label_map(ids, segments, void):
    # The package's label encoding (data/coco_panoptic.label_from_segments).
    values, count = {0: void}, {}
    for s in segments:
      cls = index[s['category_id']]
      instance = 0
      if s['category_id'] in things and not s.get('iscrowd', 0):
        instance = count[cls] = count.get(cls, 0) + 1
      values[s['id']] = cls * 1000 + instance
    keys = np.array(sorted(values))
    table = np.array([values[i] for i in keys.tolist()], np.int32)
    return table[np.searchsorted(keys, ids)]

  metric = StreamingPanopticQuality(len(categories),
                                    [index[c] for c in things])
  predictions = {a['image_id']: a for a in pred['annotations']}
  update = 0.0
  for a in gt['annotations']:
    b = predictions[a['image_id']]
    g = label_map(read_id_map(f'{gt_folder}/{a["file_name"]}'),
                  a['segments_info'], 255000)
    p = label_map(read_id_map(f'{pred_folder}/{b["file_name"]}'),
                  b['segments_info'], -1)
    start = time.process_time()
    metric.update(g, p)
    update += time.process_time() - start
  pq = metric.result()['All']['pq']
  extra = {'update_s': update, 'images': len(gt['annotations'])}
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({'pq': float(pq), 'cpu_s': usage.ru_utime + usage.ru_stime,
                  'max_rss_mb': usage.ru_maxrss / 1024, **extra}))
'''


def data_folder(root, size, seed):
  folder = os.path.join(root, f'{size}_seed{seed}')
  if not os.path.isfile(os.path.join(folder, 'pred.json')):
    sys.path.insert(0, HERE)
    import pq_data  # pylint: disable=g-import-not-at-top
    print(f'generating {size} images in {folder} ...', flush=True)
    pq_data.write(folder, size, seed)
  return folder


def available(tool):
  module = {'hotcoco': 'hotcoco', 'panopticapi': 'cityscapesscripts'}.get(
      tool)
  if module is None:
    return True
  probe = subprocess.run([sys.executable, '-c', f'import {module}'],
                         capture_output=True, check=False)
  return probe.returncode == 0


def run_tool(tool, folder):
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [ROOT] + [p for p in os.environ.get('PYTHONPATH', '').split(
          os.pathsep) if p]))
  done = subprocess.run([sys.executable, '-c', _CHILD, tool, folder],
                        capture_output=True, text=True, env=env, check=False)
  if done.returncode:
    raise RuntimeError(f'{tool} failed:\n{done.stderr[-3000:]}')
  return json.loads(done.stdout.strip().splitlines()[-1])


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--sizes', type=int, nargs='+', default=[500, 5000])
  parser.add_argument('--runs', type=int, default=3)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--data_dir', default='/tmp/pdl_bench_pq')
  parser.add_argument('--tools', nargs='+', default=list(TOOLS),
                      choices=TOOLS)
  args = parser.parse_args()
  tools = [t for t in args.tools if available(t)]
  missing = sorted(set(args.tools) - set(tools))
  if missing:
    print(f'not installed, left out: {", ".join(missing)}')
  rows = []
  for size in args.sizes:
    folder = data_folder(args.data_dir, size, args.seed)
    results = {tool: [] for tool in tools}
    for _ in range(args.runs):  # the tools alternate
      for tool in tools:
        results[tool].append(run_tool(tool, folder))
        print(f'  {size} {tool}: {results[tool][-1]}', flush=True)
    rows.append((size, results))
  print_table(rows, tools)


def _cell(values):
  return (f'{statistics.median(values):.2f} s '
          f'({min(values):.2f}-{max(values):.2f})')


def print_table(rows, tools):
  header = ['images'] + [f'{t} CPU s' for t in tools]
  if 'streaming' in tools:
    header += ['streaming update() only', 'update() per image']
  header += ['All PQ', 'max PQ difference']
  print('| ' + ' | '.join(header) + ' |')
  print('|' + ' --- |' * len(header))
  for size, results in rows:
    cells = [str(size)] + [_cell([r['cpu_s'] for r in results[t]])
                           for t in tools]
    if 'streaming' in tools:
      update = [r['update_s'] for r in results['streaming']]
      cells += [_cell(update), f'{1e3 * statistics.median(update) / size:.2f}'
                ' ms']
    values = [r['pq'] for t in tools for r in results[t]]
    cells += [f'{values[0]:.6f}', f'{max(values) - min(values):.1e}']
    print('| ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
  main()
