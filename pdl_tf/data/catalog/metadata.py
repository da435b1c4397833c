"""What a dataset tells about its classes, without TensorFlow or numpy.

``DatasetMetadata`` is what every reader returns beside its examples, and
what ``pdl_tf.data.catalog.dataset_classes`` reads before TensorFlow
starts: the class names, the dataset's own category ids, thing flags and
colours by contiguous class index, and the label encoding.
"""

import dataclasses
from typing import List, Tuple


@dataclasses.dataclass
class DatasetMetadata:
  """What a model and its evaluation need to know about a dataset.

  Class ``i`` (the model's contiguous class index) is named
  ``class_names[i]`` and has id ``category_ids[i]`` in the dataset's own
  files (a COCO category id, a Cityscapes label id...).
  """
  class_names: List[str]
  category_ids: List[int]  # contiguous class id -> dataset category id
  is_thing: List[bool]
  colors: List[Tuple[int, int, int]]
  label_divisor: int
  ignore_label: int

  @property
  def thing_class_ids(self):
    return [i for i, thing in enumerate(self.is_thing) if thing]

  @property
  def num_classes(self):
    return len(self.class_names)


def metadata_from_categories(categories, label_divisor=1000,
                             ignore_label=255):
  """DatasetMetadata of a COCO ``categories`` list (its order = class ids).

  Args:
    categories: list of dicts with ``id``, ``name``, ``isthing`` and an
      optional ``color`` [r, g, b].

  Raises:
    ValueError: as many categories as ``ignore_label`` or more (class ids
      would collide with it).
    KeyError / TypeError: a category without those keys (the readers name
      the file).
  """
  if len(categories) >= ignore_label:
    raise ValueError(f'{len(categories)} categories collide with '
                     f'ignore_label {ignore_label}.')
  return DatasetMetadata(
      class_names=[c['name'] for c in categories],
      category_ids=[c['id'] for c in categories],
      is_thing=[bool(c['isthing']) for c in categories],
      colors=[tuple(c.get('color', (0, 0, 0))) for c in categories],
      label_divisor=label_divisor, ignore_label=ignore_label)
