"""Adam with polynomial decay (power 0.9) and linear warmup, as published,
built with Model Garden's official.modeling.optimization."""

from official.modeling import optimization


def build_optimizer(train_config):
  """Returns (optimizer, learning_rate_schedule) for ``train_config``."""
  schedule = {
      'type': 'polynomial',
      'polynomial': {'initial_learning_rate': train_config.learning_rate,
                     'decay_steps': train_config.steps,
                     'end_learning_rate': 0.0,
                     'power': train_config.poly_power}}
  options = {'optimizer': {'type': 'adam', 'adam': {}},
             'learning_rate': schedule}
  if train_config.warmup_steps:
    options['warmup'] = {'type': 'linear', 'linear': {
        'warmup_steps': train_config.warmup_steps,
        'warmup_learning_rate': 0.0}}
  factory = optimization.OptimizerFactory(
      optimization.OptimizationConfig(options))
  learning_rate = factory.build_learning_rate()
  return factory.build_optimizer(learning_rate), learning_rate
