"""A plain numpy Panoptic-DeepLab merge: one image at a time, one center at a
time, written for obviousness rather than speed. The oracle of
tests/test_postprocess.py and the baseline of bench/bench_postprocess.py."""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _softmax(logits):
  z = logits.astype(np.float64)
  z = np.exp(z - z.max(-1, keepdims=True))
  return z / z.sum(-1, keepdims=True)


def np_centers(heat, center_threshold, nms_kernel, top_k):
  """Returns [(y, x, score)] of kept centers, best first."""
  heat = np.where(heat > center_threshold, heat, 0.0).astype(np.float32)
  r = nms_kernel // 2
  padded = np.pad(heat, r, constant_values=-np.inf)
  pooled = sliding_window_view(padded, (nms_kernel, nms_kernel)).max((-2, -1))
  ys, xs = np.nonzero((heat > center_threshold) & (heat == pooled))
  width = heat.shape[1]
  order = sorted(range(len(ys)),
                 key=lambda i: (-heat[ys[i], xs[i]], ys[i] * width + xs[i]))
  return [(int(ys[i]), int(xs[i]), float(heat[ys[i], xs[i]]))
          for i in order[:top_k]]


def np_merge_one(logits, heatmap, offsets, thing_class_ids, label_divisor,
                 stuff_area, center_threshold, nms_kernel, top_k):
  height, width, num_classes = logits.shape
  semantic = np.argmax(logits, axis=-1)  # first maximum = smallest class id
  centers = np_centers(heatmap[..., 0], center_threshold, nms_kernel, top_k)
  things = np.isin(semantic, thing_class_ids)
  vote_y = np.arange(height, dtype=np.float32)[:, None] + offsets[..., 0]
  vote_x = np.arange(width, dtype=np.float32)[None, :] + offsets[..., 1]
  best = np.full((height, width), np.inf, np.float32)
  nearest = np.full((height, width), -1)
  for k, (cy, cx, _) in enumerate(centers):
    distance = (vote_y - np.float32(cy)) ** 2 + (vote_x - np.float32(cx)) ** 2
    closer = distance < best  # strict: the lower center index wins ties
    best = np.where(closer, distance, best)
    nearest = np.where(closer, k, nearest)
  instance = np.where(things & (nearest >= 0), nearest + 1, 0)
  panoptic = np.full((height, width), -1)
  scores = np.zeros(top_k)
  classes = np.full(top_k, -1)
  probabilities = _softmax(logits)
  count_per_class = {}
  for k, (_, _, center_score) in enumerate(centers):
    mask = instance == k + 1
    if not mask.any():
      continue
    votes = np.bincount(semantic[mask], minlength=num_classes)
    cls = int(np.argmax(votes))  # first maximum = smallest class id
    count_per_class[cls] = count_per_class.get(cls, 0) + 1
    panoptic[mask] = cls * label_divisor + count_per_class[cls]
    classes[k] = cls
    scores[k] = center_score * probabilities[..., cls][mask].mean()
  for cls in range(num_classes):
    mask = semantic == cls
    if cls not in thing_class_ids and mask.sum() >= stuff_area:
      panoptic[mask] = cls * label_divisor
  return dict(panoptic=panoptic, semantic=semantic, instance=instance,
              instance_scores=scores, instance_classes=classes,
              centers=centers)


def np_merge(semantic_logits, center_heatmap, center_offsets, *,
             thing_class_ids, label_divisor=1000, stuff_area=2048,
             center_threshold=0.1, nms_kernel=7, top_k=200):
  """Batched wrapper with panoptic_merge's signature; returns stacked maps."""
  results = [np_merge_one(l, h, o, list(thing_class_ids), label_divisor,
                          stuff_area, center_threshold, nms_kernel, top_k)
             for l, h, o in zip(np.asarray(semantic_logits),
                                np.asarray(center_heatmap, np.float32),
                                np.asarray(center_offsets, np.float32))]
  return {key: (np.stack([r[key] for r in results]) if key != 'centers'
                else [r[key] for r in results]) for key in results[0]}


def random_scene(rng, height, width, num_classes, thing_class_ids,
                 num_instances):
  """Network-like outputs for a scene of stuff bands and thing disks."""
  semantic = np.zeros((height, width), np.int64)
  stuff = [c for c in range(num_classes) if c not in thing_class_ids]
  bands = np.sort(rng.integers(0, height, len(stuff) - 1))
  for i, y in enumerate(bands):
    semantic[y:] = stuff[i + 1]
  heatmap = np.zeros((height, width), np.float32)
  offsets = rng.normal(0, 2, (height, width, 2)).astype(np.float32)
  ys, xs = np.mgrid[:height, :width]
  for _ in range(num_instances):
    cy, cx = rng.integers(0, height), rng.integers(0, width)
    radius = rng.integers(2, max(3, min(height, width) // 6))
    disk = (ys - cy) ** 2 + (xs - cx) ** 2 <= radius ** 2
    semantic[disk] = rng.choice(thing_class_ids)
    gaussian = np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * 4.0 ** 2))
    heatmap = np.maximum(heatmap, rng.uniform(0.3, 1.0) * gaussian)
    offsets[disk, 0] = cy - ys[disk] + rng.normal(0, 1.5, disk.sum())
    offsets[disk, 1] = cx - xs[disk] + rng.normal(0, 1.5, disk.sum())
  logits = 4.0 * np.eye(num_classes)[semantic] + rng.normal(
      0, 1.0, (height, width, num_classes))
  heatmap += rng.uniform(0, 0.05, heatmap.shape)
  return (logits.astype(np.float32), heatmap[..., None].astype(np.float32),
          offsets)
