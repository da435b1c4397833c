"""pdl-beam-predict's pipeline: panoptic predictions for a collection of
image files on Apache Beam (DirectRunner here; Dataflow, Flink or Spark
with their pipeline options).

    (path, stem) -> read + decode (image_decode: EXIF upright, size limit)
                 -> RunInference(PanopticModelHandler: one SavedModel per
                    worker, ``serving_default`` on a batch of encoded
                    images, each result cropped by ``image_sizes``)
                 -> write_prediction (the files pdl-predict writes)
                 -> INDEX (JSON lines, one per image predicted or already
                    there) and DEAD_LETTER (JSON lines, one per bad file:
                    its path and the reason, as pdl-predict names it).

A batch that fails in the model is sent again one image at a time
(``batch_predict.predict_items``), so only the bad files go to the dead
letter, never the good images that shared their batch. The pipeline never
fails on one bad image.

apache_beam is imported only when a pipeline is built, so pdl_tf imports
without the ``beam`` extra (``pip install "pdl_tf[beam]"``).
"""

import json

from pdl_tf.beam_import import import_beam

INDEX = 'index.jsonl'
DEAD_LETTER = 'dead_letter.jsonl'
BAD = 'bad'


class LoadedModel:
  """What a worker holds: the SavedModel backend (``predict_batch``), also
  as the object that ``large_model`` shares between the processes of a
  machine (Beam calls its methods through a proxy)."""

  def __init__(self, path):
    # pylint: disable-next=g-import-not-at-top
    from pdl_tf.serving import backends
    self.backend = backends.SavedModelBackend(path)

  def predict_batch(self, image_bytes_list):
    return self.backend.predict_batch(image_bytes_list)


def model_handler(saved_model, *, min_batch_size=1, max_batch_size=4,
                  large_model=False):
  """A RunInference ModelHandler for a pdl_tf SavedModel.

  Its examples are ``batch_predict.Item`` (read and decoded); its
  inference for each is the same Item with ``result`` or ``error`` set.

  Args:
    saved_model: the SavedModel version folder (local or gs://).
    min_batch_size, max_batch_size: BatchElements bounds (images).
    large_model: one model per machine, shared by its worker processes.
  """
  beam = import_beam()
  # pylint: disable-next=g-import-not-at-top
  from apache_beam.ml.inference import base

  class PanopticModelHandler(base.ModelHandler):
    """tf.saved_model.load once per worker; serving_default per batch."""

    def load_model(self):
      return LoadedModel(saved_model)

    def run_inference(self, batch, model, inference_args=None):
      # pylint: disable-next=g-import-not-at-top
      from pdl_tf.serving import batch_predict
      items = batch_predict.predict_items(model, list(batch))
      return [base.PredictionResult(item, item) for item in items]

    def get_num_bytes(self, batch):
      return sum(len(item.contents) for item in batch)

    def batch_elements_kwargs(self):
      return {'min_batch_size': min_batch_size,
              'max_batch_size': max_batch_size}

    def share_model_across_processes(self):
      return large_model

    def get_metrics_namespace(self):
      return 'pdl_tf'

  del beam
  return PanopticModelHandler()


def _decode(element, max_pixels):
  """(path, stem) -> the decoded Item, or a BAD-tagged dead-letter line."""
  beam = import_beam()
  # pylint: disable-next=g-import-not-at-top
  from pdl_tf.serving import batch_predict
  path, stem = element
  item = batch_predict.load(path, max_pixels)
  item.stem = stem
  if item.error is not None:
    yield beam.pvalue.TaggedOutput(BAD, _dead_letter(item))
  else:
    yield item


def _dead_letter(item):
  # pylint: disable-next=g-import-not-at-top
  from pdl_tf.serving import batch_predict
  return json.dumps({'image': item.path,
                     'reason': batch_predict.failure_line(item.path,
                                                          item.error)})


def _write(prediction, output, labels):
  """Writes one predicted image's files; yields its index line, or a
  BAD-tagged dead-letter line if the model refused the image."""
  beam = import_beam()
  # pylint: disable-next=g-import-not-at-top
  from pdl_tf.serving import outputs
  item = prediction.inference
  if item.error is not None:
    yield beam.pvalue.TaggedOutput(BAD, _dead_letter(item))
    return
  divisor, names, category_ids, colors = labels
  outputs.check_label_divisor(item.result, divisor)  # the export's own
  record = outputs.write_prediction(item.image, item.result, item.stem,
                                    output, label_divisor=divisor,
                                    class_names=names,
                                    category_ids=category_ids,
                                    class_colors=colors)
  yield _index_line(item.path, item.stem, record)


def _index_line(path, stem, record):
  return json.dumps({'image': path, 'stem': stem,
                     'panoptic': record['file_name'],
                     'height': record['height'], 'width': record['width'],
                     'segments': len(record['segments_info'])})


def _already_done(element, output):
  """The index line of an image predicted by an earlier run (its JSON)."""
  # pylint: disable-next=g-import-not-at-top
  from pdl_tf.serving import batch_predict
  path, stem = element
  sep = '' if output.endswith('/') else '/'
  record = json.loads(batch_predict.read_file(f'{output}{sep}{stem}.json'))
  yield _index_line(path, stem, record)


def build_pipeline(pipeline, todo, done, *, saved_model, output,
                   labels, max_pixels, handler):
  """Adds the steps to ``pipeline``.

  Args:
    pipeline: a beam.Pipeline.
    todo: [(path, stem)] to predict; done: [(path, stem)] whose outputs
      are complete already (only indexed).
    saved_model: SavedModel version folder; output: output folder.
    labels: (label_divisor, class names or None, category ids or None,
      class colours or None), as pdl-predict takes them from the export.
    max_pixels: decode limit (the export's).
    handler: the ModelHandler (``model_handler``).
  """
  beam = import_beam()
  # pylint: disable-next=g-import-not-at-top
  from apache_beam.ml.inference import base
  del saved_model
  decoded = (pipeline | 'Images' >> beam.Create(todo)
             | 'ReadDecode' >> beam.FlatMap(
                 _decode, max_pixels).with_outputs(BAD, main='good'))
  written = (decoded.good | 'RunInference' >> base.RunInference(handler)
             | 'Write' >> beam.FlatMap(_write, output, labels).with_outputs(
                 BAD, main='index'))
  earlier = (pipeline | 'Done' >> beam.Create(done)
             | 'IndexDone' >> beam.FlatMap(_already_done, output))
  sep = '' if output.endswith('/') else '/'
  for name, lines, file_name in (
      ('Index', (written.index, earlier), INDEX),
      ('DeadLetter', (decoded[BAD], written[BAD]), DEAD_LETTER)):
    (lines | f'{name}Flatten' >> beam.Flatten()
     | f'{name}Write' >> beam.io.WriteToText(
         f'{output}{sep}{file_name}', shard_name_template=''))
