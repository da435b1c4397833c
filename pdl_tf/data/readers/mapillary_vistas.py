"""Mapillary Vistas panoptic: its folder layout over the COCO-format reader.

Vistas ships its panoptic labels in COCO panoptic format with its own
category list (v1.2: 65 categories, 37 of them things), so reading is
``coco_panoptic.list_coco_panoptic`` once the files are found. Layouts
tried, for split ``training`` or ``validation``:

  root/<split>/panoptic/panoptic_2018.json       (v1.2 download)
  root/<split>/v1.2/panoptic/panoptic_2018.json  (v2.0 download, v1.2 labels)
  root/<split>/v2.0/panoptic/panoptic_2020.json  (v2.0 labels, 124 classes)

with the PNGs beside the JSON and the images in ``root/<split>/images``.

Example:
  >>> meta, sources = list_mapillary_vistas('/data/vistas', 'validation')
"""

import os

from pdl_tf.data.readers import coco_panoptic
from pdl_tf.data.formats import layouts

def list_mapillary_vistas(root, split, label_divisor=1000, ignore_label=255):
  """Metadata (the JSON's categories) and one ExampleSource per image.

  Raises:
    FileNotFoundError: no layout of layouts.VISTAS_LAYOUTS exists.
  """
  json_file, image_folder, png_folder = layouts.vistas_split_files(
      root, split)
  return coco_panoptic.list_coco_panoptic(json_file, image_folder,
                                          png_folder, label_divisor,
                                          ignore_label)
