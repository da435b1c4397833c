"""Distribution strategies by name (train.strategy in the config)."""

import os

import tensorflow as tf

from pdl_tf.config import ConfigError

STRATEGIES = ('default', 'mirrored', 'multi_worker_mirrored', 'tpu')


def get_strategy(name, tpu_address=''):
  """The tf.distribute strategy called ``name``.

  default: the current default strategy (CPU or one GPU); mirrored: all local
  GPUs (or CPU); multi_worker_mirrored: several machines, from TF_CONFIG;
  tpu: a TPU at ``tpu_address`` ('' = local).
  """
  if name == 'default':
    return tf.distribute.get_strategy()
  if name == 'mirrored':
    return tf.distribute.MirroredStrategy()
  if name == 'multi_worker_mirrored':
    return tf.distribute.MultiWorkerMirroredStrategy()
  if name == 'tpu':
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu_address)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
  raise ConfigError(f"'train.strategy' must be one of {STRATEGIES}, got "
                    f'{name!r}.')


def is_chief(strategy):
  """True unless this is a non-chief worker of a multi-worker cluster.

  The chief is task 'chief', or worker 0 of a cluster without one.
  """
  resolver = getattr(strategy, 'cluster_resolver', None)
  if resolver is None or not resolver.task_type:
    return True
  if resolver.task_type == 'chief':
    return True
  cluster = resolver.cluster_spec().as_dict()
  return (resolver.task_type == 'worker' and resolver.task_id == 0 and
          'chief' not in cluster)


def write_dir(model_dir, strategy):
  """Where this process writes checkpoints, summaries and metrics.

  Every worker of a MultiWorkerMirroredStrategy must take part in saving;
  the chief writes ``model_dir``, the others ``model_dir/.worker_<id>``, so
  they never overwrite the chief's files.
  """
  if is_chief(strategy):
    return model_dir
  return os.path.join(model_dir, f'.worker_{strategy.cluster_resolver.task_id}')
