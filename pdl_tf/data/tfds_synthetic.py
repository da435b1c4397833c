"""The embedded synthetic dataset as a TFDS builder: ``tfds.load`` works.

Importing this module registers the builder ``pdl_synthetic``. Nothing is
downloaded: examples are generated locally by ``synthetic.make_scene`` and
are the same scenes, in the same order, as the pipeline's ``synthetic``
dataset (example ``i`` of a split depends only on the split and ``i``).

Features: ``image`` uint8 [H, W, 3] (PNG), ``panoptic`` int32 [H, W] in the
package encoding with label divisor 1000 and ignore label 255, ``image/id``.

Example:
  >>> from pdl_tf.data import tfds_synthetic  # registers the builder
  >>> dataset = tfds.load('pdl_synthetic/demo', split='validation',
  ...                     data_dir='/tmp/tfds')
"""

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from pdl_tf.data.readers import synthetic

LABEL_DIVISOR = 1000
IGNORE_LABEL = 255


@dataclasses.dataclass
class PdlSyntheticConfig(tfds.core.BuilderConfig):
  """Scene size and number of scenes per split."""
  height: int = 128
  width: int = 128
  num_train: int = 512
  num_validation: int = 64


class PdlSynthetic(tfds.core.GeneratorBasedBuilder):
  """Synthetic panoptic scenes: stuff bands, disks, squares, triangles."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release.'}
  BUILDER_CONFIGS = [
      PdlSyntheticConfig(name='demo', description=(
          '128x128, 512 train and 64 validation scenes (the demo '
          'experiment).')),
      PdlSyntheticConfig(name='small', height=64, width=64, num_train=16,
                         num_validation=4,
                         description='64x64, 16 train, 4 validation.'),
  ]

  def _info(self):
    height, width = self.builder_config.height, self.builder_config.width
    meta = synthetic.metadata(LABEL_DIVISOR, IGNORE_LABEL)
    return self.dataset_info_from_configs(
        description=__doc__.split('\n')[0],
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(shape=(height, width, 3)),
            'panoptic': tfds.features.Tensor(shape=(height, width),
                                             dtype=np.int32,
                                             encoding='zlib'),
            'image/id': np.int64,
        }),
        metadata=tfds.core.MetadataDict(
            class_names=meta.class_names, is_thing=meta.is_thing,
            colors=[list(c) for c in meta.colors],
            label_divisor=LABEL_DIVISOR, ignore_label=IGNORE_LABEL),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download
    config = self.builder_config
    return {'train': self._generate_examples('train', config.num_train),
            'validation': self._generate_examples('validation',
                                                  config.num_validation)}

  def _generate_examples(self, split, num_examples):
    config = self.builder_config
    for index in range(num_examples):
      image, panoptic = synthetic.make_scene(
          synthetic.SPLIT_SEEDS[split] + index, config.height, config.width,
          LABEL_DIVISOR, IGNORE_LABEL)
      yield index, {'image': image, 'panoptic': panoptic, 'image/id': index}
