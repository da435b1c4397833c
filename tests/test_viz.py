"""pdl_tf.viz against hand-worked tiny cases, and the overlay pdl-predict
writes with and without labels (no TensorFlow here)."""

import json

import numpy as np
import pytest
from PIL import Image

from pdl_tf import config_io
from pdl_tf import viz
from pdl_tf.cli.shared import checks
from pdl_tf.config import ConfigError
from pdl_tf.data.catalog import class_names as class_names_lib
from pdl_tf.data.catalog import dataset_classes
from pdl_tf.data.catalog import fixed_classes
from pdl_tf.serving import outputs

RED, BLUE = (220, 40, 40), (40, 60, 220)


def test_class_palette_takes_the_datasets_colours_else_a_fixed_one():
  np.testing.assert_array_equal(
      viz.class_palette(2, ['#dc2828', [40, 60, 220]]), [RED, BLUE])
  fixed = viz.class_palette(20)
  assert fixed.dtype == np.uint8 and fixed.shape == (20, 3)
  assert len({tuple(c) for c in fixed}) == 20  # distinct
  # By class index: the same colour whatever the class count.
  np.testing.assert_array_equal(viz.class_palette(5), fixed[:5])
  with pytest.raises(ValueError, match='3 class colours for 2 classes'):
    viz.class_palette(2, ['#000000'] * 3)
  with pytest.raises(ValueError, match="colour 'red' is not '#rrggbb'"):
    viz.class_palette(1, ['red'])
  with pytest.raises(ValueError, match=r'colour \[1, 2, 300\]'):
    viz.parse_color([1, 2, 300])


def test_instance_shades_hand_worked_and_distinct():
  # Stuff (0) and instance 1: the class colour. Instance 2: 0.6 x frac(
  # golden ratio) = 0.3708 of the way to white (RED is dark: luminance 94).
  np.testing.assert_array_equal(
      viz.instance_shades(np.array([RED] * 3, np.uint8), [0, 1, 2]),
      [RED, RED, (233, 120, 120)])
  # A light colour goes towards black: yellow instance 2 = 0.6292 x.
  np.testing.assert_array_equal(
      viz.instance_shades(np.array([240, 200, 30], np.uint8), 2),
      (151, 126, 19))
  for color in (RED, BLUE, (0, 0, 0), (255, 255, 255), (128, 128, 128)):
    shades = viz.instance_shades(np.array([color] * 30, np.uint8),
                                 np.arange(1, 31))
    assert len({tuple(s) for s in shades}) == 30, color


def test_panoptic_colors_class_colour_instance_shade_void_black():
  palette = np.array([BLUE, RED], np.uint8)
  panoptic = np.array([[0, 1001, 1002], [-1, 1000, 0]])
  colors = viz.panoptic_colors(panoptic, 1000, palette)
  np.testing.assert_array_equal(colors, [
      [BLUE, RED, (233, 120, 120)], [(0, 0, 0), RED, BLUE]])
  with pytest.raises(ValueError, match='class 2 in the panoptic map but '
                     'only 2 class colours'):
    viz.panoptic_colors(np.array([[2000]]), 1000, palette)


def test_boundaries_are_one_pixel_each_side_and_not_on_void():
  ids = np.array([[1, 1, 2, 2],
                  [1, 1, 2, 2],
                  [1, 1, 1, 1],
                  [-1, -1, 1, 1]])
  np.testing.assert_array_equal(viz.boundaries(ids), [
      [0, 1, 1, 0],
      [0, 1, 1, 1],
      [1, 1, 1, 1],
      [0, 0, 1, 0]])


def test_overlay_blends_outlines_and_leaves_void():
  image = np.full((3, 4, 3), 100, np.uint8)
  panoptic = np.array([[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, -1, -1]])
  picture = viz.panoptic_overlay(image, panoptic, 1000, ['#dc2828'])
  np.testing.assert_array_equal(picture[2, 2:], [[100] * 3] * 2)  # void
  np.testing.assert_array_equal(picture[2, 1], [255] * 3)  # beside void
  np.testing.assert_array_equal(picture[1, 2:], [[255] * 3] * 2)  # above
  # Blended: (100 + colour) / 2, at pixels with no other id beside them.
  np.testing.assert_array_equal(picture[:2, :2], [[[160, 70, 70]] * 2] * 2)
  np.testing.assert_array_equal(picture[2, 0], [160, 70, 70])
  plain = viz.panoptic_overlay(image, panoptic, 1000, ['#dc2828'],
                               outline=None)
  np.testing.assert_array_equal(plain[2, 1], [160, 70, 70])


def test_interior_point_is_far_from_the_boundary():
  mask = np.zeros((20, 30), bool)
  mask[5:10, 3:12] = True  # 5 x 9: its centre
  assert viz.interior_point(mask) == (7, 7)
  ring = np.zeros((40, 40), bool)  # an L: the centroid lies outside it
  ring[0:40, 0:10] = True
  ring[30:40, 0:40] = True
  y, x = viz.interior_point(ring)
  assert ring[y, x] and min(y, x) >= 4 and 40 - y >= 5
  big = np.zeros((600, 600), bool)
  big[100:500, 50:250] = True  # eroded at a stride: still inside, central
  y, x = viz.interior_point(big)
  assert abs(y - 300) <= 5 and abs(x - 150) <= 5
  with pytest.raises(ValueError, match='empty mask'):
    viz.interior_point(np.zeros((3, 3), bool))


def test_legend_lists_exactly_the_present_classes():
  palette = viz.class_palette(6, fixed_classes.SYNTHETIC_COLORS)
  names = list(fixed_classes.SYNTHETIC_CLASS_NAMES)
  entries = viz.legend_entries([3, 0, 3, 5], names, palette)
  assert entries == [(0, 'sky', (70, 130, 180)), (3, 'disk', (220, 40, 40)),
                     (5, 'triangle', (40, 60, 220))]
  assert viz.legend_entries([1], None, palette)[0][1] == 'class 1'
  picture = np.zeros((64, 64, 3), np.uint8)
  drawn = viz.draw_legend(picture, entries)
  assert drawn.shape[0] == 64 and drawn.shape[1] > 64
  np.testing.assert_array_equal(drawn[:, :64], picture)
  panel = {tuple(c) for c in drawn[:, 64:].reshape(-1, 3)}
  for index, color in enumerate(palette):
    assert (tuple(color) in panel) == (index in (0, 3, 5)), index


def test_draw_labels_writes_near_the_segments_only():
  picture = np.full((60, 120, 3), 128, np.uint8)
  ids = np.zeros((60, 120), int)
  ids[:, 60:] = 7
  drawn = viz.draw_labels(picture, ids, {7: 'car 0.93', 99: 'absent'})
  changed = np.nonzero((drawn != picture).any(-1))
  assert changed[0].size and changed[1].min() >= 60 - 2  # on segment 7
  np.testing.assert_array_equal(viz.draw_labels(picture, ids, {}), picture)


def test_side_by_side_pads_the_shorter_and_keeps_both():
  left = np.zeros((4, 3, 3), np.uint8)
  right = np.full((6, 5, 3), 9, np.uint8)
  both = viz.side_by_side(left, right, gap=2)
  assert both.shape == (6, 10, 3)
  np.testing.assert_array_equal(both[:4, :3], left)
  np.testing.assert_array_equal(both[4:, :3], 255)
  np.testing.assert_array_equal(both[:, 3:5], 255)
  np.testing.assert_array_equal(both[:, 5:], right)


def _result():
  """A backend result: sky (class 0) above, two disks (class 3)."""
  panoptic = np.zeros((48, 64), np.int64)
  panoptic[20:40, 4:24] = 3001
  panoptic[20:40, 34:60] = 3002
  panoptic[0:4, 0:4] = -1
  instance = np.where(panoptic % 1000 > 0, panoptic % 1000, 0)
  return {'panoptic': panoptic, 'semantic': panoptic // 1000,
          'instance': instance, 'instance_classes': np.array([3, 3]),
          'instance_scores': np.array([0.9, 0.75])}


def test_write_prediction_labels_change_the_overlay_not_the_json(tmp_path):
  image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)
  names = list(fixed_classes.SYNTHETIC_CLASS_NAMES)
  colors = class_names_lib.class_colors('synthetic')
  records, pictures = [], []
  for folder, labels in (('plain', False), ('labels', True)):
    records.append(outputs.write_prediction(
        image, _result(), 'x', str(tmp_path / folder), label_divisor=1000,
        class_names=names, class_colors=colors, labels=labels,
        side_by_side=labels))
    pictures.append(np.asarray(Image.open(tmp_path / folder /
                                          'x_overlay.png')))
  assert records[0] == records[1]
  assert ((tmp_path / 'plain' / 'x.json').read_text() ==
          (tmp_path / 'labels' / 'x.json').read_text())
  assert sorted(p.name for p in (tmp_path / 'plain').iterdir()) == [
      'x.json', 'x_overlay.png', 'x_panoptic.png']
  plain, labelled = pictures
  assert plain.shape == (48, 64, 3) and labelled.shape[0] == 48
  assert labelled.shape[1] > 64  # the legend beside it
  assert (labelled[:, :64] != plain).any()
  # Plain: sky blended with its dataset colour, disk 1 with disk red.
  np.testing.assert_array_equal(
      plain[10, 30], np.round((image[10, 30] + np.array([70, 130, 180])) /
                              2))
  np.testing.assert_array_equal(
      plain[30, 14], np.round((image[30, 14] + np.array(RED)) / 2))
  both = np.asarray(Image.open(tmp_path / 'labels' / 'x_side_by_side.png'))
  np.testing.assert_array_equal(both[:, :64], image)
  np.testing.assert_array_equal(both[:, 68:], labelled)


def test_class_colors_reach_the_config_from_the_dataset():
  config = config_io.load_config('demo', [])
  checks.known_classes(config)
  assert config.data.class_colors == tuple(
      '#{:02x}{:02x}{:02x}'.format(*c) for c in fixed_classes.SYNTHETIC_COLORS)
  assert class_names_lib.class_colors('cityscapes')[13] == '#00008e'  # car
  assert class_names_lib.class_colors('coco_panoptic') is None
  # Quoted: YAML reads an unquoted # as a comment.
  own = config_io.load_config('demo', [], [
      "data.class_colors=['#000000', '#000001', '#000002', '#000003', "
      "'#000004', '#000005']"])
  checks.known_classes(own)  # set: kept
  assert own.data.class_colors[5] == '#000005'
  with pytest.raises(ConfigError, match="'data.class_colors' must have one "
                     'entry per class'):
    config_io.load_config('demo', [], ["data.class_colors=['#000000']"])
  with pytest.raises(ConfigError, match="must be '#rrggbb' colours, got 'red'"):
    config_io.load_config(None, [], ['data.class_colors=[red]'])
  # Categories without 'color' (all black): no dataset palette.
  meta = fixed_classes.synthetic_metadata()
  meta.colors = [(0, 0, 0)] * 6
  assert dataset_classes.dataset_colors(meta) == ()
  assert json.loads(json.dumps(config.as_dict()))['data']['class_colors'][
      0] == '#4682b4'
