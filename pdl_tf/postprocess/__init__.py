"""Panoptic-DeepLab's post-processing: semantic logits, center heatmap and
offsets in, a panoptic map out, as one static-shape, batched, XLA-compiled
graph.

  merge.py     the merge: argmax, centers, grouping, majority vote, stuff
               areas, instance scores (``panoptic_merge``, ``merge_fn``)
  grouping.py  its center NMS / top-k and blockwise pixel grouping

The names below are the package's public API (``from pdl_tf import
postprocess``; ``postprocess.merge_fn(...)``).
"""

# pylint: disable=unused-import
from pdl_tf.postprocess.merge import argmax_by_keys
from pdl_tf.postprocess.merge import CENTER_POINTS
from pdl_tf.postprocess.merge import CENTER_SCORES
from pdl_tf.postprocess.merge import CENTER_VALID
from pdl_tf.postprocess.merge import check_top_k
from pdl_tf.postprocess.merge import INPUT_NAMES
from pdl_tf.postprocess.merge import INPUTS_FINITE
from pdl_tf.postprocess.merge import INSTANCE_AREAS
from pdl_tf.postprocess.merge import INSTANCE_CLASSES
from pdl_tf.postprocess.merge import instance_scores
from pdl_tf.postprocess.merge import majority_vote
from pdl_tf.postprocess.merge import merge_fn
from pdl_tf.postprocess.merge import panoptic_merge
from pdl_tf.postprocess.merge import stuff_panoptic
from pdl_tf.postprocess.merge import VOID
