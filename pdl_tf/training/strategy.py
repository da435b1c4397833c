"""Distribution strategies by name (train.strategy in the config)."""

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
