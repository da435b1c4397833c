"""Adam with polynomial decay (power 0.9) and linear warmup, as published,
built with Model Garden's official.modeling.optimization; with float16
mixed precision, wrapped in a dynamic LossScaleOptimizer
(official.modeling.performance)."""

from official.modeling import optimization
from official.modeling import performance

# Checkpoint keys of the LossScaleOptimizer's dynamic loss scale
# (good_steps, current_loss_scale) in a pdl-train checkpoint, which holds
# the optimizer as 'optimizer'. A float32 run has none: continued in
# float16, the loss scale starts fresh.
LOSS_SCALE_KEY_PREFIX = 'optimizer/loss_scale/'


def build_optimizer(train_config, use_float16=False):
  """Returns (optimizer, learning_rate_schedule) for ``train_config``.

  With ``use_float16`` the optimizer is a tf_keras LossScaleOptimizer
  (dynamic loss scale), which float16 gradients need against underflow.
  """
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
  optimizer = performance.configure_optimizer(
      factory.build_optimizer(learning_rate), use_float16=use_float16)
  return optimizer, learning_rate
