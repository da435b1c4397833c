"""One evaluation pass of a network over the eval split.

PQ / SQ / RQ (All, Things, Stuff), mIoU and mask AP; the per-class table;
``metrics.json`` and TensorBoard scalars and overlays; with
``predictions_dir``, the prediction files (eval_outputs.PredictionSaver).
The trainer calls it (pdl-train's final evaluation, pdl-eval,
continuous evaluation).
"""

import json
import os

import tensorflow as tf
import tqdm

from pdl_tf import keys
from pdl_tf import postprocess
from pdl_tf import viz
from pdl_tf.data import pipeline
from pdl_tf.evaluation import StreamingMeanIoU
from pdl_tf.evaluation import StreamingPanopticQuality
from pdl_tf.evaluation.mask_ap import StreamingMaskAP
from pdl_tf.model import factory
from pdl_tf.training import eval_outputs

METRICS_FILE = 'metrics.json'


def evaluate(model, config, *, step, write_dir, num_images=3,
             predictions_dir=None, crowd_rule='union', on_data_ready=None):
  """Evaluates ``model`` on ``config``'s eval split; returns the metrics.

  Args:
    model: the PanopticDeepLab network (its weights as they are).
    config: ExperimentConfig (data.eval, the merge's settings, classes).
    step: the training step of the weights (in the metrics and summaries).
    write_dir: where ``metrics.json`` and the ``eval`` summaries go.
    num_images: overlays of the first predictions written to TensorBoard.
    predictions_dir: also write the prediction files there (None: none).
    crowd_rule: PQ's rule for several crowd segments of a class
      (panoptic_quality; the eval pipeline's segment keys keep the ground
      truth's segments apart).
    on_data_ready: called once the eval dataset is built.

  Returns:
    dict: 'step', 'miou', 'crowd_rule', 'All/pq' ... 'Stuff/rq',
    'mask_ap' ..., 'per_class' (and Cityscapes' 'cityscapes_ap', 'ap50'
    with predictions_dir on Cityscapes), as written to ``metrics.json``.
  """
  things = list(config.data.thing_class_ids)
  merge = postprocess.merge_fn(**factory.merge_arguments(config))

  @tf.function
  def predict(images, image_sizes):
    outputs = model(images, training=False)
    return merge(outputs[keys.SEMANTIC_LOGITS],
                 outputs[keys.CENTER_HEATMAP], outputs[keys.CENTER_OFFSETS],
                 image_sizes)

  pq = StreamingPanopticQuality(config.model.num_classes, things,
                                config.data.label_divisor,
                                config.data.ignore_label, crowd_rule)
  miou = StreamingMeanIoU(config.model.num_classes, config.data.ignore_label)
  mask_ap = StreamingMaskAP(things, config.data.label_divisor)
  dataset = pipeline.build_dataset(config, training=False)
  if on_data_ready:
    on_data_ready()
  saver = (eval_outputs.PredictionSaver(config, predictions_dir)
           if predictions_dir else None)
  pictures = []
  total = eval_outputs.eval_batches(dataset, config.data.eval)
  for batch in tqdm.tqdm(dataset, desc='eval', unit='batch', total=total,
                         dynamic_ncols=True):
    # The padding is excluded from the merge (stuff areas, centers).
    result = predict(batch[pipeline.IMAGE], batch[pipeline.ORIGINAL_SIZE])
    for image in eval_outputs.eval_images(batch, result):
      eval_outputs.update_metrics(image, pq, miou, mask_ap)
      if len(pictures) < num_images:
        pictures.append(viz.panoptic_overlay(
            image[pipeline.IMAGE], image[keys.PANOPTIC],
            config.data.label_divisor, config.data.class_colors))
      if saver:
        saver.add(image)
  metrics = _metrics(config, step, crowd_rule, pq, miou, mask_ap,
                     saver.close() if saver else None)
  _write_summaries(write_dir, step, metrics, pictures)
  os.makedirs(write_dir, exist_ok=True)
  with open(os.path.join(write_dir, METRICS_FILE), 'w',
            encoding='utf-8') as f:
    json.dump(metrics, f, indent=2)
  return metrics


def _metrics(config, step, crowd_rule, pq, miou, mask_ap, instance_ap):
  """The metrics dict of an evaluation from its streaming metrics (and
  Cityscapes' instance AP of the saved files, or None)."""
  summary = pq.result()
  iou = miou.result()
  metrics = {'step': step, 'miou': iou['miou'], 'crowd_rule': crowd_rule}
  if instance_ap:  # Cityscapes: its own AP convention, on the saved files
    metrics['cityscapes_ap'] = instance_ap['ap']
    metrics['cityscapes_ap50'] = instance_ap['ap50']
  for split in ('All', 'Things', 'Stuff'):
    for name in ('pq', 'sq', 'rq'):
      metrics[f'{split}/{name}'] = summary[split][name]
  for name, value in mask_ap.result().items():
    metrics[f'mask_{name}'] = value
  metrics['per_class'] = eval_outputs.per_class_rows(
      config, summary, iou['per_class_iou'])
  return metrics


def _write_summaries(write_dir, step, metrics, pictures):
  """Writes the scalars and overlays of an evaluation to TensorBoard
  (``write_dir/eval``)."""
  writer = tf.summary.create_file_writer(os.path.join(write_dir, 'eval'))
  with writer.as_default(step=step):
    for name, value in metrics.items():
      if name not in ('step', 'per_class', 'crowd_rule') and (
          value is not None):
        tf.summary.scalar(f'eval/{name}', value)
    for index, picture in enumerate(pictures):
      tf.summary.image(f'panoptic/{index}', picture[None])
  writer.flush()
