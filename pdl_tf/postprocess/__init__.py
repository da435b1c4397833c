"""Panoptic-DeepLab's post-processing: semantic logits, center heatmap and
offsets in, a panoptic map out, as one static-shape, batched, XLA-compiled
graph.

  merge.py     the merge: inputs checked, centers, grouping, classes and
               scores, the panoptic map (``panoptic_merge``, ``merge_fn``)
  grouping.py  its center NMS / top-k and blockwise pixel grouping
  classes.py   its class decisions: semantic argmax, majority vote, ids per
               class, stuff areas, instance scores

The names below are the package's public API (``from pdl_tf import
postprocess``; ``postprocess.merge_fn(...)``).
"""

# pylint: disable=unused-import
from pdl_tf.postprocess.classes import argmax_by_keys
from pdl_tf.postprocess.classes import instance_scores
from pdl_tf.postprocess.classes import majority_vote
from pdl_tf.postprocess.classes import stuff_panoptic
from pdl_tf.postprocess.classes import VOID
from pdl_tf.postprocess.merge import CENTER_POINTS
from pdl_tf.postprocess.merge import CENTER_SCORES
from pdl_tf.postprocess.merge import CENTER_VALID
from pdl_tf.postprocess.merge import check_top_k
from pdl_tf.postprocess.merge import INPUT_NAMES
from pdl_tf.postprocess.merge import INPUTS_FINITE
from pdl_tf.postprocess.merge import INSTANCE_AREAS
from pdl_tf.postprocess.merge import INSTANCE_CLASSES
from pdl_tf.postprocess.merge import merge_fn
from pdl_tf.postprocess.merge import panoptic_merge
