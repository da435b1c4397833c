"""Data: a dataset's files in, batches of images and training targets out.

The flow, one room (subpackage) per step; a room imports only the rooms
before it, never the package above:

  formats/   where each dataset keeps its files, and what its class and
             annotation files say, checked without TensorFlow
  catalog/   a dataset's names and classes (DatasetMetadata), read before
             TensorFlow starts (the commands' checks)
  decoding/  image bytes -> upright uint8 pixels: the one decode (EXIF,
             BMP, headers)
  readers/   one module per on-disk format (and the synthetic dataset) ->
             PanopticExample: image + label in the package encoding
  targets/   augmentation and the training targets of a batch
  writers/   what pdl-data writes: COCO layouts, Beam TFRecords, the
             --inspect statistics

Here, the factories that read the data config: ``sources`` (dataset name
-> metadata and examples), ``record_sources`` (record datasets for
pdl-data), ``tfds_coco`` (TFDS coco/2017_panoptic), ``tfds_synthetic``
(the synthetic dataset as a TFDS builder) and ``pipeline`` (config ->
tf.data batches with targets). Importing this package imports nothing.
"""
