"""Saves evaluation predictions as files (pdl-eval --save_predictions).

Always: ground truth and predictions in COCO panoptic format side by side
(evaluation.pair_writer), scorable with pq_compute or panopticapi. For the
Cityscapes dataset also cityscapesScripts' semantic and instance result
files (evaluation.cityscapes_writer), named after the input images.
"""

import os

from pdl_tf import keys
from pdl_tf import postprocess
from pdl_tf.data import cityscapes
from pdl_tf.data import pipeline
from pdl_tf.evaluation.cityscapes_writer import write_cityscapes_results
from pdl_tf.evaluation.pair_writer import PanopticPairWriter

CITYSCAPES_SUFFIX = '_leftImg8bit.png'


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

  def add(self, batch, result):
    """Adds every image of an eval batch, cropped to its original size."""
    sizes = batch[pipeline.ORIGINAL_SIZE].numpy()
    names = [n.decode() for n in batch[pipeline.FILE_NAME].numpy()]
    for i, ((height, width), name) in enumerate(zip(sizes, names)):
      crop = lambda t: t[i, :height, :width].numpy()  # pylint: disable=cell-var-from-loop
      self.pairs.add(name, crop(batch[keys.PANOPTIC]),
                     crop(result[keys.PANOPTIC]))
      if self.cityscapes_ids is not None:
        stem = name[:-len(CITYSCAPES_SUFFIX)] if name.endswith(
            CITYSCAPES_SUFFIX) else os.path.splitext(name)[0]
        write_cityscapes_results(
            stem, os.path.join(self.folder, 'cityscapes'),
            crop(result[keys.SEMANTIC]), crop(result[keys.INSTANCE]),
            result[postprocess.INSTANCE_CLASSES][i].numpy(),
            result[keys.INSTANCE_SCORES][i].numpy(), self.cityscapes_ids)

  def close(self):
    self.pairs.close()
