"""Dataset names, without TensorFlow (config checks run before it starts).

``LISTED`` datasets are read from a folder of files in Python
(``sources.list_split``); the others are read as tf.data datasets. Every
dataset but ``synthetic`` and ``tfds_coco_panoptic`` needs
``data.<split>.path``, a folder.
"""

LISTED = ('synthetic', 'coco_panoptic', 'cityscapes', 'mapillary_vistas',
          'coco_instances', 'panoptic_pngs')
DATASETS = LISTED + ('tfrecord', 'tfds_coco_panoptic')
# path is optional for these: synthetic has none, TFDS has a default folder.
PATH_OPTIONAL = ('synthetic', 'tfds_coco_panoptic')
# The synthetic dataset's splits (synthetic.SPLIT_SEEDS; pinned by a test).
SYNTHETIC_SPLITS = ('train', 'validation', 'test')
# What pdl-data writes (--format): sharded TFRecords (the tfrecord dataset),
# or the COCO layouts (coco_writers.py).
OUTPUT_FORMATS = ('tfrecord', 'coco_panoptic', 'coco_instances')
