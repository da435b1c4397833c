"""The one module of string keys shared across pdl_tf.

Model outputs, target names, loss names and post-processing outputs are all
dictionary keys; they live here so that every module imports the same string.
"""

# Model outputs (PanopticDeepLab.call returns a dict with these keys).
SEMANTIC_LOGITS = 'semantic_logits'
CENTER_HEATMAP = 'center_heatmap'
CENTER_OFFSETS = 'center_offsets'
MODEL_OUTPUTS = (SEMANTIC_LOGITS, CENTER_HEATMAP, CENTER_OFFSETS)

# Training targets (produced by the input pipeline, consumed by the losses).
SEMANTIC = 'semantic'
SEMANTIC_WEIGHTS = 'semantic_weights'
CENTER_WEIGHTS = 'center_weights'
OFFSETS = 'offsets'
OFFSET_WEIGHTS = 'offset_weights'

# Loss terms (losses.panoptic_deeplab_loss returns a dict with these keys).
SEMANTIC_LOSS = 'semantic_loss'
CENTER_LOSS = 'center_loss'
OFFSET_LOSS = 'offset_loss'
TOTAL_LOSS = 'total_loss'
LOSS_TERMS = (SEMANTIC_LOSS, CENTER_LOSS, OFFSET_LOSS)

# Post-processing outputs.
PANOPTIC = 'panoptic'
INSTANCE = 'instance'
INSTANCE_SCORES = 'instance_scores'
