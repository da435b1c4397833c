"""tf.data input pipeline: read, augment, generate targets, batch.

The one place that reads the data section of the config. Works as the
``dataset_fn`` of ``strategy.distribute_datasets_from_function``.

Example:
  >>> dataset = build_dataset(config)                       # training
  >>> batch = next(iter(dataset))
  >>> batch['image'].shape, batch['center_heatmap'].shape
"""

import os

import tensorflow as tf

from pdl_tf import keys
from pdl_tf.config import ConfigError
from pdl_tf.data import augment
from pdl_tf.data import cityscapes
from pdl_tf.data import coco_panoptic
from pdl_tf.data import synthetic
from pdl_tf.data.targets import generate_targets

IMAGE = 'image'
ORIGINAL_SIZE = 'original_size'
DATASETS = ('synthetic', 'coco_panoptic', 'cityscapes')


def _open(data_config, split_config, split_key):
  """(metadata, iterator of (image uint8, panoptic int32)) of one split."""
  name, path = data_config.dataset, split_config.path
  divisor, ignore = data_config.label_divisor, data_config.ignore_label
  if name == 'synthetic':
    if split_config.num_examples < 1:
      raise ConfigError(f"'{split_key}.num_examples' must be >= 1 for the "
                        'synthetic dataset.')
    height, width = split_config.crop_size
    return synthetic.metadata(divisor, ignore), synthetic.examples(
        split_config.split, split_config.num_examples, height, width,
        divisor, ignore)
  if name not in DATASETS:
    raise ConfigError(f"'data.dataset' must be one of {DATASETS}, got "
                      f'{name!r}.')
  if not path or not os.path.isdir(path):
    raise FileNotFoundError(f"'{split_key}.path' {path!r} does not exist.")
  if name == 'coco_panoptic':
    annotations = os.path.join(path, 'annotations')
    meta, examples = coco_panoptic.read_coco_panoptic(
        os.path.join(annotations, f'panoptic_{split_config.split}.json'),
        os.path.join(path, split_config.split),
        os.path.join(annotations, f'panoptic_{split_config.split}'),
        divisor, ignore)
  else:
    meta, examples = cityscapes.read_cityscapes(path, split_config.split,
                                                divisor, ignore)
  return meta, ((e.image, e.panoptic) for e in examples)


def _read(data_config, split_config, split_key):
  """Metadata and a generator function; fails early on an empty split."""
  meta, examples = _open(data_config, split_config, split_key)
  if next(examples, None) is None:
    raise ConfigError(f"'{split_key}' ({data_config.dataset}, split "
                     f'{split_config.split!r}) has no examples.')
  return meta, lambda: _open(data_config, split_config, split_key)[1]


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
      exactly the batches an uninterrupted run would (it regenerates the
      skipped ones, which costs time).

  Returns:
    tf.data.Dataset of dicts: ``image`` float32 [B, h, w, 3] in [0, 255],
    the six target keys of ``generate_targets``, ``keys.PANOPTIC`` int32
    [B, h, w] and (eval) ``original_size`` int32 [B, 2].
  """
  data = config.data
  split = data.train if training else data.eval
  meta, generator = _read(data, split, 'data.train' if training else
                          'data.eval')
  check_metadata(config, meta)
  ignore_value = data.ignore_label * data.label_divisor
  dataset = tf.data.Dataset.from_generator(generator, output_signature=(
      tf.TensorSpec([None, None, 3], tf.uint8),
      tf.TensorSpec([None, None], tf.int32)))
  if input_context is not None:
    dataset = dataset.shard(input_context.num_input_pipelines,
                            input_context.input_pipeline_id)
  if training:
    dataset = dataset.repeat().shuffle(data.shuffle_buffer, seed=data.seed)
  dataset = dataset.enumerate()
  things = tuple(meta.thing_class_ids)

  def prepare(index, example):
    image, panoptic = example
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
    features.update(generate_targets(
        panoptic, thing_class_ids=things, label_divisor=data.label_divisor,
        ignore_label=data.ignore_label, sigma=data.center_sigma,
        small_instance_area=data.small_instance_area,
        small_instance_weight=data.small_instance_weight,
        max_segments=data.max_segments))
    features[IMAGE] = image
    features[keys.PANOPTIC] = panoptic
    return features

  dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=data.deterministic)
  batch = split.batch_size
  if input_context is not None:
    batch = input_context.get_per_replica_batch_size(batch)
  dataset = dataset.batch(batch, drop_remainder=training).skip(skip_batches)
  options = tf.data.Options()
  options.deterministic = data.deterministic
  return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
