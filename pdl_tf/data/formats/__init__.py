"""Formats: where each dataset keeps its files and what they say, without
TensorFlow.

Takes a dataset's root folder and split; gives the paths of its files
(``layouts``), a panoptic_pngs classes file's entries (``classes_file``),
a COCO instances JSON parsed and checked (``instances_json``), and the
error of a dataset whose files are missing or inconsistent (``errors``).
The commands' argument checks use it before TensorFlow starts; the
readers, the catalog and the writers build on it. No TensorFlow here.
"""

from pdl_tf.data.formats.errors import DatasetError
