"""Typed experiment config: nested dataclasses, in the style of Model
Garden's ``official.modeling.hyperparams``.

An experiment is the defaults below, overridden by a YAML file from
``configs/`` (``--experiment NAME``), then by any ``--config_file`` YAML files,
then by ``--params_override`` strings (``a.b=1,c.d=[1,2]`` or YAML/JSON).
Unknown keys and values of the wrong type or range raise ``ConfigError``
naming the full key and where it came from.

This module imports neither TensorFlow nor Model Garden: the commands load
and check a config before TensorFlow starts, so that an argument error
takes a fraction of a second (``official.modeling.hyperparams`` imports
TensorFlow and tf_keras: 8-11 s and 0.85 GB on the project's 2-core
machine). ``Config`` keeps the two methods of ``hyperparams.Config`` that
pdl_tf uses, ``override`` and ``as_dict``.
"""

import dataclasses
from typing import Tuple


class ConfigError(ValueError):
  """A config key or value is wrong; the message names the key."""


class Config:
  """Base of the config sections: dataclass fields, sections nested as
  fields whose values are ``Config`` instances."""

  def override(self, values):
    """Sets the fields named by the nested mapping ``values`` in place.

    Raises:
      ConfigError: a key that is not a field, or a section given a value
        that is not a mapping. Types and ranges are checked by
        ``config_io.validate``.
    """
    names = {field.name for field in dataclasses.fields(self)}
    for key, value in values.items():
      if key not in names:
        raise ConfigError(f'unknown config key {key!r} in '
                          f'{type(self).__name__}.')
      current = getattr(self, key)
      if isinstance(current, Config):
        if not isinstance(value, dict):
          raise ConfigError(f'{key!r} is a section; expected a mapping, got '
                            f'{value!r}.')
        current.override(value)
      else:
        setattr(self, key, value)

  def as_dict(self):
    """The config as nested dicts (sections) of plain values."""
    return {field.name: (value.as_dict() if isinstance(value, Config)
                         else value)
            for field in dataclasses.fields(self)
            for value in (getattr(self, field.name),)}


@dataclasses.dataclass
class BackboneConfig(Config):
  """Backbone: name, output stride, multigrid, width, ImageNet checkpoint."""
  type: str = 'resnet50'
  output_stride: int = 32
  multigrid: Tuple[int, ...] = ()
  width_multiplier: float = 1.0
  init_checkpoint: str = ''


@dataclasses.dataclass
class ModelConfig(Config):
  """Network; channel widths default to the published ones."""
  num_classes: int = 0  # 0 = the dataset's class count
  backbone: BackboneConfig = dataclasses.field(default_factory=BackboneConfig)
  aspp_channels: int = 256
  atrous_rates: Tuple[int, ...] = ()  # () = published rates for the stride.
  semantic_decoder_channels: int = 256
  semantic_low_level_channels: Tuple[int, ...] = (64, 32)
  instance_decoder_channels: int = 128
  instance_low_level_channels: Tuple[int, ...] = (32, 16)
  semantic_head_channels: int = 256
  instance_head_channels: int = 32
  dropout_rate: float = 0.1
  norm_momentum: float = 0.99
  norm_epsilon: float = 0.001
  precision: str = 'float32'
  # 'imagenet' (Model Garden backbones) or 'inception' (x / 127.5 - 1,
  # deeplab2's checkpoints); see pdl_tf.normalization.
  input_normalization: str = 'imagenet'


@dataclasses.dataclass
class SplitConfig(Config):
  """One data split: where it is, crop, batch and augmentation."""
  split: str = 'train'
  path: str = ''
  crop_size: Tuple[int, ...] = (1025, 2049)
  batch_size: int = 8
  min_scale: float = 0.5
  max_scale: float = 2.0
  flip: bool = True
  num_examples: int = 0  # synthetic: scenes in the split; else 0 = all
  max_size: int = 0  # downscale so the longer side is <= this; 0 = never
  cache: bool = False  # keep decoded examples in memory after one pass


@dataclasses.dataclass
class DataConfig(Config):
  """Dataset, label encoding and target generation."""
  dataset: str = 'synthetic'
  label_divisor: int = 1000
  ignore_label: int = 255
  # () = from the dataset (config_io.resolve_classes); set, each must agree
  # with the dataset's own class list.
  thing_class_ids: Tuple[int, ...] = ()
  class_names: Tuple[str, ...] = ()
  category_ids: Tuple[int, ...] = ()  # class index -> dataset category id
  # '#rrggbb' by class index for the overlays; () = the dataset's palette
  # where it has one (set, kept: colours are for pictures only).
  class_colors: Tuple[str, ...] = ()
  max_segments: int = 256
  center_sigma: float = 8.0
  small_instance_area: int = 4096
  small_instance_weight: float = 3.0
  seed: int = 0
  deterministic: bool = True
  shuffle_buffer: int = 256
  train: SplitConfig = dataclasses.field(default_factory=SplitConfig)
  eval: SplitConfig = dataclasses.field(default_factory=lambda: SplitConfig(
      split='validation', batch_size=1, min_scale=1.0, max_scale=1.0,
      flip=False))


@dataclasses.dataclass
class LossConfig(Config):
  """Loss weights (paper: 1 / 200 / 0.01) and semantic bootstrapping."""
  semantic_weight: float = 1.0
  center_weight: float = 200.0
  offset_weight: float = 0.01
  top_k_percent: float = 0.2


@dataclasses.dataclass
class PostprocessConfig(Config):
  """Panoptic merge parameters (Cityscapes defaults)."""
  center_threshold: float = 0.1
  nms_kernel: int = 7
  top_k: int = 200
  stuff_area: int = 2048


@dataclasses.dataclass
class TrainConfig(Config):
  """Optimizer, schedule and loop (Cityscapes recipe defaults)."""
  steps: int = 60000
  learning_rate: float = 0.001
  warmup_steps: int = 0
  poly_power: float = 0.9
  steps_per_loop: int = 100
  checkpoint_interval: int = 1000  # steps; checkpoints at its multiples
  checkpoint_interval_minutes: float = 5.0  # also after this long; 0 = off
  strategy: str = 'default'
  jit_compile: bool = False
  seed: int = 0  # weight initialisation (and Python/numpy/TF global seeds)
  # A pdl_tf model folder or checkpoint prefix whose weights a new run
  # starts from (fine-tuning; the semantic classifier anew for another
  # class count); unused when model_dir has a checkpoint (that run resumes).
  init_checkpoint: str = ''


# The largest image (height x width) an export accepts by default: 40
# megapixels (8000x5000, a 7296x5472 phone photo). The memory of one request
# grows with its pixels; figures in bench/README.md.
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000


@dataclasses.dataclass
class ExportConfig(Config):
  """Export: fixed input size for TFLite, XLA for the merge, the largest
  image a request may hold (refused from its header above)."""
  input_size: Tuple[int, ...] = (1025, 2049)
  jit_compile_merge: bool = True
  max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS


@dataclasses.dataclass
class ExperimentConfig(Config):
  """Everything one experiment needs."""
  model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
  data: DataConfig = dataclasses.field(default_factory=DataConfig)
  losses: LossConfig = dataclasses.field(default_factory=LossConfig)
  postprocess: PostprocessConfig = dataclasses.field(
      default_factory=PostprocessConfig)
  train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
  export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
