"""Seeded COCO-size panoptic files for bench_pq.py: ground truth and
predictions in COCO panoptic format (JSON + PNG).

640x480 images of ~20 segments (Voronoi cells of a coarse grid, 4x
upscaled), the 133 COCO categories (80 things, 53 stuff); one segment per
stuff category per image and at most one crowd segment per category (as in
COCO's own files, so that every tool, the label-encoded streaming path
included, scores the same). Predictions: the ground truth shifted a few
pixels, ~10% of segments given another category of their kind, ~5% dropped
to void, random 24-bit segment ids.

Usage: python bench/pq_data.py OUT_DIR NUM_IMAGES [--seed 0]
"""

import argparse
import json
import os

import numpy as np
from PIL import Image

HEIGHT, WIDTH, CELL = 480, 640, 4
THINGS = list(range(1, 81))
STUFF = list(range(81, 134))
CATEGORIES = ([{'id': c, 'name': f'thing{c}', 'isthing': 1}
               for c in THINGS] +
              [{'id': c, 'name': f'stuff{c}', 'isthing': 0} for c in STUFF])


def _cells(rng, n):
  """Coarse Voronoi map [H/CELL, W/CELL] of n cells, upscaled to [H, W]."""
  h, w = HEIGHT // CELL, WIDTH // CELL
  centers = rng.random((n, 2)) * (h, w)
  yy, xx = np.mgrid[:h, :w]
  distance = ((yy[..., None] - centers[:, 0]) ** 2 +
              (xx[..., None] - centers[:, 1]) ** 2)
  return np.repeat(np.repeat(distance.argmin(-1), CELL, 0), CELL, 1)


def _ids(rng, n):
  while True:
    ids = rng.integers(1, 2 ** 24, n)
    if len(np.unique(ids)) == n:
      return ids


def _segments(ids_map, ids, categories, crowd=None):
  counts = np.bincount(np.searchsorted(np.sort(ids), ids_map[ids_map > 0]),
                       minlength=len(ids))
  area = dict(zip(np.sort(ids).tolist(), counts.tolist()))
  result = []
  for k, (segment_id, category) in enumerate(zip(ids.tolist(), categories)):
    if area[segment_id] == 0:
      continue
    info = {'id': segment_id, 'category_id': int(category),
            'area': int(area[segment_id])}
    if crowd is not None:
      info['iscrowd'] = int(crowd[k])
    result.append(info)
  return result


def make_image(rng):
  """(gt id map, gt segments_info, pred id map, pred segments_info)."""
  n = int(rng.integers(24, 34))
  cells = _cells(rng, n)
  num_stuff = int(rng.integers(3, 8))
  stuff = rng.choice(STUFF, num_stuff, replace=False)
  # Stuff: whole cells of one category merged (one segment per category).
  kinds = rng.integers(0, num_stuff + 3, n)  # < num_stuff: stuff cell
  things = rng.choice(THINGS, n)
  gt_label = np.where(kinds < num_stuff, stuff[np.minimum(kinds, num_stuff
                                                          - 1)], things)
  # Segment key per cell: stuff cells of a category share one key.
  key = np.where(kinds < num_stuff, 1000 + kinds, np.arange(n))
  keys, cell_segment = np.unique(key, return_inverse=True)
  segment_category = np.zeros(len(keys), np.int64)
  segment_category[cell_segment] = gt_label
  crowd = np.zeros(len(keys), bool)
  for category in set(segment_category.tolist()) & set(THINGS):
    members = np.flatnonzero(segment_category == category)
    if rng.random() < 0.08:
      crowd[rng.choice(members)] = True
  gt_ids = _ids(rng, len(keys))
  void = rng.random(n) < 0.04
  gt_map = np.where(void[cells], 0, gt_ids[cell_segment[cells]])
  # Prediction: shifted, some categories swapped, some dropped.
  pred_category = segment_category.copy()
  for k in np.flatnonzero(rng.random(len(keys)) < 0.1):
    if segment_category[k] in THINGS:
      pred_category[k] = rng.choice(THINGS)
    else:  # still one segment per stuff category
      pred_category[k] = rng.choice(sorted(set(STUFF) -
                                           set(pred_category.tolist())))
  pred_ids = _ids(rng, len(keys))
  dropped = rng.random(len(keys)) < 0.05
  shifted = np.roll(cell_segment[cells], tuple(rng.integers(-6, 7, 2)),
                    (0, 1))
  pred_map = np.where(dropped[shifted], 0, pred_ids[shifted])
  return (gt_map, _segments(gt_map, gt_ids, segment_category, crowd),
          pred_map, _segments(pred_map, pred_ids, pred_category))


def _png(path, ids):
  rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1)
  Image.fromarray(rgb.astype(np.uint8)).save(path)


def write(out_dir, num_images, seed=0):
  """Writes gt.json, gt/, pred.json, pred/ under out_dir; returns paths
  (gt_json, gt_folder, pred_json, pred_folder)."""
  rng = np.random.default_rng(seed)
  folders = {name: os.path.join(out_dir, name) for name in ('gt', 'pred')}
  for folder in folders.values():
    os.makedirs(folder, exist_ok=True)
  annotations = {'gt': [], 'pred': []}
  images = []
  for k in range(num_images):
    gt_map, gt_info, pred_map, pred_info = make_image(rng)
    name = f'{k:012d}.png'
    images.append({'id': k, 'file_name': f'{k:012d}.jpg', 'height': HEIGHT,
                   'width': WIDTH})
    for kind, ids, info in (('gt', gt_map, gt_info),
                            ('pred', pred_map, pred_info)):
      _png(os.path.join(folders[kind], name), ids)
      annotations[kind].append({'image_id': k, 'file_name': name,
                                'segments_info': info})
  paths = {}
  for kind in ('gt', 'pred'):
    paths[kind] = os.path.join(out_dir, f'{kind}.json')
    with open(paths[kind], 'w', encoding='utf-8') as f:
      json.dump({'images': images, 'annotations': annotations[kind],
                 'categories': CATEGORIES}, f)
  return paths['gt'], folders['gt'], paths['pred'], folders['pred']


if __name__ == '__main__':
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('out_dir')
  parser.add_argument('num_images', type=int)
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args()
  print(write(args.out_dir, args.num_images, args.seed))
