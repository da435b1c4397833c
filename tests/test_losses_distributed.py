"""Global averaging across replicas: 2 logical CPUs vs one device."""

from helpers import run_python

SCRIPT = '''
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from pdl_tf import keys, losses

rng = np.random.default_rng(0)
B, H, W, C = 4, 8, 6, 5
labels = rng.integers(0, C, (B, H, W)).astype(np.int32)
labels[:, :2] = 255
outputs = {keys.SEMANTIC_LOGITS: rng.normal(size=(B, H, W, C)),
           keys.CENTER_HEATMAP: rng.random((B, H, W, 1)),
           keys.CENTER_OFFSETS: rng.normal(size=(B, H, W, 2))}
targets = {keys.SEMANTIC: labels,
           keys.SEMANTIC_WEIGHTS: rng.choice([1.0, 3.0], (B, H, W)),
           keys.CENTER_HEATMAP: rng.random((B, H, W)),
           keys.CENTER_WEIGHTS: np.ones((B, H, W)),
           keys.OFFSETS: rng.normal(size=(B, H, W, 2)),
           keys.OFFSET_WEIGHTS: (rng.random((B, H, W)) > 0.5) * 1.0}
cast = lambda d: {k: tf.constant(v, tf.int32 if v.dtype == np.int32 else
                                 tf.float32) for k, v in d.items()}
outputs, targets = cast(outputs), cast(targets)
single = losses.panoptic_deeplab_loss(outputs, targets, top_k_percent=0.3)

strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
assert strategy.num_replicas_in_sync == 2
def shard(ctx):
  i = ctx.replica_id_in_sync_group
  take = lambda d: {k: v[2 * i:2 * i + 2] for k, v in d.items()}
  return take(outputs), take(targets)
o, t = strategy.experimental_distribute_values_from_function(
    lambda ctx: shard(ctx)[0]), strategy.experimental_distribute_values_from_function(
    lambda ctx: shard(ctx)[1])
per_replica = strategy.run(
    lambda o, t: losses.panoptic_deeplab_loss(o, t, top_k_percent=0.3,
                                              global_batch_size=B),
    args=(o, t))
for name in single:
  summed = strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica[name],
                           axis=None)
  np.testing.assert_allclose(summed.numpy(), single[name].numpy(), rtol=1e-5)
print('OK', {k: float(v) for k, v in single.items()})
'''


def test_sum_over_replicas_equals_single_device_mean():
  result = run_python(SCRIPT)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'OK' in result.stdout
