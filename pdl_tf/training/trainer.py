"""The custom tf.distribute training loop (its evaluation: evaluation_loop.py).

Steps run ``train.steps_per_loop`` at a time inside one tf.function; after
each loop the host checks the losses (a non-finite loss stops training with
the step and the term named; it is never zeroed) and logs. Checkpoints are
saved at every multiple of ``train.checkpoint_interval`` (loops are cut to
end there), when ``train.checkpoint_interval_minutes`` have passed since the
last one, at the last step, and on Ctrl-C or SIGTERM (interrupt.py): the
loop stops after the step in flight, the trainer saves that step and raises
``interrupt.TrainingInterrupted``. A new Trainer on the same model_dir
resumes from the latest checkpoint and skips the batches already seen (by
every replica: ``pipeline.build_dataset(skip_steps=...)``), so
it ends with the same weights as an uninterrupted run (the dropout masks
depend on a call count saved in the checkpoint: model.layers).
"""

import math
import os
import time

import tensorflow as tf
import tf_keras
import tqdm

from pdl_tf import keys
from pdl_tf import losses as losses_lib
from pdl_tf.config import ConfigError
from pdl_tf.data import pipeline
from pdl_tf.model import factory
from pdl_tf.training import evaluation_loop
from pdl_tf.training import interrupt
from pdl_tf.training import optimizer as optimizer_lib
from pdl_tf.training import strategy as strategy_lib

LOSS_NAMES = keys.LOSS_TERMS + (keys.TOTAL_LOSS,)
# Why a loop of steps ended early (the last value returned by train_loop).
NO_REQUEST, SAVE_REQUEST, STOP_REQUEST = 0, 1, 2


def _loop_steps(start, resumed_at, steps_per_loop, checkpoint_interval,
                last_step):
  """Steps of the next loop: one first, so that the progress bar moves as
  soon as the step is built, then up to the next multiple of
  ``steps_per_loop`` or of ``checkpoint_interval`` (where a checkpoint is
  due), or ``last_step``, whichever comes first (loops end where an
  uninterrupted run's end)."""
  if start == resumed_at:
    return 1
  next_checkpoint = (start // checkpoint_interval + 1) * checkpoint_interval
  return min(steps_per_loop - start % steps_per_loop, last_step - start,
             next_checkpoint - start)


class NonFiniteLossError(RuntimeError):
  """A loss became NaN or Inf; the message names the step and the term."""


class Trainer:
  """Builds model, optimizer, data and checkpoints for one experiment."""

  def __init__(self, config, model_dir, strategy, checkpoint=None,
               on_data_ready=None):
    """Builds everything; restores ``checkpoint`` (a prefix or a folder)
    if given, else the latest checkpoint in ``model_dir`` if any, else
    (fine-tuning) the weights of ``train.init_checkpoint`` if set
    (factory.init_from_checkpoint). ``self.notes`` says what was done.

    ``on_data_ready`` (no arguments) is called once, when the data first
    opened and fit the config (pipeline.check_metadata) and before the run
    writes anything: pdl-train writes params.yaml there, so a config that
    does not fit its data leaves nothing behind.

    Raises:
      ConfigError: batch size not divisible by the replicas; a checkpoint
        that does not fit the network (named, with both shapes).
      FileNotFoundError: ``checkpoint`` or ``train.init_checkpoint`` names
        nothing that exists.
    """
    self.config = config
    self.model_dir = model_dir
    # model_dir on the chief; a private folder on other workers.
    self.write_dir = strategy_lib.write_dir(model_dir, strategy)
    self.strategy = strategy
    replicas = strategy.num_replicas_in_sync
    if config.data.train.batch_size % replicas:
      raise ConfigError(
          f"'data.train.batch_size' {config.data.train.batch_size} is not "
          f'divisible by the {replicas} replicas.')
    pipeline.resolve_classes(config)  # before the model: its class count
    tf_keras.utils.set_random_seed(config.train.seed)
    with strategy.scope():
      self.model = factory.build_model(
          config.model, input_size=config.data.train.crop_size,
          use_sync_bn=replicas > 1)
      self.optimizer, self.learning_rate = optimizer_lib.build_optimizer(
          config.train,
          use_float16=config.model.precision == 'mixed_float16')
    self.checkpoint = tf.train.Checkpoint(model=self.model,
                                          optimizer=self.optimizer)
    # No checkpoint_interval here: its count starts at the first save
    # (steps 50, 300, 500 for an interval of 250); train() decides.
    self.manager = tf.train.CheckpointManager(
        self.checkpoint, self.write_dir, max_to_keep=3)
    path = tf.train.latest_checkpoint(model_dir)  # the chief's
    if checkpoint:
      path = factory.resolve_checkpoint(checkpoint)
    self.notes = []  # one line each, for the user (pdl-train prints them)
    # The weights and the step are restored now; the rest of the optimizer
    # (Adam's beta_1, beta_2 and decay variables and its moments) when the
    # first training step creates it. A float16 run continuing a float32
    # one starts a fresh loss scale (the reverse leaves it unread).
    self._restored = None
    if path:
      self._restored = self._restore(path)
      if config.train.init_checkpoint and not checkpoint:
        self.notes.append(
            f'{model_dir} has a checkpoint ({os.path.basename(path)}): '
            'resuming that run; train.init_checkpoint '
            f'{config.train.init_checkpoint!r} is not used.')
    elif config.train.init_checkpoint:  # fine-tuning: weights only
      with strategy.scope():
        self.notes.append(factory.init_from_checkpoint(
            self.model, config.train.init_checkpoint, config.data).note())
    self._saved_step = self.step if path else None
    # Set to 1 by a signal (from a thread, while the loop runs); read by the
    # loop between steps. Not in the checkpoint.
    with tf.device('/cpu:0'):
      self._stop_flag = tf.Variable(0, trainable=False, name='stop_flag')
    self._on_data_ready = on_data_ready

  def _restore(self, path):
    """Restores the checkpoint at prefix ``path`` (factory.restore_checked);
    a float16 run continuing a float32 one starts a fresh loss scale."""
    return factory.restore_checked(
        self.checkpoint, path,
        optional=(optimizer_lib.LOSS_SCALE_KEY_PREFIX,))

  def _data_ready(self):
    if self._on_data_ready:
      callback, self._on_data_ready = self._on_data_ready, None
      callback()

  @property
  def step(self):
    return int(self.optimizer.iterations.numpy())

  def _step_fn(self, batch):
    config = self.config
    scaled = isinstance(self.optimizer,
                        tf_keras.mixed_precision.LossScaleOptimizer)
    with tf.GradientTape() as tape:
      outputs = self.model(batch[pipeline.IMAGE], training=True)
      values = losses_lib.panoptic_deeplab_loss(
          outputs, batch, ignore_label=config.data.ignore_label,
          top_k_percent=config.losses.top_k_percent,
          loss_weights={keys.SEMANTIC_LOSS: config.losses.semantic_weight,
                        keys.CENTER_LOSS: config.losses.center_weight,
                        keys.OFFSET_LOSS: config.losses.offset_weight},
          global_batch_size=config.data.train.batch_size)
      loss = values[keys.TOTAL_LOSS]
      if scaled:  # float16: scale up against gradient underflow
        loss = self.optimizer.get_scaled_loss(loss)
    variables = self.model.trainable_variables
    gradients = tape.gradient(loss, variables)
    if scaled:
      gradients = self.optimizer.get_unscaled_gradients(gradients)
    self.optimizer.apply_gradients(zip(gradients, variables))
    return values

  def _agreed_request(self, deadline):
    """The request all replicas (and workers) agree on between steps.

    Each reports [stop flag set, tf.timestamp() >= deadline]; the sums over
    replicas decide, so every worker of a cluster stops or saves at the
    same step even when only one received the signal.

    Returns:
      int32 scalar: STOP_REQUEST, SAVE_REQUEST or NO_REQUEST.
    """
    local = tf.cast(tf.stack([self._stop_flag.read_value() > 0,
                              tf.timestamp() >= deadline]), tf.float32)
    votes = self.strategy.reduce(
        tf.distribute.ReduceOp.SUM,
        self.strategy.run(tf.identity, args=(local,)), axis=None)
    return tf.where(votes[0] > 0, STOP_REQUEST,
                    tf.where(votes[1] > 0, SAVE_REQUEST, NO_REQUEST))

  def _make_train_loop(self):
    step_fn = tf.function(self._step_fn,
                          jit_compile=self.config.train.jit_compile)

    @tf.function
    def train_loop(iterator, num_steps, deadline):
      """Runs up to ``num_steps`` steps, fewer on a stop or save request.

      Returns:
        mean losses float32 [len(LOSS_NAMES)] over the steps run, the
        number of steps run, the index of the first step with a non-finite
        loss (-1: none), which terms were non-finite there (bool
        [len(LOSS_NAMES)]), and the request agreed after the last step
        (NO_REQUEST, SAVE_REQUEST or STOP_REQUEST).
      """
      sums = tf.zeros([len(LOSS_NAMES)])
      first_bad = tf.constant(-1)
      bad_terms = tf.zeros([len(LOSS_NAMES)], tf.bool)
      steps = tf.constant(0)
      request = self._agreed_request(deadline)
      # A save only after a step, so that every loop makes progress. The
      # check is the loop condition, not an `if ... break`, which would put
      # the step inside a tf.cond.
      while (steps < num_steps) & (request != STOP_REQUEST) & (
          (request != SAVE_REQUEST) | (steps == 0)):
        per_replica = self.strategy.run(step_fn, args=(next(iterator),))
        values = tf.stack([self.strategy.reduce(
            tf.distribute.ReduceOp.SUM, per_replica[name], axis=None)
                           for name in LOSS_NAMES])
        finite = tf.math.is_finite(values)
        is_first = (first_bad < 0) & ~tf.reduce_all(finite)
        bad_terms = tf.where(is_first, ~finite, bad_terms)
        first_bad = tf.where(is_first, steps, first_bad)
        sums += values
        steps += 1
        request = self._agreed_request(deadline)
      means = sums / tf.cast(tf.maximum(steps, 1), tf.float32)
      return means, steps, first_bad, bad_terms, request

    return train_loop

  def _optimizer_state_unused(self):
    """Says that a run which only evaluates leaves the optimizer's state in
    the checkpoint (Adam's beta_1, beta_2, decay and moments) unrestored
    on purpose: evaluation does not use it, and a later training step in
    this process still restores it. Without this, TensorFlow warns about
    each unrestored value at exit."""
    if self._restored is not None:
      self._restored.expect_partial()

  def _save(self):
    """Saves a checkpoint at the current step unless one exists; returns
    the latest checkpoint's path."""
    if self._saved_step != self.step:
      self.manager.save(checkpoint_number=self.step)
      self._saved_step = self.step
    return self.manager.latest_checkpoint

  def train(self, until_step=None):
    """Trains up to train.steps (or ``until_step``, e.g. to simulate a stop).

    Returns:
      dict of the mean losses of the last loop of steps.

    Raises:
      NonFiniteLossError: a loss became NaN or Inf.
      interrupt.TrainingInterrupted: SIGINT or SIGTERM arrived (here or, in
        a cluster, on another worker); a checkpoint at the step reached was
        saved first.
    """
    config = self.config.train
    last_step = min(until_step or config.steps, config.steps)
    resumed_at = self.step
    if resumed_at >= last_step:
      self._optimizer_state_unused()  # nothing to train
      return {}
    dataset = self.strategy.distribute_datasets_from_function(
        lambda context: pipeline.build_dataset(self.config, context,
                                               skip_steps=resumed_at))
    iterator = iter(dataset)
    self._data_ready()
    train_loop = self._make_train_loop()
    writer = tf.summary.create_file_writer(os.path.join(self.write_dir,
                                                        'train'))
    minutes = config.checkpoint_interval_minutes
    mean, request = {}, NO_REQUEST
    self._stop_flag.assign(0)
    signals = interrupt.StopSignals(lambda: self._stop_flag.assign(1))
    with signals, tqdm.tqdm(total=config.steps, initial=self.step,
                            unit='step', dynamic_ncols=True) as progress:
      progress.set_postfix_str('building the training step')
      saved_time = time.time()
      while self.step < last_step and request != STOP_REQUEST:
        start = self.step
        if signals.signal_name:  # normally set already by the watcher
          self._stop_flag.assign(1)
        deadline = saved_time + 60 * minutes if minutes else math.inf
        means, steps, first_bad, bad_terms, request = train_loop(
            iterator, tf.constant(_loop_steps(
                start, resumed_at, config.steps_per_loop,
                config.checkpoint_interval, last_step)),
            tf.constant(deadline, tf.float64))
        request = int(request)
        if int(first_bad) >= 0:
          terms = [n for n, bad in zip(LOSS_NAMES, bad_terms.numpy()) if bad]
          raise NonFiniteLossError(
              f'non-finite loss at step {start + int(first_bad) + 1}: '
              f'{", ".join(terms)} became NaN or Inf. Training stopped; the '
              f'last checkpoint is {self.manager.latest_checkpoint}.')
        if int(steps):
          mean = dict(zip(LOSS_NAMES, means.numpy().tolist()))
          self._log(writer, progress, start, mean)
        if (request != NO_REQUEST or self.step == last_step or
            self.step % config.checkpoint_interval == 0):
          self._save()
          saved_time = time.time()
      if request == STOP_REQUEST or signals.signal_name:
        raise interrupt.TrainingInterrupted(signals.signal_name, self.step,
                                            self._save())
    return mean

  def _log(self, writer, progress, start, mean):
    """Losses and learning rate to TensorBoard and the progress bar."""
    with writer.as_default(step=self.step):
      for name, value in mean.items():
        tf.summary.scalar(f'loss/{name}', value)
      tf.summary.scalar('learning_rate', self.learning_rate(self.step))
    progress.update(self.step - start)
    progress.set_postfix({n.replace('_loss', ''): f'{v:.4f}'
                          for n, v in mean.items()})

  def evaluate(self, num_images=3, predictions_dir=None, crowd_rule='union'):
    """PQ / SQ / RQ (All, Things, Stuff), mIoU and mask AP on the eval split
    with the current weights (evaluation_loop.evaluate: ``metrics.json``
    and TensorBoard under ``model_dir/eval``; with ``predictions_dir``, the
    prediction files)."""
    self._optimizer_state_unused()
    return evaluation_loop.evaluate(
        self.model, self.config, step=self.step, write_dir=self.write_dir,
        num_images=num_images, predictions_dir=predictions_dir,
        crowd_rule=crowd_rule, on_data_ready=self._data_ready)

  def continuous_evaluate(self, timeout=None, report=None):
    """Evaluates each new checkpoint in model_dir as training writes it.

    Stops after evaluating a checkpoint at train.steps, or when no new
    checkpoint appears for ``timeout`` seconds (None: wait forever).

    Args:
      timeout: seconds to wait for a new checkpoint.
      report: called with each metrics dict.

    Returns:
      list of the metrics dicts, one per evaluated checkpoint.
    """
    results = []
    for path in tf.train.checkpoints_iterator(self.model_dir,
                                              min_interval_secs=1,
                                              timeout=timeout):
      # Evaluation only: the optimizer's state stays unrestored (see
      # _optimizer_state_unused).
      self._restore(path).expect_partial()
      results.append(self.evaluate())
      if report:
        report(results[-1])
      if self.step >= self.config.train.steps:
        break
    return results
