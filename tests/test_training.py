"""Training loop: learning, resume, non-finite loss, bad input."""

import json
import textwrap
import types

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from helpers import SMALL_DEMO
from helpers import TWO_CPUS
from pdl_tf import config_io
from pdl_tf.config import ConfigError
from pdl_tf.evaluation import pq_compute
from pdl_tf.training import eval_outputs
from pdl_tf.training import trainer as trainer_lib



def small_config(steps=4, extra=''):
  override = f'{SMALL_DEMO},train.steps={steps}'
  override += f',{extra}' if extra else ''
  return config_io.load_config('demo', params_override=override)


def default_strategy():
  return tf.distribute.get_strategy()


def test_losses_fall_and_eval_reports_metrics(tmp_path):
  trainer = trainer_lib.Trainer(small_config(steps=30, extra='train.'
                                             'learning_rate=0.005'),
                                str(tmp_path), default_strategy())
  first = trainer.train(until_step=2)
  last = trainer.train()
  assert trainer.step == 30
  assert last['total_loss'] < first['total_loss']
  metrics = trainer.evaluate()
  assert 0.0 <= metrics['All/pq'] <= 1.0 and 0.0 < metrics['miou'] <= 1.0
  assert (tmp_path / 'metrics.json').exists()


def test_saved_predictions_give_the_same_pq_through_pq_compute(tmp_path):
  trainer = trainer_lib.Trainer(
      small_config(steps=8, extra='data.eval.num_examples=3,'
                   'train.learning_rate=0.005'),
      str(tmp_path), default_strategy())
  trainer.train()
  metrics = trainer.evaluate(predictions_dir=str(tmp_path / 'predictions'))
  folder = tmp_path / 'predictions' / 'coco_panoptic'
  assert len(list((folder / 'predictions').glob('*.png'))) == 3
  names = [image['file_name'] for image in
           json.loads((folder / 'gt.json').read_text())['images']]
  assert names == ['validation_000000', 'validation_000001',
                   'validation_000002']
  result = pq_compute(str(folder / 'gt.json'),
                      str(folder / 'predictions.json'), str(folder / 'gt'),
                      str(folder / 'predictions'), num_workers=1)
  for split in ('All', 'Things', 'Stuff'):
    assert result[split]['pq'] == pytest.approx(metrics[f'{split}/pq'])


def test_continuous_eval_follows_the_checkpoints(tmp_path):
  config = small_config(steps=4)
  trainer = trainer_lib.Trainer(config, str(tmp_path), default_strategy())
  trainer.train(until_step=2)
  evaluator = trainer_lib.Trainer(config, str(tmp_path), default_strategy())
  # Step 2 < train.steps: evaluates it, then gives up after 1 s.
  first = evaluator.continuous_evaluate(timeout=1)
  assert [m['step'] for m in first] == [2]
  trainer.train()
  seen = []
  # Step 4 = train.steps: evaluates it and stops without waiting.
  last = evaluator.continuous_evaluate(timeout=600, report=seen.append)
  assert [m['step'] for m in last] == [4] and seen == last
  assert {'mask_ap', 'All/pq', 'miou'} <= set(last[0])
  events = list((tmp_path / 'eval').glob('events.out.tfevents*'))
  tags, pictures = set(), []
  for event in tf.compat.v1.train.summary_iterator(str(events[0])):
    tags |= {value.tag for value in event.summary.value}
    pictures += [tf.io.decode_png(value.tensor.string_val[2]).numpy()
                 for value in event.summary.value if value.tag == 'panoptic/0']
  assert {'eval/All/pq', 'eval/miou', 'panoptic/0', 'panoptic/1'} <= tags
  # The overlay (pdl_tf.viz): segments outlined in white.
  assert pictures[0].shape[-1] == 3 and (pictures[0] == 255).all(-1).any()


def test_mixed_float16_trains_with_loss_scaling_and_resumes(tmp_path):
  config = small_config(steps=2, extra='model.precision=mixed_float16')
  trainer = trainer_lib.Trainer(config, str(tmp_path), default_strategy())
  assert isinstance(trainer.optimizer,
                    tf_keras.mixed_precision.LossScaleOptimizer)
  losses = trainer.train()
  assert trainer.step == 2
  assert all(np.isfinite(v) for v in losses.values())
  assert trainer.optimizer.loss_scale.numpy() > 1  # dynamic, not 1
  resumed = trainer_lib.Trainer(config, str(tmp_path), default_strategy())
  assert resumed.step == 2


def test_resume_after_a_stop_matches_an_uninterrupted_run(tmp_path):
  # With dropout (0.5, so that a different mask would show): the masks
  # depend on a call counter saved in the checkpoint.
  config = small_config(steps=4, extra='model.dropout_rate=0.5')
  straight = trainer_lib.Trainer(config, str(tmp_path / 'a'),
                                 default_strategy())
  straight.train()
  stopped = trainer_lib.Trainer(config, str(tmp_path / 'b'),
                                default_strategy())
  stopped.train(until_step=2)  # a crash after the checkpoint at step 2
  del stopped
  resumed = trainer_lib.Trainer(config, str(tmp_path / 'b'),
                                default_strategy())
  assert resumed.step == 2
  resumed.train()
  assert resumed.step == 4
  for a, b in zip(straight.model.weights, resumed.model.weights):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6,
                               err_msg=a.name)


def test_planted_nan_stops_with_step_and_term(tmp_path):
  trainer = trainer_lib.Trainer(small_config(steps=4), str(tmp_path),
                                default_strategy())
  bias = trainer.model.semantic_head.trainable_weights[-1]
  assert 'classifier/bias' in bias.name
  bias.assign(tf.fill(bias.shape, float('nan')))
  with pytest.raises(trainer_lib.NonFiniteLossError,
                     match='non-finite loss at step 1: semantic_loss, '
                     'total_loss became NaN or Inf'):
    trainer.train()


def test_batch_not_divisible_by_replicas(tmp_path):
  fake = types.SimpleNamespace(num_replicas_in_sync=3)
  with pytest.raises(ConfigError, match="'data.train.batch_size' 2 is not "
                     'divisible by the 3 replicas'):
    trainer_lib.Trainer(small_config(), str(tmp_path), fake)


@pytest.mark.slow
def test_mirrored_two_replicas_match_one_device(tmp_path):
  # Same seed, same global batch (2), dropout off: two replicas with
  # synchronized batch norm must give the losses of one device.
  from helpers import run_python  # pylint: disable=g-import-not-at-top
  result = run_python(TWO_CPUS + textwrap.dedent(f'''
    import json
    config = config_io.load_config('demo', params_override=(
        {SMALL_DEMO!r} + ',train.steps=2,model.dropout_rate=0.0'))
    losses = {{}}
    for name, strategy in (
        ('one', tf.distribute.get_strategy()),
        ('two', tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1']))):
      trainer = trainer_lib.Trainer(config, {str(tmp_path)!r} + '/' + name,
                                    strategy)
      losses[name] = trainer.train()
    print('LOSSES', json.dumps(losses))
  '''), timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  line = next(l for l in result.stdout.splitlines() if l.startswith('LOSSES'))
  losses = json.loads(line[len('LOSSES '):])
  for name in losses['one']:
    # Tolerance: float32 sums in a different order across the two replicas.
    assert losses['two'][name] == pytest.approx(losses['one'][name],
                                                rel=1e-4), name


@pytest.mark.slow
def test_resume_on_two_replicas_matches_an_uninterrupted_run(tmp_path):
  # One input pipeline feeds both replicas: a resumed run must skip two
  # per-replica batches per step taken (earlier versions skipped one, and
  # step 3 trained on the batches of step 2 again).
  from helpers import run_python  # pylint: disable=g-import-not-at-top
  result = run_python(TWO_CPUS + textwrap.dedent(f'''
    import numpy as np
    config = config_io.load_config('demo', params_override=(
        {SMALL_DEMO!r} + ',train.steps=4,model.dropout_rate=0.0'))
    strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
    root = {str(tmp_path)!r}
    straight = trainer_lib.Trainer(config, root + '/a', strategy)
    straight.train()
    trainer_lib.Trainer(config, root + '/b', strategy).train(until_step=2)
    resumed = trainer_lib.Trainer(config, root + '/b', strategy)
    assert resumed.step == 2
    resumed.train()
    worst = max(float(np.max(np.abs(a.numpy() - b.numpy())))
                for a, b in zip(straight.model.weights, resumed.model.weights))
    print('WORST', worst)
  '''), timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  line = next(l for l in result.stdout.splitlines() if l.startswith('WORST'))
  assert float(line.split()[1]) < 1e-5


def _loops(resumed_at, steps_per_loop, last_step, checkpoint_interval=1000):
  sizes, step = [], resumed_at
  while step < last_step:
    sizes.append(trainer_lib._loop_steps(  # pylint: disable=protected-access
        step, resumed_at, steps_per_loop, checkpoint_interval, last_step))
    step += sizes[-1]
  return sizes


def test_first_loop_is_one_step_then_loops_end_on_multiples():
  # The progress bar moves once the step is built (issue 17), and loops
  # (hence checkpoints) still end where an uninterrupted run's end.
  assert _loops(0, 50, 120) == [1, 49, 50, 20]
  assert _loops(299, 50, 500) == [1, 50, 50, 50, 50]
  assert _loops(300, 50, 500) == [1, 49, 50, 50, 50]
  assert _loops(0, 1, 3) == [1, 1, 1]
  # Loops also end where a checkpoint is due (issue 17 item 7).
  assert _loops(0, 50, 130, checkpoint_interval=30) == [1, 29, 20, 10, 30,
                                                       10, 20, 10]


def test_eval_bar_total():
  split = types.SimpleNamespace(num_examples=64, batch_size=3)
  known = tf.data.Dataset.range(10).batch(3)
  assert eval_outputs.eval_batches(known, split) == 4  # tf.data knows
  unknown = tf.data.Dataset.from_generator(
      lambda: iter(range(10)), output_signature=tf.TensorSpec([], tf.int64))
  assert eval_outputs.eval_batches(unknown, split) == 22  # ceil(64 / 3)
  split.num_examples = 0
  assert eval_outputs.eval_batches(unknown, split) is None
