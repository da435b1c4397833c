"""Per-image evaluation outputs and their files (pdl-eval --save_predictions).

``eval_images`` turns an eval batch and its merge result into one dict per
image, cropped to the image's size before padding; the metrics, the
TensorBoard overlays and ``PredictionSaver`` all read those dicts.

PredictionSaver always writes ground truth and predictions in COCO panoptic
format side by side (evaluation.pair_writer), scorable with pq_compute or
panopticapi; for the Cityscapes dataset also cityscapesScripts' semantic
and instance result files (evaluation.cityscapes_writer), named after the
input images, with the ground truth as gtFine instanceIds PNGs, on which
``close`` runs the Cityscapes instance AP (evaluation.cityscapes_ap).
"""

import math
import os

from pdl_tf import keys
from pdl_tf import postprocess
from pdl_tf.data.readers import cityscapes
from pdl_tf.data import pipeline
from pdl_tf.data import sources
from pdl_tf.evaluation import cityscapes_ap
from pdl_tf.evaluation.cityscapes_writer import write_cityscapes_results
from pdl_tf.evaluation.pair_writer import PanopticPairWriter

CITYSCAPES_SUFFIX = '_leftImg8bit.png'
GT_PANOPTIC = 'gt_panoptic'
GT_SEMANTIC = 'gt_semantic'
# The subfolder of pdl-eval --save_predictions with the COCO panoptic pairs.
COCO_PANOPTIC_FOLDER = 'coco_panoptic'


def eval_batches(dataset, split):
  """The number of batches of an eval ``dataset`` for the progress bar:
  its cardinality when tf.data knows it, else from ``split.num_examples``
  (an upper bound), else None."""
  known = int(dataset.cardinality())
  if known >= 0:
    return known
  if split.num_examples > 0:
    return -(-split.num_examples // split.batch_size)
  return None


def per_class_rows(config, pq_summary, per_class_iou):
  """The per-class results, named with the dataset's own classes.

  Args:
    config: ExperimentConfig (its classes resolved from the data).
    pq_summary: ``StreamingPanopticQuality.result()``.
    per_class_iou: float [num_classes], NaN where a class is in neither the
      ground truth nor the predictions (``StreamingMeanIoU``).

  Returns:
    list of {class_index, category_id, name, isthing, pq, sq, rq, iou},
    fractions; pq / sq / rq / iou are None for a class seen nowhere.
  """
  data = config.data
  things = set(data.thing_class_ids)
  rows = []
  for index in range(config.model.num_classes):
    seen = not math.isnan(float(per_class_iou[index]))
    scores = pq_summary['per_class'].get(index, {})
    rows.append({
        'class_index': index,
        'category_id': (int(data.category_ids[index]) if data.category_ids
                        else index),
        'name': data.class_names[index] if data.class_names else str(index),
        'isthing': index in things,
        **{key: (float(scores[key]) if seen and key in scores else None)
           for key in ('pq', 'sq', 'rq')},
        'iou': float(per_class_iou[index]) if seen else None})
  return rows


def update_metrics(image, pq, miou, mask_ap):
  """Adds one image (a dict from eval_images) to the streaming PQ, mIoU and
  mask AP."""
  gt_panoptic = image[GT_PANOPTIC]
  pq.update(image[pipeline.SEGMENT_KEYS], image[keys.PANOPTIC],
            segment_keys=True)
  miou.update(image[GT_SEMANTIC], image[keys.SEMANTIC])
  mask_ap.update(gt_panoptic, image[keys.INSTANCE],
                 image[postprocess.INSTANCE_CLASSES],
                 image[keys.INSTANCE_SCORES])


def eval_images(batch, result):
  """Yields one dict of numpy arrays per image of an eval batch.

  Keys: ``pipeline.FILE_NAME`` (str), ``pipeline.IMAGE`` float [h, w, 3],
  GT_PANOPTIC, GT_SEMANTIC and ``pipeline.SEGMENT_KEYS`` (ground truth),
  ``keys.PANOPTIC``,
  ``keys.SEMANTIC``, ``keys.INSTANCE`` (predictions), all [h, w] cropped to
  the original size, and ``postprocess.INSTANCE_CLASSES`` [K] and
  ``keys.INSTANCE_SCORES`` [K].
  """
  sizes = batch[pipeline.ORIGINAL_SIZE].numpy()
  names = batch[pipeline.FILE_NAME].numpy()
  for i, ((height, width), name) in enumerate(zip(sizes, names)):
    crop = lambda t: t[i, :height, :width].numpy()  # pylint: disable=cell-var-from-loop
    yield {
        pipeline.FILE_NAME: name.decode(),
        pipeline.IMAGE: crop(batch[pipeline.IMAGE]),
        GT_PANOPTIC: crop(batch[keys.PANOPTIC]),
        GT_SEMANTIC: crop(batch[keys.SEMANTIC]),
        pipeline.SEGMENT_KEYS: crop(batch[pipeline.SEGMENT_KEYS]),
        keys.PANOPTIC: crop(result[keys.PANOPTIC]),
        keys.SEMANTIC: crop(result[keys.SEMANTIC]),
        keys.INSTANCE: crop(result[keys.INSTANCE]),
        postprocess.INSTANCE_CLASSES:
            result[postprocess.INSTANCE_CLASSES][i].numpy(),
        keys.INSTANCE_SCORES: result[keys.INSTANCE_SCORES][i].numpy(),
    }


def dataset_image_ids(config):
  """{file name: image id} of the eval split, for datasets listed from
  files whose annotations number their images (COCO panoptic, Mapillary
  Vistas, ...); {} for the others."""
  data, split = config.data, config.data.eval
  if data.dataset not in sources.LISTED or data.dataset == 'synthetic':
    return {}
  _, listed = sources.list_split(
      data.dataset, split.path, split.split, label_divisor=data.label_divisor,
      ignore_label=data.ignore_label, num_examples=split.num_examples)
  return {source.name: source.image_id for source in listed
          if source.image_id is not None}


class PredictionSaver:
  """Writes each evaluated image's prediction under ``folder``."""

  def __init__(self, config, folder, image_ids=None):
    """``image_ids``: {file name: the dataset's image id} (pdl-eval's
    ground truth and predictions keep them; default: the eval split's own,
    ``dataset_image_ids``); images not in it are numbered from 1 in
    evaluation order."""
    data = config.data
    if image_ids is None:
      image_ids = dataset_image_ids(config)
    self.folder = folder
    self.pairs = PanopticPairWriter(
        os.path.join(folder, COCO_PANOPTIC_FOLDER), config.model.num_classes,
        data.thing_class_ids, data.label_divisor, data.ignore_label,
        class_names=data.class_names, category_ids=data.category_ids,
        image_ids=image_ids)
    self.cityscapes_ids = (
        cityscapes.metadata().category_ids
        if data.dataset == 'cityscapes' else None)
    self.label_divisor, self.ignore_label = (data.label_divisor,
                                             data.ignore_label)
    if self.cityscapes_ids is not None:
      cityscapes_ap.check_installed()  # fail before evaluating, not after

  def add(self, image):
    """Adds one image: a dict from ``eval_images``."""
    name = image[pipeline.FILE_NAME]
    self.pairs.add(name, image[pipeline.SEGMENT_KEYS], image[keys.PANOPTIC])
    if self.cityscapes_ids is not None:
      stem = name[:-len(CITYSCAPES_SUFFIX)] if name.endswith(
          CITYSCAPES_SUFFIX) else os.path.splitext(name)[0]
      write_cityscapes_results(
          stem, os.path.join(self.folder, 'cityscapes'),
          image[keys.SEMANTIC], image[keys.INSTANCE],
          image[postprocess.INSTANCE_CLASSES], image[keys.INSTANCE_SCORES],
          self.cityscapes_ids)
      cityscapes_ap.write_gt_instance_ids(
          stem, os.path.join(self.folder, 'cityscapes', 'gt'),
          image[GT_PANOPTIC], self.cityscapes_ids, self.label_divisor,
          self.ignore_label)

  def close(self):
    """Finishes the files; for Cityscapes, returns the Cityscapes-convention
    instance AP of what was written ({'ap', 'ap50', 'per_class'}), else
    None."""
    self.pairs.close()
    if self.cityscapes_ids is None:
      return None
    folder = os.path.join(self.folder, 'cityscapes')
    return cityscapes_ap.cityscapes_instance_ap(
        os.path.join(folder, 'gt'), os.path.join(folder, 'instance'))
