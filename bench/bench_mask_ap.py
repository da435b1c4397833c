"""Mask AP: pycocotools' COCOeval (what pdl_tf uses, evaluation/mask_ap.py)
against hotcoco's (Rust, PyPI) on the same instance files.

Instances come from bench_pq.py's seeded panoptic files (pq_data.py): every
thing segment of the ground truth is an instance (crowd ones iscrowd 1),
every thing segment of the prediction a detection with a seeded random
score; masks as COCO RLE, written once to instances_gt.json /
instances_dt.json. Each tool then runs in a fresh process, alternating:
load both files, evaluate 'segm', accumulate, summarize; CPU seconds (user
+ sys) of the process, median and spread of --runs runs, and the 12
summary stats, which must be identical for a switch.

Usage: python bench/bench_mask_ap.py PQ_DATA_FOLDER [--images 2000]
           [--runs 3]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

_CHILD = r'''
import contextlib, io, json, resource, sys
tool, folder = sys.argv[1], sys.argv[2]
if tool == 'pycocotools':
  from pycocotools.coco import COCO
  from pycocotools.cocoeval import COCOeval
else:
  from hotcoco import COCO, COCOeval
with contextlib.redirect_stdout(io.StringIO()):
  gt = COCO(f'{folder}/instances_gt.json')
  dt = gt.loadRes(f'{folder}/instances_dt.json')
  evaluator = COCOeval(gt, dt, 'segm')
  evaluator.evaluate()
  evaluator.accumulate()
  evaluator.summarize()
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({'stats': [float(s) for s in evaluator.stats],
                  'cpu_s': usage.ru_utime + usage.ru_stime}))
'''


def write_instances(pq_folder, num_images, seed=0):
  """instances_gt.json and instances_dt.json beside the panoptic files."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from pycocotools import mask as mask_api  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
  from pdl_tf.labels.panoptic_format import read_id_map  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  out = {}
  for kind in ('gt', 'pred'):
    with open(os.path.join(pq_folder, f'{kind}.json'), encoding='utf-8') as f:
      out[kind] = json.load(f)
  things = [c for c in out['gt']['categories'] if c['isthing']]
  thing_ids = {c['id'] for c in things}
  images, gt, dt = [], [], []
  for a, b in list(zip(out['gt']['annotations'],
                       out['pred']['annotations']))[:num_images]:
    images.append({'id': a['image_id'], 'height': 480, 'width': 640})
    for kind, annotation, target in (('gt', a, gt), ('pred', b, dt)):
      ids = read_id_map(os.path.join(pq_folder, kind,
                                     annotation['file_name']))
      for s in annotation['segments_info']:
        if s['category_id'] not in thing_ids:
          continue
        rle = mask_api.encode(np.asfortranarray(
            (ids == s['id']).astype(np.uint8)))
        rle['counts'] = rle['counts'].decode('ascii')
        entry = {'image_id': a['image_id'], 'category_id': s['category_id'],
                 'segmentation': rle}
        if kind == 'gt':
          entry.update(id=len(gt) + 1, iscrowd=s.get('iscrowd', 0),
                       area=float(mask_api.area(rle)),
                       bbox=mask_api.toBbox(rle).tolist())
        else:
          entry['score'] = float(rng.random())
        target.append(entry)
  with open(os.path.join(pq_folder, 'instances_gt.json'), 'w',
            encoding='utf-8') as f:
    json.dump({'images': images, 'annotations': gt, 'categories': things}, f)
  with open(os.path.join(pq_folder, 'instances_dt.json'), 'w',
            encoding='utf-8') as f:
    json.dump(dt, f)
  return len(gt), len(dt)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('pq_folder')
  parser.add_argument('--images', type=int, default=2000)
  parser.add_argument('--runs', type=int, default=3)
  args = parser.parse_args()
  print('instances (gt, detections):',
        write_instances(args.pq_folder, args.images))
  results = {'pycocotools': [], 'hotcoco': []}
  for _ in range(args.runs):
    for tool, runs in results.items():
      done = subprocess.run([sys.executable, '-c', _CHILD, tool,
                             args.pq_folder], capture_output=True, text=True,
                            check=False)
      if done.returncode:
        raise RuntimeError(f'{tool} failed:\n{done.stderr[-3000:]}')
      runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
      print(f'  {tool}: {runs[-1]["cpu_s"]:.2f} s', flush=True)
  for tool, runs in results.items():
    cpu = [r['cpu_s'] for r in runs]
    print(f'{tool}: {statistics.median(cpu):.2f} s CPU ({min(cpu):.2f}-'
          f'{max(cpu):.2f}); stats {runs[0]["stats"]}')
  a, b = results['pycocotools'][0]['stats'], results['hotcoco'][0]['stats']
  print('identical stats:', a == b, '; largest difference:',
        max(abs(x - y) for x, y in zip(a, b)))


if __name__ == '__main__':
  main()
