"""Readers: one module per on-disk format -> panoptic examples.

Takes a dataset's folder and split (file paths from ``formats.layouts``);
gives its ``DatasetMetadata`` and a list of ``ExampleSource`` (file name
+ lazy loader of a ``PanopticExample``: upright image and int32 label in
the package encoding, class * label_divisor + instance): COCO panoptic,
COCO instances, panoptic PNGs, Cityscapes, Mapillary Vistas, the
embedded synthetic scenes, and pdl-data's sharded TFRecords (written and
read in ``tfrecords``). Decoding goes through ``decoding``; classes come
from ``catalog``.
"""

from pdl_tf.data.readers.coco_panoptic import ExampleSource
from pdl_tf.data.readers.coco_panoptic import PanopticExample
