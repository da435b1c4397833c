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

import os

from pdl_tf import keys
from pdl_tf import postprocess
from pdl_tf.data import cityscapes
from pdl_tf.data import pipeline
from pdl_tf.evaluation import cityscapes_ap
from pdl_tf.evaluation.cityscapes_writer import write_cityscapes_results
from pdl_tf.evaluation.pair_writer import PanopticPairWriter

CITYSCAPES_SUFFIX = '_leftImg8bit.png'
GT_PANOPTIC = 'gt_panoptic'
GT_SEMANTIC = 'gt_semantic'


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


def update_metrics(image, pq, miou, mask_ap):
  """Adds one image (a dict from eval_images) to the streaming PQ, mIoU and
  mask AP."""
  gt_panoptic = image[GT_PANOPTIC]
  pq.update(gt_panoptic, image[keys.PANOPTIC])
  miou.update(image[GT_SEMANTIC], image[keys.SEMANTIC])
  mask_ap.update(gt_panoptic, image[keys.INSTANCE],
                 image[postprocess.INSTANCE_CLASSES],
                 image[keys.INSTANCE_SCORES])


def eval_images(batch, result):
  """Yields one dict of numpy arrays per image of an eval batch.

  Keys: ``pipeline.FILE_NAME`` (str), ``pipeline.IMAGE`` float [h, w, 3],
  GT_PANOPTIC and GT_SEMANTIC (ground truth), ``keys.PANOPTIC``,
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
        keys.PANOPTIC: crop(result[keys.PANOPTIC]),
        keys.SEMANTIC: crop(result[keys.SEMANTIC]),
        keys.INSTANCE: crop(result[keys.INSTANCE]),
        postprocess.INSTANCE_CLASSES:
            result[postprocess.INSTANCE_CLASSES][i].numpy(),
        keys.INSTANCE_SCORES: result[keys.INSTANCE_SCORES][i].numpy(),
    }


class PredictionSaver:
  """Writes each evaluated image's prediction under ``folder``."""

  def __init__(self, config, folder):
    data = config.data
    self.folder = folder
    self.pairs = PanopticPairWriter(
        os.path.join(folder, 'coco_panoptic'), config.model.num_classes,
        data.thing_class_ids, data.label_divisor, data.ignore_label)
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
    self.pairs.add(name, image[GT_PANOPTIC], image[keys.PANOPTIC])
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
