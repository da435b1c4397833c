"""Segment keys: pdl-eval's PQ equals pq_compute on the ground truth's own
files when an image lists several stuff or crowd segments of one class.

The label encoding has one value for all stuff of a class (and all crowd of
a class); the COCO panoptic reader's segment key map keeps them apart, the
eval pipeline carries it, and the streaming PQ and the pair writer read it.
"""

import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from pdl_tf import config_io
from pdl_tf import keys
from pdl_tf import postprocess
from pdl_tf.labels import segment_keys
from pdl_tf.data.readers import coco_panoptic
from pdl_tf.data import pipeline
from pdl_tf.data import sources
from pdl_tf.data.readers import tfrecords
from pdl_tf.evaluation import pq_compute
from pdl_tf.evaluation import StreamingPanopticQuality
from pdl_tf.evaluation.pair_writer import PanopticPairWriter
from pdl_tf.evaluation.writers import write_coco_panoptic
from pdl_tf.labels.panoptic_format import id_map_to_rgb
from pdl_tf.training import eval_outputs

# Class index 0 = person (thing, category 1), 1 = road (stuff, category 7).
CATEGORIES = [{'id': 1, 'name': 'person', 'isthing': 1},
              {'id': 7, 'name': 'road', 'isthing': 0}]
# Image 0, 4 x 8 (columns): road 5 | road 6 | crowd 10 | crowd 11 | person
# 12 | void. Image 1: one road segment (nothing repeated).
GT0 = np.array([[5, 5, 6, 6, 10, 10, 11, 12]] * 4)
GT1 = np.array([[3, 3, 3, 3, 3, 3, 3, 3]] * 4)
# Predictions in the label encoding: road (1000) over columns 0-2 (IoU 16/24
# with road 5, 0.75 with the union of 5 and 6); a person (1) over 5-7.
PRED0 = np.array([[1000, 1000, 1000, -1, -1, 1, 1, 1]] * 4)
PRED1 = np.full((4, 8), 1000)


def gt_segments(crowd_order):
  area = lambda ids, i: int((ids == i).sum())
  first = [{'id': 5, 'category_id': 7, 'iscrowd': 0, 'area': 8},
           {'id': 6, 'category_id': 7, 'iscrowd': 0, 'area': 8}]
  first += [{'id': i, 'category_id': 1, 'iscrowd': 1, 'area': area(GT0, i)}
            for i in crowd_order]
  first.append({'id': 12, 'category_id': 1, 'iscrowd': 0, 'area': 4})
  return [first, [{'id': 3, 'category_id': 7, 'iscrowd': 0, 'area': 32}]]


def write_dataset(root, crowd_order):
  """A COCO panoptic split 'val' under ``root`` (COCO's layout) and the
  predictions as COCO files; returns (gt json, gt pngs, pred json, pred
  pngs)."""
  (root / 'annotations' / 'panoptic_val').mkdir(parents=True)
  (root / 'val').mkdir()
  annotations, predictions = [], []
  for k, (ids, segments, pred) in enumerate(zip(
      (GT0, GT1), gt_segments(crowd_order), (PRED0, PRED1))):
    Image.fromarray(np.full(ids.shape + (3,), 90, np.uint8)).save(
        root / 'val' / f'{k}.png')
    Image.fromarray(id_map_to_rgb(ids)).save(
        root / 'annotations' / 'panoptic_val' / f'{k}.png')
    annotations.append({'image_id': k, 'file_name': f'{k}.png',
                        'segments_info': segments})
    predictions.append(write_coco_panoptic(pred, k, f'{k}.png',
                                           str(root / 'pred'), [1, 7]))
  images = [{'id': k, 'file_name': f'{k}.png'} for k in range(2)]
  gt_json = root / 'annotations' / 'panoptic_val.json'
  gt_json.write_text(json.dumps({'images': images, 'annotations': annotations,
                                 'categories': CATEGORIES}))
  pred_json = root / 'pred.json'
  pred_json.write_text(json.dumps({'annotations': predictions}))
  return (str(gt_json), str(root / 'annotations' / 'panoptic_val'),
          str(pred_json), str(root / 'pred'))


def test_keys_number_repeats_in_listing_order():
  # range = (255 + 1) * 1000 = 256000
  assert segment_keys.keys_of([1000, 7, 1000, 1000, 7], 1000, 255).tolist(
  ) == [1000, 7, 257000, 513000, 256007]
  keys_map = np.array([257000, 1000, 7, 255000])
  assert segment_keys.labels_of(keys_map, 1000, 255).tolist() == [
      1000, 1000, 7, 255000]
  keys_map = segment_keys.keys_of([1000] * 9000, 1000, 255)
  with pytest.raises(ValueError, match='x.png: 9000 segments share one '
                     'label value: .* do not fit in int32'):
    segment_keys.as_int32(keys_map, 1000, 255, 'x.png')


def test_reader_keeps_repeated_stuff_and_crowd_segments_apart():
  meta = coco_panoptic.metadata_from_categories(CATEGORIES)
  label, keys_map = coco_panoptic.label_and_keys(GT0, gt_segments((10, 11))[0],
                                                 meta, 'a.png')
  # road = 1000, person crowd = 0, person 12 = instance 1.
  assert label[0].tolist() == [1000, 1000, 1000, 1000, 0, 0, 0, 1]
  assert keys_map[0].tolist() == [1000, 1000, 257000, 257000, 0, 0, 256000,
                                  1]
  assert (segment_keys.labels_of(keys_map, 1000, 255) == label).all()
  _, keys_map = coco_panoptic.label_and_keys(GT1, gt_segments((10, 11))[1],
                                             meta, 'b.png')
  assert keys_map is None  # nothing repeated: the label is its own key map


def eval_dataset(root, dataset='coco_panoptic'):
  config = config_io.load_config('demo', params_override=(
      f'data.dataset={dataset},data.eval.path={root},'
      'data.eval.split=val,data.eval.batch_size=2'))
  return config, pipeline.build_dataset(config, training=False)


def pdl_eval_pq(root, crowd_rule, save_to=None, dataset='coco_panoptic'):
  """PQ as pdl-eval computes it: the eval pipeline's batch, the merge
  result's layout, eval_outputs.eval_images and update_metrics."""
  config, dataset = eval_dataset(root, dataset)
  batch = next(iter(dataset))
  size = batch[pipeline.IMAGE].shape[1:3]
  pad = lambda m: np.pad(m, [(0, size[0] - 4), (0, size[1] - 8)],
                         constant_values=-1)
  result = {keys.PANOPTIC: tf.constant(np.stack([pad(PRED0), pad(PRED1)])),
            keys.SEMANTIC: tf.zeros([2, *size], tf.int32),
            keys.INSTANCE: tf.zeros([2, *size], tf.int32),
            postprocess.INSTANCE_CLASSES: tf.zeros([2, 1], tf.int32),
            keys.INSTANCE_SCORES: tf.zeros([2, 1])}
  pq = StreamingPanopticQuality(2, [0], crowd_rule=crowd_rule)
  writer = PanopticPairWriter(str(save_to), 2, [0], category_ids=[1, 7]
                              ) if save_to else None
  for image in eval_outputs.eval_images(batch, result):
    eval_outputs.update_metrics(image, pq, _NoMetric(), _NoMetric())
    if writer:
      writer.add(image[pipeline.FILE_NAME], image[pipeline.SEGMENT_KEYS],
                 image[keys.PANOPTIC])
  if writer:
    writer.close()
  return pq.result()


def by_category(result):
  """A streaming result (classes 0, 1) keyed as pq_compute's (categories
  1, 7)."""
  result = dict(result)
  result['per_class'] = {[1, 7][c]: v for c, v in result['per_class'].items()}
  return result


class _NoMetric:
  def update(self, *args):
    del args


@pytest.mark.parametrize('crowd_rule', ['union', 'panopticapi'])
@pytest.mark.parametrize('crowd_order', [(10, 11), (11, 10)])
def test_pdl_eval_pq_equals_pq_compute_on_the_files(tmp_path, crowd_rule,
                                                    crowd_order):
  files = write_dataset(tmp_path, crowd_order)
  expected = pq_compute(*files[::2], *files[1::2], crowd_rule=crowd_rule,
                        num_workers=1)
  assert by_category(pdl_eval_pq(tmp_path, crowd_rule)) == expected
  # Road: image 0 one TP (IoU 16/24) and one FN, image 1 one TP (IoU 1):
  # PQ = (2/3 + 1) / (2 + 0.5 * 1) = 2/3.
  assert expected['per_class'][7]['pq'] == pytest.approx(2 / 3)


def test_the_label_alone_scores_otherwise(tmp_path):
  # Without the keys (one road region per image), road would be two TPs
  # (IoU 0.75 and 1): the test above can tell the two apart.
  files = write_dataset(tmp_path, (10, 11))
  meta = coco_panoptic.metadata_from_categories(CATEGORIES)
  metric = StreamingPanopticQuality(2, [0])
  data = json.loads(open(files[0]).read())
  for ids, annotation, pred in zip((GT0, GT1), data['annotations'],
                                   (PRED0, PRED1)):
    metric.update(coco_panoptic.label_from_segments(
        ids, annotation['segments_info'], meta, 'x'), pred)
  assert metric.result()['per_class'][1]['pq'] == pytest.approx(1.75 / 2)
  assert pq_compute(*files[::2], *files[1::2], num_workers=1)[
      'per_class'][7]['pq'] == pytest.approx(2 / 3)


@pytest.mark.parametrize('crowd_rule', ['union', 'panopticapi'])
def test_saved_pairs_score_what_pdl_eval_scored(tmp_path, crowd_rule):
  files = write_dataset(tmp_path / 'data', (11, 10))
  reported = pdl_eval_pq(tmp_path / 'data', crowd_rule,
                         save_to=tmp_path / 'saved')
  saved = tmp_path / 'saved'
  rescored = pq_compute(str(saved / 'gt.json'), str(saved / 'predictions.json'),
                        str(saved / 'gt'), str(saved / 'predictions'),
                        crowd_rule=crowd_rule, num_workers=1)
  assert rescored['All'] == reported['All']
  assert rescored == pq_compute(*files[::2], *files[1::2],
                                crowd_rule=crowd_rule, num_workers=1)


def test_pdl_data_coco_panoptic_output_keeps_the_segments_apart(tmp_path):
  # Converting a COCO panoptic split to the COCO panoptic layout (pdl-data
  # --format coco_panoptic) writes every listed segment: two road segments
  # and two person crowds of image 0 stay four segments, so pq_compute on
  # the written ground truth scores as on the source's.
  from pdl_tf.data.writers import coco_writers  # pylint: disable=g-import-not-at-top
  files = write_dataset(tmp_path / 'data', (10, 11))
  meta, sources = coco_panoptic.list_coco_panoptic(
      files[0], str(tmp_path / 'data' / 'val'), files[1])
  coco_writers.write_coco_panoptic(meta, sources, str(tmp_path / 'out'),
                                   'val', progress=False)
  written = tmp_path / 'out' / 'annotations'
  source = json.loads(open(files[0]).read())['annotations']
  converted = json.loads((written / 'panoptic_val.json').read_text())[
      'annotations']
  kinds = lambda segments: sorted((s['category_id'], s['iscrowd'], s['area'])
                                  for s in segments)
  assert [kinds(a['segments_info']) for a in converted] == [
      kinds(a['segments_info']) for a in source]
  for crowd_rule in ('union', 'panopticapi'):
    assert pq_compute(str(written / 'panoptic_val.json'), files[2],
                      str(written / 'panoptic_val'), files[3],
                      crowd_rule=crowd_rule, num_workers=1) == pq_compute(
                          *files[::2], *files[1::2], crowd_rule=crowd_rule,
                          num_workers=1)


def test_plain_labels_keep_their_range_check():
  # Only a map passed as segment keys is read modulo the key range: a plain
  # label with class 300 (of 60) or a negative value is refused, not
  # wrapped into a valid class.
  metric = StreamingPanopticQuality(60, [50])
  for bad in (300000, -5):
    with pytest.raises(ValueError, match='outside 0..59'):
      metric.update(np.full((4, 4), bad), np.full((4, 4), 44000))
  with pytest.raises(ValueError, match='segment keys are >= 0'):
    metric.update(np.full((4, 4), -5), np.full((4, 4), 44000),
                  segment_keys=True)
  metric.update(np.full((4, 4), 300000), np.full((4, 4), 44000),
                segment_keys=True)  # key 300000 = class 44, repeat 1
  assert metric.result()['per_class'][44]['pq'] == 1.0


@pytest.mark.parametrize('crowd_rule', ['union', 'panopticapi'])
def test_tfrecords_of_the_files_score_as_the_files(tmp_path, crowd_rule):
  # pdl-data's TFRecords keep the segment keys beside the label: pdl-eval
  # on them gives the PQ of the COCO panoptic files they came from.
  files = write_dataset(tmp_path / 'data', (11, 10))
  meta, listed = sources.list_split('coco_panoptic', str(tmp_path / 'data'),
                                    'val')
  tfrecords.write_split(meta, listed, str(tmp_path / 'records'), 'val', 1,
                        progress=False)
  expected = pq_compute(*files[::2], *files[1::2], crowd_rule=crowd_rule,
                        num_workers=1)
  assert by_category(pdl_eval_pq(tmp_path / 'records', crowd_rule,
                                 dataset='tfrecord')) == expected
  _, plain = tfrecords.read_split(str(tmp_path / 'records'), 'val')
  labels = [label.numpy() for _, label, _ in plain]
  assert max(label.max() for label in labels) < 256000  # labels, not keys
