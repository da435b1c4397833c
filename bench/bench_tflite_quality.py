"""PQ of exported models on the eval split of an experiment: the SavedModel
and the TFLite files against the ground truth, and each TFLite file against
the SavedModel (as if the SavedModel's map were the ground truth).

Usage (after pdl-train and pdl-export --format both --quantization float32
--quantization int8):
  python bench/bench_tflite_quality.py --experiment demo --export exports/demo
"""

import argparse
import io
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..'))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--experiment', default='demo')
  parser.add_argument('--export', required=True)
  args = parser.parse_args()
  # pylint: disable=g-import-not-at-top
  import numpy as np
  from PIL import Image
  from pdl_tf import config_io
  from pdl_tf import keys
  from pdl_tf.data import pipeline
  from pdl_tf.evaluation import StreamingPanopticQuality
  from pdl_tf.serving import backends
  # pylint: enable=g-import-not-at-top
  config = config_io.load_config(args.experiment, [], [])
  data = config.data
  void = data.ignore_label * data.label_divisor
  models = {'SavedModel': backends.SavedModelBackend(args.export)}
  for name in ('float32', 'float16', 'int8'):
    path = os.path.join(args.export, f'panoptic_deeplab_{name}.tflite')
    if os.path.isfile(path):
      models[f'TFLite {name}'] = backends.TFLiteBackend(path)

  def new_pq():
    return StreamingPanopticQuality(config.model.num_classes,
                                    list(data.thing_class_ids),
                                    data.label_divisor, data.ignore_label)

  vs_truth = {name: new_pq() for name in models}
  vs_saved = {name: new_pq() for name in models if name != 'SavedModel'}
  count = 0
  for batch in pipeline.build_dataset(config, training=False):
    for image, truth, (height, width) in zip(
        batch[pipeline.IMAGE].numpy(), batch[keys.PANOPTIC].numpy(),
        batch[pipeline.ORIGINAL_SIZE].numpy()):
      buffer = io.BytesIO()
      Image.fromarray(image[:height, :width].astype(np.uint8)).save(
          buffer, 'PNG')
      results = {name: model.predict(buffer.getvalue())[keys.PANOPTIC]
                 for name, model in models.items()}
      for name, panoptic in results.items():
        vs_truth[name].update(truth[:height, :width], panoptic)
      reference = np.where(results['SavedModel'] < 0, void,
                           results['SavedModel'])
      for name, metric in vs_saved.items():
        metric.update(reference, results[name])
      count += 1
  print(f'{args.experiment}: {count} eval images')
  print('| model | PQ vs ground truth | PQ vs SavedModel |')
  print('| --- | --- | --- |')
  for name in models:
    other = (f"{100 * vs_saved[name].result()['All']['pq']:.1f}"
             if name in vs_saved else '-')
    print(f"| {name} | {100 * vs_truth[name].result()['All']['pq']:.1f} | "
          f'{other} |')


if __name__ == '__main__':
  main()
