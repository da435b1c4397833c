"""Panoptic-DeepLab network: images in, semantic logits, center heatmap and
center offsets out.

  common/             layers, the networks' names (no TensorFlow),
                      restoring variables by checkpoint keys
  backbones/          Model Garden's and deeplab2's backbones, deeplab2's
                      checkpoint layout
  decoder.py          the dual ASPP + decoder fusing OS8 and OS4 features
  heads.py            the prediction heads
  panoptic_deeplab.py the network (constructor arguments are its config)
  factory.py          the network from a config's model section, restored
                      from checkpoints (the only module here that reads
                      config)
"""
