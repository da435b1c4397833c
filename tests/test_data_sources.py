"""TFRecord conversion (pdl-data) and reading, Mapillary Vistas layouts, and
the TFDS datasets: the synthetic builder and coco/2017_panoptic (mocked)."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from helpers import coco_layout
from helpers import require_coco_sample
from pdl_tf import config_io
from pdl_tf import keys
from pdl_tf.cli import data as data_cli
from pdl_tf.data.catalog import dataset_classes
from pdl_tf.data.formats import layouts
from pdl_tf.data.readers import mapillary_vistas
from pdl_tf.data import pipeline
from pdl_tf.data.readers import synthetic
from pdl_tf.data import tfds_coco
from pdl_tf.data import tfds_synthetic
from pdl_tf.data.readers import tfrecords
from pdl_tf.data.readers.coco_panoptic import ExampleSource
from pdl_tf.data.readers.coco_panoptic import read_coco_panoptic


def coco_examples():
  sample = require_coco_sample()
  meta, examples = read_coco_panoptic(
      str(sample / 'panoptic_examples.json'), str(sample / 'input_images'),
      str(sample / 'panoptic_examples'))
  return meta, list(examples)


def read_all(folder, split, input_context=None):
  meta, dataset = tfrecords.read_split(str(folder), split, input_context)
  return meta, [(i.numpy(), p.numpy()) for i, p, _ in dataset]


def as_set(examples):
  """Order-free view (shards are interleaved): a set of bytes pairs."""
  return {(image.tobytes(), panoptic.tobytes())
          for image, panoptic in examples}


def test_pdl_data_round_trips_the_coco_sample_exactly(tmp_path, capsys):
  coco_layout(tmp_path / 'coco')
  out = tmp_path / 'records'
  assert data_cli.main(data_cli.build_parser().parse_args([
      '--dataset', 'coco_panoptic', '--input', str(tmp_path / 'coco'),
      '--split', 'val2017', '--output', str(out), '--num_shards', '2'])) == 0
  assert 'val2017: 2 examples in 2 shards' in capsys.readouterr().out
  meta, records = read_all(out, 'val2017')
  expected_meta, expected = coco_examples()
  assert meta == expected_meta
  # The classes a model trained on this folder takes before TensorFlow
  # starts (and writes to its params.yaml for pdl-predict).
  assert dataset_classes.read_metadata('tfrecord', str(out), 'val2017') == (
      meta)
  assert len(records) == 2  # PNG images: lossless, so exactly equal
  assert as_set(records) == as_set((e.image, e.panoptic) for e in expected)


def test_pdl_data_malformed_json_has_no_resume_hint(tmp_path, capsys):
  # Nothing was written, so there is nothing to resume.
  coco_layout(tmp_path / 'coco')
  (tmp_path / 'coco' / 'annotations' / 'panoptic_val2017.json').write_text(
      '{"images": [')
  assert data_cli.main(data_cli.build_parser().parse_args([
      '--dataset', 'coco_panoptic', '--input', str(tmp_path / 'coco'),
      '--split', 'val2017', '--output', str(tmp_path / 'records')])) == 2
  err = capsys.readouterr().err
  assert err.startswith("pdl-data: error: split 'val2017': ") and (
      'panoptic_val2017.json' in err), err
  assert 'resume' not in err
  assert not (tmp_path / 'records').exists()


def synthetic_sources(count, bad=()):
  meta, sources = synthetic.list_examples('validation', count, 32, 32)

  def broken(name):
    raise ValueError(f'{name}.png cannot be read')

  return meta, [ExampleSource(s.name, lambda n=s.name: broken(n))
                if i in bad else s for i, s in enumerate(sources)]


def test_a_conversion_that_writes_no_shard_leaves_no_folder(tmp_path):
  meta, sources = synthetic_sources(4, bad={0})
  with pytest.raises(ValueError, match='validation_000000.png cannot be'):
    tfrecords.write_split(meta, sources, str(tmp_path / 'new'), 'validation',
                          1, progress=False)
  assert not (tmp_path / 'new').exists()


def test_conversion_resumes_after_a_failure(tmp_path):
  meta, sources = synthetic_sources(10, bad={7})
  with pytest.raises(ValueError, match='validation_000007.png cannot be'):
    tfrecords.write_split(meta, sources, str(tmp_path), 'validation', 5,
                          progress=False)
  done = sorted(os.listdir(tmp_path))
  # Shards 0-2 (examples 0-5) finished; shard 3 left nothing behind.
  assert done == [f'validation-0000{k}-of-00005.{ext}'
                  for k in range(3) for ext in ('json', 'tfrecord')]
  first = os.path.getmtime(tmp_path / done[1])
  meta, sources = synthetic_sources(10)
  summary = tfrecords.write_split(meta, sources, str(tmp_path), 'validation',
                                  5, progress=False)
  assert summary['num_examples'] == 10 and not summary['skipped']
  assert os.path.getmtime(tmp_path / done[1]) == first  # not rewritten
  _, records = read_all(tmp_path, 'validation')
  assert len(records) == 10
  assert as_set(records) == as_set(synthetic.examples('validation', 10, 32,
                                                      32))
  with pytest.raises(FileExistsError, match='--num_shards 5'):
    tfrecords.write_split(meta, sources, str(tmp_path), 'validation', 3,
                          progress=False)


def test_skip_bad_lists_what_it_skipped(tmp_path):
  meta, sources = synthetic_sources(6, bad={1, 4})
  summary = tfrecords.write_split(meta, sources, str(tmp_path), 'validation',
                                  2, skip_bad=True, progress=False)
  assert summary['num_examples'] == 4
  assert [s['name'] for s in summary['skipped']] == [
      'validation_000001', 'validation_000004']
  metadata = json.loads((tmp_path / 'metadata.json').read_text())
  assert metadata['splits']['validation'] == {
      'num_examples': 4, 'num_shards': 2, 'num_skipped': 2}
  assert len(read_all(tmp_path, 'validation')[1]) == 4


def test_input_pipelines_read_disjoint_shares(tmp_path):
  meta, sources = synthetic_sources(6)
  tfrecords.write_split(meta, sources, str(tmp_path), 'validation', 3,
                        progress=False)
  for pipelines in (2, 4):  # by shard (3 >= 2), by example (3 < 4)
    seen = []
    for index in range(pipelines):
      context = tf.distribute.InputContext(pipelines, index, 1)
      seen += [int(p.sum()) for _, p in read_all(tmp_path, 'validation',
                                                 context)[1]]
    everything = [int(p.sum()) for _, p in read_all(tmp_path,
                                                    'validation')[1]]
    assert sorted(seen) == sorted(everything)


def test_tfrecord_dataset_feeds_the_pipeline_like_the_generator(tmp_path):
  meta, sources = synthetic.list_examples('validation', 3, 128, 128)
  tfrecords.write_split(meta, sources, str(tmp_path), 'validation', 2,
                        progress=False)
  base = 'data.eval.num_examples=3'
  direct = config_io.load_config('demo', params_override=base)
  records = config_io.load_config('demo', params_override=(
      f'{base},data.dataset=tfrecord,data.eval.path={tmp_path}'))
  def batches(config):  # keyed by content: the shards are interleaved
    return {batch[keys.PANOPTIC].numpy().tobytes(): batch
            for batch in pipeline.build_dataset(config, training=False)}
  expected, got = batches(direct), batches(records)
  assert sorted(got) == sorted(expected) and len(got) == 3
  for label, batch in got.items():
    for key in (pipeline.IMAGE, keys.CENTER_HEATMAP, keys.OFFSETS,
                keys.SEMANTIC_WEIGHTS, pipeline.ORIGINAL_SIZE):
      np.testing.assert_array_equal(batch[key], expected[label][key])
  wrong = config_io.load_config('demo', params_override=(
      f'data.dataset=tfrecord,data.eval.path={tmp_path},'
      'data.eval.split=train'))
  with pytest.raises(ValueError, match="split 'train' is not converted"):
    pipeline.build_dataset(wrong, training=False)


@pytest.mark.parametrize('layout', [0, 2])
def test_mapillary_vistas_layouts(tmp_path, layout):
  sample = require_coco_sample()
  folder, json_name = layouts.VISTAS_LAYOUTS[layout]
  labels = tmp_path / 'validation' / folder
  shutil.copytree(sample / 'panoptic_examples', labels)
  shutil.copy(sample / 'panoptic_examples.json', labels / json_name)
  shutil.copytree(sample / 'input_images', tmp_path / 'validation' / 'images')
  meta, sources = mapillary_vistas.list_mapillary_vistas(str(tmp_path),
                                                         'validation')
  expected_meta, expected = coco_examples()
  assert meta == expected_meta
  for source, example in zip(sources, expected):
    np.testing.assert_array_equal(source.load().panoptic, example.panoptic)
  with pytest.raises(FileNotFoundError, match='tried .*panoptic_2018.json'):
    mapillary_vistas.list_mapillary_vistas(str(tmp_path), 'training')


def test_vistas_experiment_reads_and_downscales_for_eval(tmp_path):
  sample = require_coco_sample()
  folder, json_name = layouts.VISTAS_LAYOUTS[0]
  labels = tmp_path / 'validation' / folder
  shutil.copytree(sample / 'panoptic_examples', labels)
  shutil.copy(sample / 'panoptic_examples.json', labels / json_name)
  shutil.copytree(sample / 'input_images', tmp_path / 'validation' / 'images')
  config = config_io.load_config(
      'mapillary_vistas_r50_os32', params_override=(
          f'model.num_classes=133,data.thing_class_ids=[],'
          f'data.eval.path={tmp_path},data.eval.crop_size=[321,321],'
          'data.eval.max_size=320'))
  batches = list(pipeline.build_dataset(config, training=False))
  # 427x640 and 360x640, longer side to 320: scale 0.5.
  assert [b[pipeline.ORIGINAL_SIZE].numpy().tolist() for b in batches] == [
      [[214, 320]], [[180, 320]]]
  assert [b[pipeline.FILE_NAME].numpy().tolist() for b in batches] == [
      [b'000000142238.jpg'], [b'000000439180.jpg']]


def test_tfds_synthetic_builder_is_deterministic(tmp_path):
  assert tfds_synthetic.PdlSynthetic.name == 'pdl_synthetic'
  first = {}
  for attempt in range(2):  # two separate preparations
    data_dir = str(tmp_path / str(attempt))
    dataset = tfds.load('pdl_synthetic/small', split='validation',
                        data_dir=data_dir)
    for example in tfds.as_numpy(dataset):
      index = int(example['image/id'])
      image, panoptic = synthetic.make_scene(
          synthetic.SPLIT_SEEDS['validation'] + index, 64, 64)
      np.testing.assert_array_equal(example['image'], image)
      np.testing.assert_array_equal(example['panoptic'], panoptic)
      first.setdefault(index, example['panoptic'].tobytes())
      assert first[index] == example['panoptic'].tobytes()
  assert sorted(first) == [0, 1, 2, 3]


def tfds_coco_examples(sample, drop_segment=False, encoded=False):
  """The COCO sample (folder ``sample``) as TFDS's coco/2017_panoptic
  examples; with ``encoded``, the image is the file's bytes (TFDS stores the
  original file; a SkipDecoding decoder returns it). Runs inside a tf.data
  generator: no pytest.skip/fail here."""
  data = json.loads((sample / 'panoptic_examples.json').read_text())
  index = {c['id']: i for i, c in enumerate(tfds_coco.coco_categories())}
  for annotation in data['annotations']:
    segments = annotation['segments_info'][1 if drop_segment else 0:]
    png = annotation['file_name']
    with Image.open(sample / 'panoptic_examples' / png) as label:
      panoptic_image = np.asarray(label.convert('RGB'))
    image_path = sample / 'input_images' / png.replace('.png', '.jpg')
    with Image.open(image_path) as image:
      image = np.asarray(image.convert('RGB'))
    if encoded:
      image = image_path.read_bytes()
    yield {
        'image': image, 'image/filename': png.replace('.png', '.jpg'),
        'image/id': annotation['image_id'],
        'panoptic_image': panoptic_image, 'panoptic_image/filename': png,
        'panoptic_objects': {
            'id': np.array([s['id'] for s in segments], np.int64),
            'area': np.array([s['area'] for s in segments], np.int64),
            'bbox': np.zeros([len(segments), 4], np.float32),
            'label': np.array([index[s['category_id']] for s in segments],
                              np.int64),
            'is_crowd': np.array([bool(s['iscrowd']) for s in segments]),
        }}


def mock_coco(drop_segment=False):
  sample = require_coco_sample()  # here, not in the generator

  def as_dataset(self, *args, decoders=None, **kwargs):
    del args, kwargs
    spec = self.info.features.get_tensor_spec()
    encoded = bool(decoders and 'image' in decoders)
    if encoded:
      spec = dict(spec, image=tf.TensorSpec([], tf.string))
    return tf.data.Dataset.from_generator(
        lambda: tfds_coco_examples(sample, drop_segment, encoded),
        output_signature=spec)
  return tfds.testing.mock_data(as_dataset_fn=as_dataset)


def test_tfds_coco_panoptic_matches_the_file_reader():
  expected_meta, expected = coco_examples()
  with mock_coco():
    meta, dataset = tfds_coco.read_tfds_coco_panoptic('validation')
    results = [(i.numpy(), p.numpy(), n.numpy().decode())
               for i, p, n in dataset]
  assert meta == expected_meta
  assert len(results) == 2
  assert [name for _, _, name in results] == [e.file_name for e in expected]
  for (image, panoptic, _), example in zip(results, expected):  # in order
    np.testing.assert_array_equal(image, example.image)
    np.testing.assert_array_equal(panoptic, example.panoptic)


def test_tfds_coco_panoptic_names_the_png_of_an_unknown_segment():
  with mock_coco(drop_segment=True):
    _, dataset = tfds_coco.read_tfds_coco_panoptic('validation')
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match='missing from panoptic_objects.*000000142238'):
      list(dataset)


def hand_made_tfds_example(ids, objects):
  """A coco/2017_panoptic example of id map ``ids`` [H, W] and objects
  [(id, label, is_crowd)]."""
  ids = np.asarray(ids, np.int64)
  rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1)
  return {
      # Encoded, as TFDS gives it with the image decoder skipped.
      'image': tf.io.encode_png(tf.zeros(ids.shape + (3,), tf.uint8)),
      'image/filename': tf.constant('a.png'),
      'panoptic_image': tf.constant(rgb.astype(np.uint8)),
      'panoptic_image/filename': tf.constant('a.png'),
      'panoptic_objects': {
          'id': tf.constant([o[0] for o in objects], tf.int64),
          'label': tf.constant([o[1] for o in objects], tf.int64),
          'is_crowd': tf.constant([o[2] for o in objects], tf.bool)}}


def test_tfds_coco_panoptic_refuses_instances_past_the_divisor():
  # Two persons (label 0, a thing) and a crowd: with label_divisor 3 they
  # are 1, 2 and 0; with divisor 2 the second person would read as class 1.
  is_thing = tf.constant([True, False])
  names = tf.constant(['person', 'road'])
  example = hand_made_tfds_example(
      [[1, 2, 3, 4]], [(1, 0, False), (2, 0, False), (3, 0, True),
                       (4, 1, False)])
  _, panoptic, _ = tfds_coco.panoptic_from_tfds(example, is_thing, 3, 255,
                                                names)
  np.testing.assert_array_equal(panoptic, [[1, 2, 0, 3]])
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match="(?s)a.png.*has.*2.*instances of class.*0.*"
                     "person.*label_divisor 2 allows at most 1"):
    tfds_coco.panoptic_from_tfds(example, is_thing, 2, 255, names)


def test_tfds_coco_panoptic_names_the_png_of_an_object_not_in_it():
  example = hand_made_tfds_example([[1, 1]], [(1, 0, False), (9, 0, False)])
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='(?s)panoptic_objects ids missing from the '
                     'panoptic PNG.*a.png.*9'):
    tfds_coco.panoptic_from_tfds(example, tf.constant([True]), 1000, 255)


def test_synthetic_scenes_refuse_instances_past_the_divisor():
  # With label_divisor 2 one instance per class fits; some of the first
  # scenes hold two of one class and must stop, not spill.
  with pytest.raises(ValueError, match='synthetic scene .*: at least 2 '
                     'instances of class .*label_divisor 2 allows at most 1'):
    for seed in range(50):
      synthetic.make_scene(seed, 64, 64, label_divisor=2)


@pytest.mark.parametrize('output_format', ['tfrecord', 'coco_panoptic'])
def test_pdl_data_a_bad_image_is_status_2_naming_it(tmp_path, capsys,
                                                    output_format):
  # The user's data is at fault (as for every command's bad input): 2.
  data = coco_layout(tmp_path / 'coco')
  bad = data['images'][1]['file_name']
  (tmp_path / 'coco' / 'val2017' / bad).write_bytes(b'\xff\xd8 truncated')
  assert data_cli.main(data_cli.build_parser().parse_args([
      '--dataset', 'coco_panoptic', '--input', str(tmp_path / 'coco'),
      '--split', 'val2017', '--format', output_format,
      '--output', str(tmp_path / 'out')])) == 2
  last = capsys.readouterr().err.split('\r')[-1].strip().splitlines()[-1]
  assert last.startswith("pdl-data: error: split 'val2017': ") and (
      bad in last), last
