"""pdl_tf: Panoptic-DeepLab on TensorFlow as an installable package.

Importing ``pdl_tf`` is cheap; TensorFlow loads when a submodule needs it.
"""

__version__ = '0.1.0'
