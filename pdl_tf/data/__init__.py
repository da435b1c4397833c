"""Data: target generation (readers, augmentation and pipeline: issue 3)."""
