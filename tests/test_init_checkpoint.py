"""Fine-tuning from another run's checkpoint (train.init_checkpoint), runs
continued across precisions, and checkpoints that do not fit, named."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import deeplab2_checkpoints as d2
from helpers import four_class_coco
from helpers import SMALL_DEMO
from pdl_tf import config_io
from pdl_tf.config import ConfigError
from pdl_tf.importers import deeplab2 as importer
from pdl_tf.model import factory
from pdl_tf.model.common import init_checkpoint
from pdl_tf.training import trainer as trainer_lib

CLASSIFIER = ('model/semantic_head/_classifier/kernel',
              'model/semantic_head/_classifier/bias')


def demo_config(extra=''):
  """The small demo (6 synthetic classes, tiny backbone)."""
  return config_io.load_config(
      'demo', params_override=SMALL_DEMO + (f',{extra}' if extra else ''))


def four_class_config(root, experiment='demo', overrides=SMALL_DEMO,
                      extra=''):
  """``experiment`` on the 4-class COCO data at ``root``, small crops."""
  override = (f'{overrides},data.dataset=coco_panoptic,'
              f'data.train.path={root},data.train.split=train2017,'
              'model.num_classes=4,data.thing_class_ids=[0,1],'
              'data.train.crop_size=[65,65],data.train.batch_size=2,'
              'train.warmup_steps=0,train.steps_per_loop=10,'
              'train.checkpoint_interval=1000')
  override += f',{extra}' if extra else ''
  return config_io.load_config(experiment, params_override=override)


def trainer(config, model_dir):
  return trainer_lib.Trainer(config, str(model_dir),
                             tf.distribute.get_strategy())


def assert_restored_except(model, prefix, skipped):
  """Every variable of ``model`` equals checkpoint ``prefix``'s value,
  except the keys ``skipped``; returns the keys compared."""
  reader = tf.train.load_checkpoint(prefix)
  keys = init_checkpoint.variable_keys(tf.train.Checkpoint(model=model))
  for key, variable in keys.items():
    if key not in skipped:
      np.testing.assert_array_equal(
          variable.numpy(),
          reader.get_tensor(key + init_checkpoint.KEY_SUFFIX), err_msg=key)
  return set(keys) - set(skipped)


@pytest.fixture(scope='module')
def float32_run(tmp_path_factory):
  """A demo run trained 2 steps in float32 (6 classes); its model_dir."""
  model_dir = tmp_path_factory.mktemp('float32_run')
  run = trainer(demo_config('train.steps=2'), model_dir)
  run.train()
  return model_dir


def test_fine_tune_float32_into_mixed_float16_with_other_classes(
    float32_run, tmp_path):
  four_class_coco(tmp_path / 'coco')
  config = four_class_config(
      tmp_path / 'coco', extra=f'model.precision=mixed_float16,'
      f'train.init_checkpoint={float32_run},train.steps=2')
  run = trainer(config, tmp_path / 'fine')
  source = tf.train.latest_checkpoint(str(float32_run))
  assert run.step == 0  # the optimizer and the step start fresh
  assert isinstance(run.optimizer, tf_keras.mixed_precision.LossScaleOptimizer)
  assert run.notes == [
      f'initialised from {source} ({len(run.model.variables) - 2} '
      'variables); re-initialised for 4 classes (checkpoint has 6): '
      + ', '.join(CLASSIFIER)]
  assert_restored_except(run.model, source, CLASSIFIER)
  kernel = run.model.class_dependent_variables[0]
  assert kernel.shape[-1] == 4 and np.abs(kernel.numpy()).max() > 0
  losses = run.train()
  assert run.step == 2 and all(np.isfinite(v) for v in losses.values())
  # And back: the mixed_float16 run's checkpoint into float32, same classes.
  back = trainer(four_class_config(
      tmp_path / 'coco', extra=f'train.init_checkpoint={tmp_path / "fine"}'),
                 tmp_path / 'back')
  # A run folder without params.yaml names no classes: kept, and said.
  assert back.notes == [f'initialised from {tmp_path / "fine"}/ckpt-2 '
                        f'({len(back.model.variables)} variables); its '
                        'params.yaml names no classes, so the semantic '
                        'classifier was kept as trained (same class count); '
                        "if its classes are not this run's, start from a "
                        'run that names them']
  assert_restored_except(back.model, str(tmp_path / 'fine' / 'ckpt-2'), ())


def test_a_run_with_a_checkpoint_resumes_and_ignores_init_checkpoint(
    float32_run, tmp_path):
  config = demo_config(f'train.steps=2,train.init_checkpoint={tmp_path}')
  run = trainer(config, float32_run)
  assert run.step == 2
  assert run.notes == [
      f'{float32_run} has a checkpoint (ckpt-2): resuming that run; '
      f"train.init_checkpoint '{tmp_path}' is not used."]


def test_float32_run_continues_in_mixed_float16_and_back(tmp_path):
  """Issue 23 fault 5: the float32 checkpoint has no loss scale; the mixed
  run starts a fresh one (2**15) and keeps the step and the weights."""
  run = trainer(demo_config('train.steps=1'), tmp_path)
  run.train()
  mixed = trainer(demo_config('train.steps=2,model.precision=mixed_float16'),
                  tmp_path)
  assert mixed.step == 1
  assert float(mixed.optimizer.loss_scale.numpy()) == 2.0 ** 15
  assert_restored_except(mixed.model, str(tmp_path / 'ckpt-1'), ())
  mixed.train()
  back = trainer(demo_config('train.steps=3'), tmp_path)
  assert back.step == 2
  back.train()
  assert back.step == 3


def _saved(model, path):
  return tf.train.Checkpoint(model=model).write(str(path))


def test_a_checkpoint_that_does_not_fit_names_variables_and_shapes(
    tmp_path):
  narrow = factory.build_model(demo_config().model)
  prefix = _saved(narrow, tmp_path / 'narrow')
  wide = factory.build_model(demo_config('model.aspp_channels=24').model)
  with pytest.raises(ConfigError) as error:
    factory.init_from_checkpoint(wide, prefix)
  message = str(error.value)
  assert '\n' not in message
  assert message.startswith(f"'train.init_checkpoint': checkpoint "
                            f"'{prefix}' does not fit the network: ")
  assert ('model/instance_decoder/_aspp/_branches/0/_conv/kernel '
          '(checkpoint [1, 1, 128, 16], the network [1, 1, 128, 24])'
          in message), message
  # The same for a resume (factory.restore_checked) and for a checkpoint
  # of another network altogether (missing variables).
  with pytest.raises(ConfigError, match=r'\(checkpoint \[16\], the network '
                                        r'\[24\]\)'):
    factory.restore_checked(tf.train.Checkpoint(model=wide), prefix)
  backbone_only = tf.train.Checkpoint(backbone=narrow.backbone).write(
      str(tmp_path / 'backbone'))
  with pytest.raises(ConfigError, match=r'variable\(s\) of the network '
                                        r'missing from the checkpoint: '
                                        r'model/backbone/'):
    factory.init_from_checkpoint(narrow, backbone_only)
  # A run folder's checkpoint: the message first says which network its
  # run built and where this run's network comes from.
  config_io.save_config(demo_config(), str(tmp_path / 'run'))
  in_run = _saved(narrow, tmp_path / 'run' / 'ckpt-1')
  with pytest.raises(ConfigError) as error:
    factory.init_from_checkpoint(wide, in_run)
  assert str(error.value).startswith(
      "'train.init_checkpoint': the checkpoint is a tiny network (its "
      "params.yaml) and this run's network differs: "), error.value
  assert 'a config file with a model: section replaces' in str(error.value)


def test_only_the_semantic_classifier_may_differ(tmp_path):
  six = factory.build_model(demo_config().model)
  prefix = _saved(six, tmp_path / 'six')
  # A center head of another width is not a class count.
  other = factory.build_model(
      demo_config('model.num_classes=4,data.thing_class_ids=[0,1],'
                  'model.instance_head_channels=16').model)
  with pytest.raises(ConfigError) as error:
    factory.init_from_checkpoint(other, prefix)
  assert 'model/center_head/' in str(error.value)
  assert '_classifier/kernel (checkpoint [1, 1, 8, 1], the network ' \
         '[1, 1, 16, 1])' in str(error.value)
  assert 'semantic_head/_classifier' not in str(error.value)


@pytest.mark.slow
def test_fine_tune_the_deeplab2_golden_model_into_4_classes(tmp_path):
  """The MobileNetV3-S golden fixture (19 Cityscapes classes), imported
  with pdl-import's importer, fine-tuned 20 steps on 4 COCO classes: only
  the semantic classifier starts anew, everything else is the fixture's."""
  if not d2.GOLDEN.is_dir():
    pytest.skip(f'deeplab2 golden fixture not found at {d2.GOLDEN} '
                '(../shared is optional)')
  imported = tmp_path / 'imported'
  importer.import_checkpoint(str(d2.GOLDEN), config_io.load_config(d2.MNV3S),
                             str(imported), d2.MNV3S)
  four_class_coco(tmp_path / 'coco')
  config = four_class_config(
      tmp_path / 'coco', experiment=d2.MNV3S, overrides='train.steps=20',
      extra=f'train.init_checkpoint={imported}')
  run = trainer(config, tmp_path / 'fine')
  source = str(imported / 'ckpt-0')
  assert run.step == 0
  assert run.notes == [
      f'initialised from {source} ({len(run.model.variables) - 2} '
      'variables); re-initialised for 4 classes (checkpoint has 19): '
      + ', '.join(CLASSIFIER)]
  compared = assert_restored_except(run.model, source, CLASSIFIER)
  assert len(compared) == 362 - 2 + 2  # deeplab2's 362 weights, 2 counters
  losses = run.train()
  assert run.step == 20 and all(np.isfinite(v) for v in losses.values())


def test_same_class_count_other_classes_reinitialises_the_classifier(
    float32_run, tmp_path):
  # The checkpoint's params.yaml names 6 other classes than the synthetic
  # dataset's: the classifier starts anew although its shape fits.
  import shutil  # pylint: disable=g-import-not-at-top
  source = tmp_path / 'other_classes'
  shutil.copytree(float32_run, source)
  saved = demo_config()
  saved.data.class_names = ('a', 'b', 'c', 'd', 'e', 'f')
  saved.data.category_ids = (10, 11, 12, 13, 14, 15)
  config_io.save_config(saved, source)
  run = trainer(demo_config(f'train.init_checkpoint={source}'),
                tmp_path / 'fine')
  prefix = tf.train.latest_checkpoint(str(source))
  assert run.notes == [
      f'initialised from {prefix} ({len(run.model.variables) - 2} '
      "variables); re-initialised for 6 classes (the checkpoint's are other "
      f'classes): {", ".join(CLASSIFIER)}']
  assert_restored_except(run.model, prefix, CLASSIFIER)
  # The same classes named: everything restored.
  same = demo_config()
  same.data.class_names = tuple(run.config.data.class_names)
  same.data.category_ids = tuple(run.config.data.category_ids)
  config_io.save_config(same, source)
  run = trainer(demo_config(f'train.init_checkpoint={source}'),
                tmp_path / 'fine_same')
  assert run.notes == [f'initialised from {prefix} '
                       f'({len(run.model.variables)} variables)']
