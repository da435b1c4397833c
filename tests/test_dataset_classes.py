"""Classes come from the data: class count, thing classes, names and the
dataset's own category ids reach the config, params.yaml, pdl-eval's
per-class table and files, exports and pdl-predict's JSON."""

import argparse
import json

import numpy as np
import pytest
import yaml

from helpers import coco_layout
from pdl_tf import config_io
from pdl_tf.cli.shared import checks
from pdl_tf.cli.shared import common
from pdl_tf.cli import predict
from pdl_tf.config import ConfigError
from pdl_tf.data.catalog import dataset_classes
from pdl_tf.evaluation.pair_writer import PanopticPairWriter

# A custom 4-class dataset made from the COCO sample: every COCO category
# mapped to one of these (non-contiguous ids, things first as listed).
CUSTOM = [{'id': 11, 'name': 'human', 'isthing': 1},
          {'id': 22, 'name': 'object', 'isthing': 1},
          {'id': 30, 'name': 'ground', 'isthing': 0},
          {'id': 31, 'name': 'background', 'isthing': 0}]


def custom_coco(root, categories=None):
  """The COCO sample relabelled to CUSTOM (person -> human, other things
  -> object, stuff alternately ground / background) under ``root``."""
  data = coco_layout(root)
  things = {c['id'] for c in data['categories'] if c['isthing']}
  for annotation in data['annotations']:
    for segment in annotation['segments_info']:
      old = segment['category_id']
      segment['category_id'] = (11 if old == 1 else 22 if old in things else
                                30 if old % 2 else 31)
  data['categories'] = categories or CUSTOM
  (root / 'annotations' / 'panoptic_val2017.json').write_text(
      json.dumps(data))
  return data


def config_for(root, **override):
  values = {'data': {'dataset': 'coco_panoptic',
                     'train': {'path': str(root), 'split': 'val2017'},
                     'eval': {'path': str(root), 'split': 'val2017'}}}
  for key, value in override.items():
    section, name = key.split('.', 1)
    values.setdefault(section, {})[name] = value
  return config_io.load_config(None, params_override=values)


def test_defaults_take_every_class_setting_from_the_data(tmp_path):
  custom_coco(tmp_path / 'coco')
  config = config_for(tmp_path / 'coco')
  assert config.model.num_classes == 0 and config.data.class_names == ()
  checks.data_split(config, 'data.train')
  assert config.model.num_classes == 4
  assert config.data.thing_class_ids == (0, 1)
  assert config.data.class_names == ('human', 'object', 'ground',
                                     'background')
  assert config.data.category_ids == (11, 22, 30, 31)
  checks.data_split(config, 'data.eval')  # the same classes: agrees


def test_fixed_class_datasets_need_no_files():
  config = config_io.load_config(None, params_override={
      'data': {'dataset': 'cityscapes'}})
  checks.known_classes(config)
  assert config.model.num_classes == 19
  assert config.data.thing_class_ids == tuple(range(11, 19))
  assert config.data.class_names[13] == 'car'
  assert config.data.category_ids[13] == 26  # Cityscapes label id


@pytest.mark.parametrize('override,message', [
    ({'model.num_classes': 5}, "'model.num_classes' is 5 but dataset "
     "'coco_panoptic' at {root} has 4 classes: 0 human (thing), 1 object "
     "(thing), 2 ground, 3 background. Where model.num_classes came from"),
    ({'data.thing_class_ids': [0]}, "'data.thing_class_ids' is [0] but "
     "dataset 'coco_panoptic' at {root} has [0, 1]: 0 human (thing)"),
    ({'data.class_names': ['a', 'b', 'c', 'd']}, "'data.class_names' is "
     "['a', 'b', 'c', 'd'] but dataset 'coco_panoptic' at {root} has "
     "['human', 'object', 'ground', 'background']"),
])
def test_a_setting_that_differs_from_the_data_names_both(tmp_path, override,
                                                         message):
  custom_coco(tmp_path / 'coco')
  config = config_for(tmp_path / 'coco', **override)
  with pytest.raises(ConfigError) as error:
    checks.data_split(config, 'data.train')
  assert message.format(root=tmp_path / 'coco') in str(error.value)


def test_a_custom_dataset_of_133_classes_keeps_its_own_names(tmp_path):
  # As many classes as COCO, other names: nothing is guessed from the count.
  categories = [{'id': 1000 + i, 'name': f'part_{i}', 'isthing': int(i < 2)}
                for i in range(133)]
  categories[0]['id'], categories[1]['id'] = 11, 22  # what segments use
  categories[2]['id'], categories[3]['id'] = 30, 31
  custom_coco(tmp_path / 'coco', categories)
  config = config_for(tmp_path / 'coco')
  checks.data_split(config, 'data.train')
  assert config.model.num_classes == 133
  assert config.data.class_names[:3] == ('part_0', 'part_1', 'part_2')
  args = argparse.Namespace(label_divisor=None)
  params = json.loads(json.dumps(config.as_dict()))
  assert predict._labels(args, params) == (
      1000, list(config.data.class_names), list(config.data.category_ids))
  # An export whose params.yaml predates the names: ids only, no guess.
  params['data']['class_names'] = params['data']['category_ids'] = []
  assert predict._labels(args, params) == (1000, None, None)


def test_a_checkpoints_params_give_its_classes(tmp_path):
  custom_coco(tmp_path / 'coco')
  trained = config_for(tmp_path / 'coco')
  checks.data_split(trained, 'data.train')
  config_io.save_config(trained, tmp_path / 'run')
  args = argparse.Namespace(experiment=None, config_file=[],
                            params_override=[])
  config = common.load_config_from_args(args, checkpoint=str(tmp_path /
                                                             'run'))
  assert config.data.class_names == trained.data.class_names
  assert config.data.category_ids == (11, 22, 30, 31)
  # Another experiment with other classes against this checkpoint: refused.
  args.experiment = 'demo'
  with pytest.raises(ConfigError, match=r"'model.num_classes' is 6 but the "
                     r'checkpoint .*run was trained with 4'):
    common.load_config_from_args(args, checkpoint=str(tmp_path / 'run'))


def test_no_experiment_and_no_config_file_is_a_usage_error(tmp_path):
  args = argparse.Namespace(experiment=None, config_file=[],
                            params_override=[])
  with pytest.raises(checks.UsageError, match='pass --experiment NAME'):
    common.load_config_from_args(args, checkpoint=str(tmp_path))


def test_pair_writer_keeps_the_datasets_ids_and_names(tmp_path):
  writer = PanopticPairWriter(
      str(tmp_path), 4, [0, 1], class_names=['human', 'object', 'ground',
                                             'background'],
      category_ids=[11, 22, 30, 31], image_ids={'a/000000142238.jpg': 142238})
  label = np.array([[1001, 1002], [2000, 3000]])
  writer.add('a/000000142238.jpg', label, label)
  writer.add('b.png', label, label)
  writer.close()
  gt = json.loads((tmp_path / 'gt.json').read_text())
  assert [c['id'] for c in gt['categories']] == [11, 22, 30, 31]
  assert [c['name'] for c in gt['categories']] == [
      'human', 'object', 'ground', 'background']
  assert [(i['id'], i['file_name']) for i in gt['images']] == [
      (142238, 'a/000000142238.jpg'), (2, 'b.png')]
  assert [a['file_name'] for a in gt['annotations']] == [
      '000000142238.png', 'b.png']
  assert sorted(s['category_id'] for s in gt['annotations'][0][
      'segments_info']) == [22, 22, 30, 31]


def test_per_class_rows_name_the_classes():
  # pylint: disable-next=g-import-not-at-top
  from pdl_tf.training import eval_outputs
  config = config_io.load_config(None, params_override={'data': {
      'class_names': ['a', 'b'], 'category_ids': [7, 9],
      'thing_class_ids': [1]}, 'model': {'num_classes': 2}})
  summary = {'per_class': {0: {'pq': 0.5, 'sq': 0.75, 'rq': 2 / 3},
                           1: {'pq': 0.0, 'sq': 0.0, 'rq': 0.0}}}
  rows = eval_outputs.per_class_rows(config, summary,
                                     np.array([0.25, np.nan]))
  assert rows == [
      {'class_index': 0, 'category_id': 7, 'name': 'a', 'isthing': False,
       'pq': 0.5, 'sq': 0.75, 'rq': 2 / 3, 'iou': 0.25},
      {'class_index': 1, 'category_id': 9, 'name': 'b', 'isthing': True,
       'pq': None, 'sq': None, 'rq': None, 'iou': None}]


@pytest.mark.slow
def test_own_dataset_journey_train_eval_export_predict(tmp_path, capsys):
  """A custom 4-class COCO panoptic dataset, trained from a config file
  alone (no experiment), evaluated, exported and predicted: its names and
  category ids everywhere."""
  # pylint: disable=g-import-not-at-top
  from pdl_tf.cli import evaluate
  from pdl_tf.cli import export
  from pdl_tf.cli import train
  # pylint: enable=g-import-not-at-top
  root = tmp_path / 'coco'
  custom_coco(root)
  config_file = tmp_path / 'parts.yaml'
  config_file.write_text(yaml.safe_dump({
      'model': {'backbone': {'type': 'tiny', 'output_stride': 16},
                'aspp_channels': 16, 'semantic_decoder_channels': 16,
                'semantic_low_level_channels': [8, 8],
                'instance_decoder_channels': 8,
                'instance_low_level_channels': [8, 8],
                'semantic_head_channels': 16, 'instance_head_channels': 8},
      'data': {'dataset': 'coco_panoptic',
               'train': {'path': str(root), 'split': 'val2017',
                         'crop_size': [64, 64], 'batch_size': 2},
               'eval': {'path': str(root), 'split': 'val2017',
                        'crop_size': [65, 65], 'max_size': 64}},
      'train': {'steps': 2, 'steps_per_loop': 2, 'checkpoint_interval': 2},
      'export': {'input_size': [65, 65]}}))
  run = tmp_path / 'runs' / 'parts'
  assert common.run(train.main, ['--config_file', str(config_file),
                                 '--model_dir', str(run), '--mode', 'train'],
                    train.build_parser()) == 0
  out = capsys.readouterr().out
  assert ('parts.yaml: tiny Panoptic-DeepLab, dataset coco_panoptic '
          f'{root}, 4 classes (2 thing)') in out
  params = yaml.safe_load((run / 'params.yaml').read_text())
  assert params['model']['num_classes'] == 4
  assert params['data']['class_names'] == ['human', 'object', 'ground',
                                           'background']
  assert params['data']['category_ids'] == [11, 22, 30, 31]

  predictions = tmp_path / 'predictions'
  assert common.run(evaluate.main, [
      '--checkpoint', str(run), '--save_predictions', str(predictions)],
                    evaluate.build_parser()) == 0
  out = capsys.readouterr().out
  assert '    0     11  human       thing' in out
  assert '    3     31  background  stuff' in out
  gt = json.loads((predictions / 'coco_panoptic' / 'gt.json').read_text())
  assert sorted(i['id'] for i in gt['images']) == [142238, 439180]
  assert [c['id'] for c in gt['categories']] == [11, 22, 30, 31]
  metrics = json.loads((run / 'metrics.json').read_text())
  assert [row['name'] for row in metrics['per_class']] == [
      'human', 'object', 'ground', 'background']

  exported = tmp_path / 'export'
  assert common.run(export.main, ['--checkpoint', str(run), '--output',
                                  str(exported)], export.build_parser()) == 0
  assert yaml.safe_load((exported / '1' / 'params.yaml').read_text())[
      'data']['category_ids'] == [11, 22, 30, 31]
  images = root / 'val2017'
  assert common.run(predict.main, [
      str(images), '--saved_model', str(exported), '--output',
      str(tmp_path / 'out')], predict.build_parser()) in (0, 1)
  record = json.loads((tmp_path / 'out' / '000000142238.json').read_text())
  for segment in record['segments_info']:
    index = segment['class_index']
    assert segment['category_id'] == [11, 22, 30, 31][index]
    assert segment['category_name'] == CUSTOM[index]['name']


def segments(panoptic, divisor=1000):
  """{(class, frozenset of pixel indices)} of a label: the same for two
  labels that differ only in their instance numbering."""
  flat = panoptic.reshape(-1)
  return {(int(value) // divisor, frozenset(np.flatnonzero(flat == value)))
          for value in np.unique(flat)}


@pytest.mark.parametrize('output_format', ['coco_instances', 'coco_panoptic'])
def test_synthetic_written_as_coco_reads_back_with_its_classes(
    tmp_path, output_format):
  # pdl-data's COCO writers and the readers of those formats agree: the
  # same segments (instances renumbered), classes and category ids, read
  # before TensorFlow from the written JSON.
  # pylint: disable=g-import-not-at-top
  from pdl_tf.data.writers import coco_writers
  from pdl_tf.data import sources
  # pylint: enable=g-import-not-at-top
  meta, listed = sources.list_split('synthetic', '', 'validation',
                                    num_examples=3, size=(64, 80))
  coco_writers.WRITERS[output_format](meta, listed, str(tmp_path), 'val',
                                      progress=False)
  before_tf = dataset_classes.read_metadata(output_format, str(tmp_path),
                                            'val')
  read_meta, read = sources.list_split(output_format, str(tmp_path), 'val')
  for got in (before_tf, read_meta):
    assert (got.class_names, got.category_ids, got.is_thing) == (
        meta.class_names, meta.category_ids, meta.is_thing)
  assert len(read) == 3
  for source, written in zip(read, listed):
    example, original = source.load(), written.load()
    np.testing.assert_array_equal(example.image, original.image)
    assert segments(example.panoptic) == segments(original.panoptic)
    assert example.stats.get('overlap_pixels', 0) == 0


def test_panoptic_pngs_classes_before_tensorflow(tmp_path):
  (tmp_path / 'classes.yaml').write_text(
      '- {id: 7, name: road, isthing: false}\n'
      '- {id: 26, name: car, isthing: true, color: [0, 0, 142]}\n')
  meta = dataset_classes.read_metadata('panoptic_pngs', str(tmp_path), 'x')
  assert (meta.class_names, meta.category_ids, meta.thing_class_ids) == (
      ['road', 'car'], [7, 26], [1])


def test_another_dataset_than_the_experiments_takes_its_own_classes(
    tmp_path):
  # The demo's 6 synthetic classes belong to the synthetic dataset: a
  # config that moves the experiment to other data takes that data's.
  custom_coco(tmp_path / 'coco')
  config = config_io.load_config('demo', params_override={'data': {
      'dataset': 'coco_panoptic',
      'train': {'path': str(tmp_path / 'coco'), 'split': 'val2017'}}})
  assert (config.model.num_classes, config.data.thing_class_ids) == (0, ())
  checks.data_split(config, 'data.train')
  assert config.data.class_names == ('human', 'object', 'ground',
                                     'background')
  # Set in the same config, they stay (and are checked against the data).
  config = config_io.load_config('demo', params_override={
      'data': {'dataset': 'coco_panoptic'}, 'model': {'num_classes': 4}})
  assert (config.model.num_classes, config.data.thing_class_ids) == (4, ())
