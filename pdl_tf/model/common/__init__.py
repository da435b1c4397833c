"""What every part of the network builds on.

  layers.py           Keras layers: separable convs, ASPP, deeplab2's
                      symmetric padding, float32 spatial means
  names.py            the networks' names (backbones, output strides,
                      precisions) and their checks; no TensorFlow, so the
                      commands check a config before TensorFlow starts
  init_checkpoint.py  restoring a network's variables by TensorFlow's own
                      checkpoint keys (fine-tuning, backbone checkpoints)

Imports nothing else of pdl_tf.model; this ``__init__`` imports nothing.
"""
