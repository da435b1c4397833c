"""Decoding: image file bytes -> upright uint8 RGB pixels, one decode for
every path.

Takes the bytes (or path) of a JPEG, PNG, GIF, WebP or BMP; gives a uint8
[H, W, 3] image with its EXIF orientation applied (``image_decode``, with
``exif`` for the orientation tag, ``bmp`` for the BMPs TensorFlow cannot
decode, ``image_header`` for the size before decoding). The readers, the
TFRecords, pdl-predict and the serving module all decode here.
"""

from pdl_tf.data.decoding.image_decode import decode_image
from pdl_tf.data.decoding.image_decode import read_image_file
