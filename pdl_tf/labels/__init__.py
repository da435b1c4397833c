"""What a label map's values mean: the encodings every room shares.

  panoptic_format.py  COCO panoptic PNGs (segment id = R + 256 G + 256^2 B)
                      and the checks of a ``segments_info`` list against
                      its PNG (readers, pq_compute)
  json_file.py        reading a dataset's JSON file (standard library only)
  segment_keys.py     ground-truth segment keys: the package's label
                      encoding (class * label_divisor + instance) with
                      several stuff or crowd segments of a class kept apart

numpy and PIL only (json_file.py: the standard library); imports nothing
else of pdl_tf.
"""
