"""Catalog: a dataset's names and classes, read before TensorFlow starts.

Takes a dataset name (``data.dataset``), its folder and split; gives its
``DatasetMetadata`` (class names, category ids, thing flags, colours,
label encoding): fixed for synthetic, Cityscapes and TFDS COCO
(``fixed_classes``, with COCO's 133 categories in
``panoptic_coco_categories.json``), read from a dataset's own files
otherwise (``dataset_classes``). ``names`` lists the dataset names,
``class_names`` the names and colours of the fixed ones for pdl-predict.
The commands fill a config's class settings from here in their check
phase. No TensorFlow here.
"""

from pdl_tf.data.catalog.metadata import DatasetMetadata
