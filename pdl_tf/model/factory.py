"""Builds the network from the model section of an experiment config."""

import tensorflow as tf

from pdl_tf import run_params
from pdl_tf.config import ConfigError
from pdl_tf.model import backbones
from pdl_tf.model.common import init_checkpoint
from pdl_tf.model import panoptic_deeplab


def build_model(model_config, input_size=None, use_sync_bn=False):
  """Builds (and, if configured, initializes) a PanopticDeepLab model.

  Args:
    model_config: ``config.ModelConfig``.
    input_size: optional (height, width) used to build the weights with one
      forward pass; needed to restore ``backbone.init_checkpoint``. Defaults
      to a small valid size.
    use_sync_bn: synchronized batch norm (training with several replicas).

  Returns:
    A built ``PanopticDeepLab`` with ImageNet backbone weights restored from
    ``model_config.backbone.init_checkpoint`` when that path is set.

  Raises:
    FileNotFoundError: no checkpoint at ``backbone.init_checkpoint``.
    ConfigError: that checkpoint does not fit the backbone (one line naming
      the checkpoint and the variables, with both shapes).
  """
  if model_config.num_classes < 1:
    raise ConfigError(
        "'model.num_classes' is 0 (the dataset's class count) and was not "
        'resolved: call pipeline.resolve_classes(config) first, or set it.')
  backbone = model_config.backbone
  model = panoptic_deeplab.PanopticDeepLab(
      num_classes=model_config.num_classes,
      backbone=backbone.type,
      output_stride=backbone.output_stride,
      multigrid=tuple(backbone.multigrid) or None,
      backbone_width=backbone.width_multiplier,
      aspp_channels=model_config.aspp_channels,
      atrous_rates=tuple(model_config.atrous_rates) or None,
      semantic_decoder_channels=model_config.semantic_decoder_channels,
      semantic_low_level_channels=model_config.semantic_low_level_channels,
      instance_decoder_channels=model_config.instance_decoder_channels,
      instance_low_level_channels=model_config.instance_low_level_channels,
      semantic_head_channels=model_config.semantic_head_channels,
      instance_head_channels=model_config.instance_head_channels,
      dropout_rate=model_config.dropout_rate,
      use_sync_bn=use_sync_bn,
      norm_momentum=model_config.norm_momentum,
      norm_epsilon=model_config.norm_epsilon,
      precision=model_config.precision,
      input_normalization=model_config.input_normalization)
  height, width = input_size or (2 * backbone.output_stride,) * 2
  model(tf.zeros([1, height, width, 3]), training=False)
  if backbone.init_checkpoint:
    try:
      backbones.restore_backbone(model.backbone, backbone.init_checkpoint)
    except init_checkpoint.CheckpointMismatchError as e:
      raise ConfigError(f"'model.backbone.init_checkpoint': {e}") from e
  return model


def resolve_checkpoint(checkpoint):
  """The checkpoint prefix that ``checkpoint`` names: itself, or the latest
  checkpoint when it is a folder.

  Raises:
    FileNotFoundError: no checkpoint there.
  """
  path = (tf.train.latest_checkpoint(checkpoint)
          if tf.io.gfile.isdir(checkpoint) else checkpoint)
  if not path or not tf.io.gfile.exists(path + '.index'):
    raise FileNotFoundError(f'no checkpoint at {checkpoint!r}.')
  return path


def restore_model(config, checkpoint, input_size=None):
  """Builds the network of ``config`` and restores its weights.

  Args:
    config: ExperimentConfig.
    checkpoint: a checkpoint prefix or a folder (its latest checkpoint), as
      written by pdl-train.
    input_size: optional (height, width) of the build pass.

  Raises:
    FileNotFoundError: no checkpoint there.
    ConfigError: the checkpoint does not match the config's network.
  """
  path = resolve_checkpoint(checkpoint)
  model = build_model(config.model, input_size=input_size)
  restore_checked(tf.train.Checkpoint(model=model), path).expect_partial()
  return model


def restore_checked(checkpoint, path, optional=()):
  """``checkpoint.restore(path)`` once every variable of ``checkpoint`` is
  found there with its shape.

  Args:
    checkpoint: a tf.train.Checkpoint.
    path: a checkpoint prefix.
    optional: key prefixes of variables that may be missing and start
      fresh (the loss scale of a float16 run continuing a float32 one).

  Returns:
    The restore status (the optimizer's slots are restored when its first
    step makes them).

  Raises:
    ConfigError: a variable is missing from the checkpoint or has another
      shape there (init_checkpoint.check_fits); the one-line message names
      the variables, with both shapes.
  """
  try:
    init_checkpoint.check_fits(checkpoint, path, optional)
  except init_checkpoint.CheckpointMismatchError as e:
    raise ConfigError(str(e)) from e
  return checkpoint.restore(path)


def init_from_checkpoint(model, checkpoint, data_config=None):
  """Fine-tuning: restores ``model`` from another run's checkpoint, its
  semantic classifier anew when the class count differs, or when the
  checkpoint's params.yaml names other classes than ``data_config`` in the
  same number (names or category ids differ).

  Args:
    model: a built PanopticDeepLab.
    checkpoint: a pdl_tf model folder (its latest checkpoint, e.g. written
      by pdl-train or pdl-import) or a checkpoint prefix.

  Returns:
    init_checkpoint.Initialised.

  Raises:
    FileNotFoundError: no checkpoint there.
    ConfigError: another variable than the semantic classifier is missing
      or has another shape (one line naming them, with both shapes).
  """
  path = resolve_checkpoint(checkpoint)
  other = _other_classes(checkpoint, data_config)
  try:
    done = init_checkpoint.init_from_checkpoint(
        model, path, model.class_dependent_variables,
        reinitialize=bool(other))
  except init_checkpoint.CheckpointMismatchError as e:
    raise ConfigError(
        f"'train.init_checkpoint': {_other_network(checkpoint)}{e}") from e
  if other is None and not done.reinitialised:
    done = done._replace(warning=(
        "its params.yaml names no classes, so the semantic classifier was "
        'kept as trained (same class count); if its classes are not this '
        "run's, start from a run that names them"))
  return done


def _other_network(checkpoint):
  """The first clause of a fine-tuning mismatch: which network the
  checkpoint's run built (its params.yaml) and where this run's comes from;
  '' when the checkpoint has no params.yaml."""
  saved = (run_params.read_params(checkpoint) or {}).get('model') or {}
  backbone = (saved.get('backbone') or {}).get('type')
  if not backbone:
    return ''
  return (f'the checkpoint is a {backbone} network (its params.yaml) and '
          "this run's network differs: the network comes from --experiment "
          'and any model: section of --config_file or --params_override (a '
          "config file with a model: section replaces the experiment's "
          'network). ')


def _other_classes(checkpoint, data_config):
  """True when the run a checkpoint belongs to names its classes (its
  params.yaml) and they differ from ``data_config``'s in names or category
  ids; False when they are the same; None when the checkpoint does not
  name them (or ``data_config`` does not)."""
  if data_config is None or not data_config.class_names:
    return None
  saved = (run_params.read_params(checkpoint) or {}).get('data') or {}
  names, ids = saved.get('class_names') or [], saved.get('category_ids') or []
  if not names:
    return None
  return (
      list(names) != list(data_config.class_names) or
      (ids and data_config.category_ids and
       list(ids) != list(data_config.category_ids)))


def merge_arguments(config):
  """Keyword arguments of postprocess.panoptic_merge from an experiment."""
  post = config.postprocess
  return dict(thing_class_ids=list(config.data.thing_class_ids),
              label_divisor=config.data.label_divisor,
              stuff_area=post.stuff_area,
              center_threshold=post.center_threshold,
              nms_kernel=post.nms_kernel, top_k=post.top_k)
