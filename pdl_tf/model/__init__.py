"""Panoptic-DeepLab network: backbones, decoders, heads and the factory."""
