"""Writers: what pdl-data writes from a split's examples.

Takes a dataset's metadata and ``ExampleSource`` list; gives COCO
panoptic or COCO instances folders (``coco_writers``), sharded TFRecords
through Apache Beam (``beam_tfrecords``), and the ``--inspect``
statistics (``dataset_stats``), each example loaded one at a time with
the bad-example handling of ``example_loop``. Imports nothing here:
``dataset_stats`` and ``coco_writers`` run without TensorFlow.
"""
