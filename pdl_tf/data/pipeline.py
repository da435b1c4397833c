"""tf.data input pipeline: read, augment, batch, generate targets.

Targets are made a batch at a time (``generate_targets`` on [B, H, W]):
one call per batch instead of one per image (pipeline 762 -> 1100 images/s
on the demo, bench/README.md).

With sources.open_split, the only code that reads the data section of the
config. Works as the ``dataset_fn`` of
``strategy.distribute_datasets_from_function``.

Example:
  >>> dataset = build_dataset(config)                       # training
  >>> batch = next(iter(dataset))
  >>> batch['image'].shape, batch['center_heatmap'].shape
"""

import tensorflow as tf

from pdl_tf import keys
from pdl_tf.config import ConfigError
from pdl_tf.data import augment
from pdl_tf.data import sources
from pdl_tf.data.targets import generate_targets

IMAGE = 'image'
ORIGINAL_SIZE = 'original_size'
FILE_NAME = 'file_name'
DATASETS = sources.DATASETS


def check_metadata(config, meta):
  """Raises ConfigError if the model or config disagree with the dataset."""
  if config.model.num_classes != meta.num_classes:
    raise ConfigError(
        f"'model.num_classes' is {config.model.num_classes} but dataset "
        f'{config.data.dataset!r} has {meta.num_classes} classes.')
  things = list(config.data.thing_class_ids)
  if things and things != meta.thing_class_ids:
    raise ConfigError(
        f"'data.thing_class_ids' {things} differ from the dataset's thing "
        f'classes {meta.thing_class_ids}.')


def build_dataset(config, input_context=None, training=True,
                  skip_batches=0):
  """A batched dataset of images and training targets.

  Args:
    config: ExperimentConfig.
    input_context: tf.distribute.InputContext or None. With one, the data is
      sharded per input pipeline and batched per replica.
    training: training split with augmentation, shuffling, repetition and
      drop_remainder; else the eval split, padded to its crop_size.
    skip_batches: batches to skip first. The order and the augmentation are
      fixed by data.seed, so a run resumed at step N with skip_batches=N sees
      exactly the batches an uninterrupted run would (it augments the
      skipped ones again, which costs time, but makes no targets for them).

  Returns:
    tf.data.Dataset of dicts: ``image`` float32 [B, h, w, 3] in [0, 255],
    the six target keys of ``generate_targets``, ``keys.PANOPTIC`` int32
    [B, h, w] and (eval) ``original_size`` int32 [B, 2] and ``file_name``
    string [B].
  """
  data = config.data
  split = data.train if training else data.eval
  meta, dataset = sources.open_split(
      data, split, 'data.train' if training else 'data.eval', input_context)
  check_metadata(config, meta)
  ignore_value = data.ignore_label * data.label_divisor
  if split.cache:  # decoded (or generated) once, augmented every epoch
    dataset = dataset.cache()
  if training:
    dataset = dataset.repeat().shuffle(data.shuffle_buffer, seed=data.seed)
  dataset = dataset.enumerate()
  things = tuple(meta.thing_class_ids)

  def prepare(index, example):
    image, panoptic, file_name = example
    image, panoptic = augment.resize_longest_side(image, panoptic,
                                                  split.max_size)
    features = {}
    if training:
      seed = tf.stack([tf.cast(data.seed, tf.int64), index])
      image, panoptic = augment.random_scale_crop_flip(
          image, panoptic, tf.cast(seed, tf.int32), crop_size=split.crop_size,
          min_scale=split.min_scale, max_scale=split.max_scale,
          flip=split.flip, ignore_value=ignore_value)
    else:
      image, panoptic, features[ORIGINAL_SIZE] = augment.pad_for_eval(
          image, panoptic, size=split.crop_size, ignore_value=ignore_value)
      features[FILE_NAME] = file_name
    features[IMAGE] = image
    features[keys.PANOPTIC] = panoptic
    return features

  def add_targets(features):  # a batch at a time: per-op costs amortised
    features.update(generate_targets(
        features[keys.PANOPTIC], thing_class_ids=things,
        label_divisor=data.label_divisor, ignore_label=data.ignore_label,
        sigma=data.center_sigma, small_instance_area=data.small_instance_area,
        small_instance_weight=data.small_instance_weight,
        max_segments=data.max_segments))
    return features

  dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=data.deterministic)
  batch = split.batch_size
  if input_context is not None:
    batch = input_context.get_per_replica_batch_size(batch)
  dataset = dataset.batch(batch, drop_remainder=training).skip(skip_batches)
  dataset = dataset.map(add_targets, num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=data.deterministic)
  options = tf.data.Options()
  options.deterministic = data.deterministic
  return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
