"""Experiment config: shipped experiments, overrides, round trip, errors."""

import pytest
import yaml

from helpers import run_python
from pdl_tf import config_io
from pdl_tf import experiments
from pdl_tf.config import ConfigError


def test_every_shipped_experiment_validates():
  names = experiments.list_experiments()
  assert {'demo', 'cityscapes_r50_os32', 'cityscapes_mnv3_large_os16',
          'coco_r50_os16', 'coco_r50_os32',
          'mapillary_vistas_r50_os32'} <= set(names)
  for name in names:
    config = config_io.load_config(name)
    assert config.model.num_classes >= 1


def test_experiment_values_are_applied():
  config = config_io.load_config('cityscapes_r50_os32')
  assert config.model.backbone.type == 'resnet50'
  assert config.model.backbone.output_stride == 32
  assert tuple(config.data.thing_class_ids) == tuple(range(11, 19))
  assert config.losses.center_weight == 200.0
  coco = config_io.load_config('coco_r50_os16')
  assert tuple(coco.model.backbone.multigrid) == (1, 2, 4)
  assert coco.postprocess.nms_kernel == 41
  vistas = config_io.load_config('mapillary_vistas_r50_os32')
  assert vistas.model.num_classes == 65
  assert len(vistas.data.thing_class_ids) == 37
  assert vistas.data.eval.max_size == 2048


def test_override_order_and_forms(tmp_path):
  extra = tmp_path / 'extra.yaml'
  extra.write_text('train:\n  steps: 7\n  learning_rate: 1\n')
  config = config_io.load_config(
      'demo', config_files=[str(extra)],
      params_override=['train.steps=9,model.atrous_rates=[1,2,3]',
                       '{losses: {top_k_percent: 0.5}}'])
  assert config.train.steps == 9  # --params_override wins over the file
  assert config.train.learning_rate == 1.0  # int coerced to float
  assert isinstance(config.train.learning_rate, float)
  assert tuple(config.model.atrous_rates) == (1, 2, 3)
  assert config.losses.top_k_percent == 0.5


def test_round_trip_through_params_yaml(tmp_path):
  config = config_io.load_config(
      'coco_r50_os16', params_override='train.steps=11')
  path = config_io.save_config(config, str(tmp_path / 'run'))
  assert path.endswith('params.yaml')
  assert yaml.safe_load(open(path))['train']['steps'] == 11
  reloaded = config_io.load_config(config_files=[path])
  assert reloaded.as_dict() == config.as_dict()


@pytest.mark.parametrize('override,match', [
    ('model.backbone.depth=3',
     "unknown config key 'model.backbone.depth'.* Known keys under "
     "'model.backbone'"),
    ('trian.steps=3', "unknown config key 'trian.steps'; did you mean "
     "'train.steps'\\?"),
    ('train.batch_size=-3', "unknown config key 'train.batch_size'; did you "
     "mean 'data.train.batch_size' or 'data.eval.batch_size'\\?"),
    ('seed=1', "did you mean 'data.seed' or 'train.seed'"),
    ('train.steps=1,oops', "cannot parse 'oops'"),
    ('model.num_classes=abc', "'model.num_classes' must be int"),
    ('model.num_classes=true', "'model.num_classes' must be an int"),
    ('model.atrous_rates=3', "'model.atrous_rates' must be a list"),
    ('model.backbone=3', "'model.backbone' is a section"),
    ('model.backbone.type=vgg16', "Unknown backbone 'vgg16'"),
    ('model.backbone.output_stride=8', 'output_stride 8 is not supported'),
    ('postprocess.nms_kernel=4', "'postprocess.nms_kernel' must be a positive"),
    ('losses.top_k_percent=0', "'losses.top_k_percent' must be in"),
    ('data.thing_class_ids=[3,30]', "'data.thing_class_ids' must be class"),
    ('model.precision=float64', "'model.precision' must be one of"),
    ('postprocess.top_k=1000', "'postprocess.top_k' \\(1000\\) must be < "
     'data.label_divisor \\(1000\\)'),
    ('data.label_divisor=4,postprocess.top_k=8',
     "'postprocess.top_k' \\(8\\) must be < data.label_divisor \\(4\\)"),
    # Every size the network sees: a multiple of the stride (16) or one more.
    ('data.train.crop_size=[100,100]', "'data.train.crop_size' \\[100, "
     '100\\]: height 100 must be a multiple of the output stride 16'),
    ('data.eval.crop_size=[129,130]', "'data.eval.crop_size' \\[129, 130"
     '\\]: width 130 must be a multiple of the output stride 16 or a '
     'multiple plus one \\(e.g. 128, 129, 144 or 145\\)'),
    ('export.input_size=[64,63]', "'export.input_size' \\[64, 63\\]: width "
     '63'),
    ('model.backbone.output_stride=32,data.train.crop_size=[144,145]',
     "'data.train.crop_size' \\[144, 145\\]: height 144 must be a multiple "
     'of the output stride 32'),
])
def test_bad_overrides_name_the_key(override, match):
  with pytest.raises(ConfigError, match=match):
    config_io.load_config('demo', params_override=override)


def test_unknown_experiment_lists_known_ones():
  with pytest.raises(ConfigError, match='known experiments: .*demo'):
    config_io.load_config('no_such_experiment')


def test_bad_files_name_the_file(tmp_path):
  with pytest.raises(ConfigError, match='missing.yaml.*does not exist'):
    config_io.load_config(config_files=[str(tmp_path / 'missing.yaml')])
  broken = tmp_path / 'broken.yaml'
  broken.write_text('model: [unclosed\n')
  with pytest.raises(ConfigError, match='broken.yaml.*not valid YAML'):
    config_io.load_config(config_files=[str(broken)])
  unknown = tmp_path / 'unknown.yaml'
  unknown.write_text('model:\n  widht: 3\n')
  with pytest.raises(ConfigError, match="unknown.yaml: unknown config key "
                     "'model.widht'"):
    config_io.load_config(config_files=[str(unknown)])
  scalar = tmp_path / 'scalar.yaml'
  scalar.write_text('3\n')
  with pytest.raises(ConfigError, match='scalar.yaml: expected a mapping'):
    config_io.load_config(config_files=[str(scalar)])


def test_key_value_overrides_split_at_top_level_commas_only():
  config = config_io.load_config('demo', params_override=(
      "data.train.path='/data/a,b', model.atrous_rates=[1, 2, 3],"
      'data.train.crop_size=[65,65],train.steps=5'))
  assert config.data.train.path == '/data/a,b'
  assert config.model.atrous_rates == (1, 2, 3)
  assert config.data.train.crop_size == (65, 65)
  assert config.train.steps == 5


def test_loading_a_config_imports_no_tensorflow():
  # The commands check their config before TensorFlow starts (issue 17).
  result = run_python('''
      import sys
      from pdl_tf import config_io
      config_io.load_config('coco_r50_os16', params_override='train.steps=3')
      assert 'tensorflow' not in sys.modules, 'tensorflow imported'
      print('ok')
  ''', timeout=120)
  assert result.stdout.strip() == 'ok', result.stderr


def test_changed_keys_names_what_a_rerun_would_rewrite(tmp_path, capsys):
  config = config_io.load_config('demo')
  assert config_io.changed_keys(config, str(tmp_path)) == []  # no file yet
  config_io.save_config(config, str(tmp_path))
  assert config_io.changed_keys(config, str(tmp_path)) == []
  other = config_io.load_config(
      'demo', params_override='train.steps=10,data.train.batch_size=4')
  assert config_io.changed_keys(other, str(tmp_path)) == [
      ('data.train.batch_size', 8, 4), ('train.steps', 500, 10)]
  # pdl-train says so in one line when it writes the file.
  # pylint: disable-next=g-import-not-at-top
  from pdl_tf.cli import train
  train.save_params(other, str(tmp_path))
  assert capsys.readouterr().err == (
      f'pdl-train: note: rewrote {tmp_path}/params.yaml: '
      'data.train.batch_size 8 -> 4, train.steps 500 -> 10\n')
  assert config_io.changed_keys(other, str(tmp_path)) == []
  (tmp_path / 'params.yaml').write_text('- not a mapping\n')
  assert config_io.changed_keys(config, str(tmp_path)) == [
      ('(whole file)', ['not a mapping'], None)]
