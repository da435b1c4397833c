"""Evaluation: panoptic quality (COCO format and streaming) and mIoU.

Pure numpy; importing it does not load TensorFlow.
"""

from pdl_tf.evaluation.coco_panoptic import pq_compute
from pdl_tf.evaluation.miou import StreamingMeanIoU
from pdl_tf.evaluation.streaming import StreamingPanopticQuality

__all__ = ['pq_compute', 'StreamingMeanIoU', 'StreamingPanopticQuality']
