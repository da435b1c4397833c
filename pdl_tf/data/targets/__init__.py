"""Targets: a batch of images and panoptic labels -> augmented inputs and
training targets.

Takes uint8 images and int32 labels (package encoding); gives the
scaled, cropped, flipped and padded batch (``augment``) and its semantic,
center heatmap, center offset and weight targets (``targets``, drawing
the Gaussian centers with ``center_heatmap``), as tensors keyed by
``pdl_tf.keys``. Used by the input pipeline (``data.pipeline``).
"""

from pdl_tf.data.targets.targets import generate_targets
