"""The XLA panoptic merge: hand-worked cases, numpy oracle, XLA == eager."""

import numpy as np
import pytest
import tensorflow as tf

from merge_oracle import np_merge
from merge_oracle import random_scene
from pdl_tf import keys
from pdl_tf import postprocess

VOID = postprocess.VOID


def logits_from(semantic, num_classes):
  """Confident logits whose argmax is ``semantic`` [H, W]."""
  return (5.0 * np.eye(num_classes)[semantic]).astype(np.float32)


def merge(semantic, heat, offsets=None, **kwargs):
  """Runs the XLA merge on one image; returns numpy outputs of image 0."""
  num_classes = kwargs.pop('num_classes', 4)
  height, width = semantic.shape
  if offsets is None:
    offsets = np.zeros((height, width, 2), np.float32)
  kwargs = dict(dict(thing_class_ids=[1, 2, 3], stuff_area=1, nms_kernel=3,
                     top_k=8), **kwargs)
  fn = postprocess.merge_fn(**kwargs)
  out = fn(logits_from(semantic, num_classes)[None],
           np.asarray(heat, np.float32)[None, ..., None],
           np.asarray(offsets, np.float32)[None])
  return {k: v.numpy()[0] for k, v in out.items()}


# ----------------------------------------------------------- centers ---
def test_nms_plateau_keeps_both_equal_neighbours():
  # 8x8 heatmap, kernel 3: (2,2) and (2,3) are equal maxima (0.9) and both
  # survive; (6,6) = 0.5 survives; (6,5) = 0.4 is suppressed by (6,6); all
  # else is 0. Order: by score, then flat index: (2,2) before (2,3).
  heat = np.zeros((8, 8))
  heat[2, 2] = heat[2, 3] = 0.9
  heat[6, 6], heat[6, 5] = 0.5, 0.4
  out = merge(np.zeros((8, 8), int), heat)
  assert out[postprocess.CENTER_VALID].sum() == 3
  np.testing.assert_array_equal(out[postprocess.CENTER_POINTS][:3],
                                [[2, 2], [2, 3], [6, 6]])
  np.testing.assert_allclose(out[postprocess.CENTER_SCORES][:4],
                             [0.9, 0.9, 0.5, 0.0])


def test_top_k_keeps_exactly_k_centers():
  # Five isolated peaks 0.9 .. 0.5; top_k = 3 keeps exactly the best 3
  # (not k - 1 as deeplab2 / detectron2 do).
  heat = np.zeros((16, 16))
  for i, score in enumerate([0.5, 0.9, 0.6, 0.8, 0.7]):
    heat[3 * i + 1, 3 * i + 1] = score
  out = merge(np.zeros((16, 16), int), heat, top_k=3)
  assert out[postprocess.CENTER_VALID].tolist() == [True] * 3
  np.testing.assert_allclose(out[postprocess.CENTER_SCORES], [0.9, 0.8, 0.7])
  np.testing.assert_array_equal(out[postprocess.CENTER_POINTS],
                                [[4, 4], [10, 10], [13, 13]])


def test_threshold_is_strict():
  heat = np.zeros((8, 8))
  heat[4, 4] = 0.1  # equal to the threshold: dropped
  out = merge(np.zeros((8, 8), int), heat, center_threshold=0.1)
  assert not out[postprocess.CENTER_VALID].any()


# ------------------------------------------------------------ merging ---
def test_no_centers_things_void_stuff_kept():
  # Left half stuff class 0 (32 px >= stuff_area 10), right half thing class
  # 1. No heatmap value above 0.1, so no center: things become void (-1),
  # stuff keeps 0 * 1000 = 0.
  semantic = np.zeros((8, 8), int)
  semantic[:, 4:] = 1
  out = merge(semantic, np.full((8, 8), 0.05), stuff_area=10)
  expected = np.where(semantic == 1, VOID, 0)
  np.testing.assert_array_equal(out[keys.PANOPTIC], expected)
  assert not out[keys.INSTANCE].any()
  np.testing.assert_array_equal(out[keys.SEMANTIC], semantic)


def test_all_stuff_image():
  # Thing ids [1, 2]; the image is stuff class 0 (top) and 3 (bottom). A
  # center exists but no thing pixel: no instance, panoptic = class * 1000.
  semantic = np.zeros((8, 8), int)
  semantic[4:] = 3
  heat = np.zeros((8, 8))
  heat[2, 2] = 0.9
  out = merge(semantic, heat, thing_class_ids=[1, 2])
  np.testing.assert_array_equal(out[keys.PANOPTIC], semantic * 1000)
  assert not out[keys.INSTANCE].any()
  assert not out[keys.INSTANCE_SCORES].any()
  assert (out[postprocess.INSTANCE_CLASSES] == -1).all()


def test_tiny_stuff_below_stuff_area_becomes_void():
  # Stuff class 3 covers 3 pixels (< stuff_area 4): void. Class 0 covers 61.
  semantic = np.zeros((8, 8), int)
  semantic[0, :3] = 3
  out = merge(semantic, np.zeros((8, 8)), thing_class_ids=[1, 2],
              stuff_area=4)
  expected = np.zeros((8, 8), int)
  expected[0, :3] = VOID
  np.testing.assert_array_equal(out[keys.PANOPTIC], expected)


def test_tie_vote_takes_smaller_class():
  # One center at (4,4); every pixel is a thing pixel, 32 of class 3 (top)
  # and 32 of class 2 (bottom): a tie, so the instance is class 2 and every
  # pixel is 2 * 1000 + 1 = 2001, including the class-3 pixels.
  semantic = np.full((8, 8), 3)
  semantic[4:] = 2
  heat = np.zeros((8, 8))
  heat[4, 4] = 0.8
  out = merge(semantic, heat)
  np.testing.assert_array_equal(out[keys.PANOPTIC], np.full((8, 8), 2001))
  np.testing.assert_array_equal(out[keys.INSTANCE], np.ones((8, 8)))
  assert out[postprocess.INSTANCE_CLASSES][0] == 2


def test_equidistant_vote_goes_to_lower_center_index():
  # Centers (1,1) score 0.9 (index 0) and (1,5) score 0.8 (index 1). Thing
  # pixels with zero offset: column 3 is 2 px from both -> center 0.
  # Columns 0-2 -> center 0, columns 4-7 -> center 1. Everything is class 1.
  semantic = np.ones((3, 8), int)
  heat = np.zeros((3, 8))
  heat[1, 1], heat[1, 5] = 0.9, 0.8
  out = merge(semantic, heat)
  row = [1, 1, 1, 1, 2, 2, 2, 2]
  np.testing.assert_array_equal(out[keys.INSTANCE], [row] * 3)
  np.testing.assert_array_equal(out[keys.PANOPTIC],
                                [[1000 + i for i in row]] * 3)


def test_offsets_move_votes_and_ids_restart_per_class():
  # 4x12, three 4x4 blocks: A (cols 0-3) class 1, B (4-7) class 2, C (8-11)
  # class 1. Centers: (1,1) 0.9, (1,6) 0.8, (1,9) 0.7. Every pixel of C has
  # offset dx = -8, so it votes at columns 0-3, nearest to (1,1): C joins A.
  # A+C = instance 1, class 1 -> 1001; B = instance 2, class 2 -> 2001; the
  # third center gets no pixel.
  semantic = np.ones((4, 12), int)
  semantic[:, 4:8] = 2
  heat = np.zeros((4, 12))
  heat[1, 1], heat[1, 6], heat[1, 9] = 0.9, 0.8, 0.7
  offsets = np.zeros((4, 12, 2), np.float32)
  offsets[:, 8:, 1] = -8.0
  out = merge(semantic, heat, offsets)
  expected = np.full((4, 12), 1001)
  expected[:, 4:8] = 2001
  np.testing.assert_array_equal(out[keys.PANOPTIC], expected)
  # Without the offsets, C is its own class-1 instance: id 2 -> 1002.
  out = merge(semantic, heat)
  expected[:, 8:] = 1002
  np.testing.assert_array_equal(out[keys.PANOPTIC], expected)
  np.testing.assert_array_equal(out[postprocess.INSTANCE_CLASSES][:4],
                                [1, 2, 1, -1])


def test_instance_score_is_objectness_times_mean_probability():
  # One instance covering the whole 4x4 image, logits for class 1 = 5 and 0
  # elsewhere (4 classes): p = e^5 / (e^5 + 3); score = 0.8 * p.
  heat = np.zeros((4, 4))
  heat[1, 1] = 0.8
  out = merge(np.ones((4, 4), int), heat)
  p = np.exp(5.0) / (np.exp(5.0) + 3)
  np.testing.assert_allclose(out[keys.INSTANCE_SCORES][0], 0.8 * p, rtol=1e-5)
  assert out[postprocess.INSTANCE_AREAS][0] == 16


# ----------------------------------------------------- oracle, batch, XLA ---
def scenes(seed, batch, height, width, num_classes=6, things=(3, 4, 5)):
  rng = np.random.default_rng(seed)
  parts = [random_scene(rng, height, width, num_classes, list(things),
                        rng.integers(0, 8)) for _ in range(batch)]
  return [np.stack(p) for p in zip(*parts)]


MERGE_ARGS = dict(thing_class_ids=[3, 4, 5], label_divisor=1000,
                  stuff_area=20, center_threshold=0.1, nms_kernel=7,
                  top_k=10)


@pytest.mark.parametrize('seed', range(6))
def test_matches_numpy_oracle_on_random_scenes(seed):
  logits, heat, offsets = scenes(seed, batch=3, height=48, width=64)
  got = postprocess.merge_fn(**MERGE_ARGS)(logits, heat, offsets)
  want = np_merge(logits, heat, offsets, **MERGE_ARGS)
  for key in (keys.PANOPTIC, keys.SEMANTIC, keys.INSTANCE):
    np.testing.assert_array_equal(got[key].numpy(), want[key], err_msg=key)
  np.testing.assert_array_equal(got[postprocess.INSTANCE_CLASSES].numpy(),
                                want['instance_classes'])
  np.testing.assert_allclose(got[keys.INSTANCE_SCORES].numpy(),
                             want['instance_scores'], atol=1e-5)


@pytest.mark.parametrize('jit_compile', [True, False])
def test_more_classes_than_one_chunk_match_the_oracle(jit_compile):
  # 77 classes: the class sums run over chunks of 32, 32 and 13 classes.
  things = (3, 40, 76)
  logits, heat, offsets = scenes(21, batch=2, height=40, width=48,
                                 num_classes=77, things=things)
  args = dict(MERGE_ARGS, thing_class_ids=list(things))
  got = postprocess.merge_fn(jit_compile=jit_compile, **args)(
      logits, heat, offsets)
  want = np_merge(logits, heat, offsets, **args)
  np.testing.assert_array_equal(got[keys.PANOPTIC], want[keys.PANOPTIC])
  assert (want['instance_scores'] > 0).any()  # the scores are exercised
  np.testing.assert_allclose(got[keys.INSTANCE_SCORES],
                             want['instance_scores'], atol=1e-5)


def test_batch_of_three_equals_images_one_by_one():
  logits, heat, offsets = scenes(11, batch=3, height=32, width=32)
  fn = postprocess.merge_fn(**MERGE_ARGS)
  batched = fn(logits, heat, offsets)
  for i in range(3):
    single = fn(logits[i:i + 1], heat[i:i + 1], offsets[i:i + 1])
    for key, value in single.items():
      np.testing.assert_array_equal(batched[key][i], value[0], err_msg=key)


def test_xla_and_non_xla_identical():
  logits, heat, offsets = scenes(12, batch=2, height=40, width=56)
  compiled = postprocess.merge_fn(jit_compile=True, **MERGE_ARGS)(
      logits, heat, offsets)
  plain = postprocess.merge_fn(jit_compile=False, **MERGE_ARGS)(
      logits, heat, offsets)
  for key in compiled:
    if compiled[key].dtype.is_floating:
      # Scores are float sums whose order XLA may change: within 1e-6.
      np.testing.assert_allclose(compiled[key], plain[key], rtol=1e-6,
                                 err_msg=key)
    else:  # every map, id, class, area and center: bit-identical
      np.testing.assert_array_equal(compiled[key], plain[key], err_msg=key)


def test_small_chunks_and_many_centers_agree():
  logits, heat, offsets = scenes(13, batch=2, height=40, width=40)
  args = dict(MERGE_ARGS, top_k=50, nms_kernel=3)
  a = postprocess.merge_fn(center_chunk=4, **args)(logits, heat, offsets)
  b = postprocess.merge_fn(center_chunk=64, **args)(logits, heat, offsets)
  want = np_merge(logits, heat, offsets, **args)
  np.testing.assert_array_equal(a[keys.PANOPTIC], b[keys.PANOPTIC])
  np.testing.assert_array_equal(a[keys.PANOPTIC], want[keys.PANOPTIC])


def test_offsets_of_unknown_spatial_size_take_the_logits_size():
  # In a tf.function whose offsets input has no static H, W (the logits
  # have them), the grouping still gets its static pixel count.
  logits, heat, offsets = scenes(18, batch=1, height=24, width=32)
  merge = tf.function(lambda l, h, o: postprocess.panoptic_merge(
      l, h, o, **MERGE_ARGS)[keys.PANOPTIC], input_signature=[
          tf.TensorSpec([None, 24, 32, 6]), tf.TensorSpec([None, None, None, 1]),
          tf.TensorSpec([None, None, None, 2])])
  want = np_merge(logits, heat, offsets, **MERGE_ARGS)
  np.testing.assert_array_equal(merge(logits, heat, offsets),
                                want[keys.PANOPTIC])


def test_pixel_blocks_that_do_not_divide_the_image_agree():
  # 40x40 = 1600 pixels in blocks of 300: 6 blocks, the last one padded.
  logits, heat, offsets = scenes(17, batch=2, height=40, width=40)
  args = dict(MERGE_ARGS, top_k=50, nms_kernel=3)
  got = postprocess.merge_fn(pixel_block=300, **args)(logits, heat, offsets)
  want = np_merge(logits, heat, offsets, **args)
  for key in (keys.PANOPTIC, keys.INSTANCE):
    np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_image_sizes_equal_merging_the_cropped_images():
  # A padded batch: each image is valid only in its top-left (h, w). The
  # oracle merges each crop alone; the padded result must equal it inside
  # and be VOID outside, whatever the network predicted in the padding.
  logits, heat, offsets = scenes(14, batch=3, height=40, width=48)
  sizes = np.array([[40, 48], [23, 31], [17, 48]], np.int32)
  got = postprocess.merge_fn(**MERGE_ARGS)(logits, heat, offsets, sizes)
  for i, (h, w) in enumerate(sizes):
    want = np_merge(logits[i:i + 1, :h, :w], heat[i:i + 1, :h, :w],
                    offsets[i:i + 1, :h, :w], **MERGE_ARGS)
    for key in (keys.PANOPTIC, keys.SEMANTIC, keys.INSTANCE):
      value = got[key][i].numpy()
      np.testing.assert_array_equal(value[:h, :w], want[key][0], err_msg=key)
      outside = np.ones_like(value, bool)
      outside[:h, :w] = False
      fill = 0 if key == keys.INSTANCE else postprocess.VOID
      assert (value[outside] == fill).all(), key
    np.testing.assert_allclose(got[keys.INSTANCE_SCORES][i],
                               want['instance_scores'][0], atol=1e-5)


# ---------------------------------------------------------- bad input ---
def test_bad_inputs_raise_clear_errors():
  logits, heat, offsets = scenes(14, batch=2, height=16, width=16)
  with pytest.raises(ValueError, match='differ in batch or spatial size'):
    postprocess.panoptic_merge(logits, heat[:1], offsets, thing_class_ids=[3])
  with pytest.raises(ValueError, match='differ in batch or spatial size'):
    postprocess.panoptic_merge(logits, heat, offsets[:, :8],
                               thing_class_ids=[3])
  with pytest.raises(ValueError, match='2 \\(dy, dx\\)'):
    postprocess.panoptic_merge(logits, heat, offsets[..., :1],
                               thing_class_ids=[3])
  with pytest.raises(ValueError, match='thing_class_ids is empty'):
    postprocess.panoptic_merge(logits, heat, offsets, thing_class_ids=[])
  with pytest.raises(ValueError, match='outside'):
    postprocess.panoptic_merge(logits, heat, offsets, thing_class_ids=[6])
  with pytest.raises(ValueError, match='top_k must be >= 1'):
    postprocess.panoptic_merge(logits, heat, offsets, thing_class_ids=[3],
                               top_k=0)
  with pytest.raises(ValueError, match='pixel_block must be >= 1'):
    postprocess.panoptic_merge(logits, heat, offsets, thing_class_ids=[3],
                               pixel_block=0)
  with pytest.raises(ValueError, match='center_threshold must be >= 0'):
    postprocess.panoptic_merge(logits, heat, offsets, thing_class_ids=[3],
                               center_threshold=-0.5)
  with pytest.raises(ValueError, match='rank-4'):
    postprocess.panoptic_merge(logits[0], heat, offsets, thing_class_ids=[3])


@pytest.mark.parametrize('jit_compile', [True, False])
@pytest.mark.parametrize('name,index,value', [
    ('semantic_logits', 0, np.nan), ('semantic_logits', 0, np.inf),
    ('center_heatmap', 1, np.inf), ('center_heatmap', 1, np.nan),
    ('center_offsets', 2, np.nan), ('center_offsets', 2, -np.inf)])
def test_non_finite_inputs_raise(name, index, value, jit_compile):
  inputs = scenes(15, batch=2, height=16, width=16)
  inputs[index] = inputs[index].copy()
  inputs[index][1].flat[5] = value  # in the second image of the batch
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=f'{name} must be finite'):
    postprocess.merge_fn(jit_compile=jit_compile, **MERGE_ARGS)(*inputs)


def test_minus_inf_logit_is_probability_zero():
  # Documented: -Inf is a valid logit (log-probability 0) and is accepted.
  logits, heat, offsets = scenes(16, batch=1, height=16, width=16)
  logits = logits.copy()
  logits[..., 0] = -np.inf
  got = postprocess.merge_fn(**MERGE_ARGS)(logits, heat, offsets)
  want = np_merge(logits, heat, offsets, **MERGE_ARGS)
  np.testing.assert_array_equal(got[keys.PANOPTIC], want[keys.PANOPTIC])


@pytest.mark.parametrize('jit_compile', [True, False])
def test_logits_finite_per_pixel(jit_compile):
  # One pixel per row; pixels 0-7 lie in instance slot 0 of class 1 (their
  # probability is of class 1), pixels 8-10 in no instance (class 0 picked).
  inf, nan = np.inf, np.nan
  rows = [([0, 1, 2], True), ([nan, 1, 2], False), ([inf, 1, 2], False),
          ([0, inf, 2], False), ([-inf, -inf, -inf], False),
          ([0, -inf, 2], True),   # the picked class has probability 0
          ([inf, -inf, 2], False), ([-inf, 1, 2], True),
          ([-inf, -inf, -inf], False), ([inf, 0, 0], False),
          ([-inf, 0, 0], True)]
  logits = np.array([[r for r, _ in rows]], np.float32)
  instance = np.array([[1] * 8 + [0] * 3], np.int32)
  scores = tf.function(lambda l, i: postprocess.instance_scores(
      l, i, tf.constant([[1]]), tf.constant([[8]]), tf.constant([[1.0]])),
                       jit_compile=jit_compile)
  _, finite = scores(logits, instance)
  np.testing.assert_array_equal(finite[0], [ok for _, ok in rows])


@pytest.mark.parametrize('jit_compile', [True, False])
def test_argmax_and_argmin_ties_go_to_lowest_index(jit_compile):
  # The merge relies on tf.argmax / tf.argmin picking the lowest index among
  # equal values (smaller class id, lower center index); TensorFlow does not
  # document it, so it is checked here on inputs full of exact ties.
  rng = np.random.default_rng(0)
  values = rng.integers(0, 3, (2, 5000, 133)).astype(np.float32)
  argmax = tf.function(lambda v: postprocess.classes._argmax_lowest(v),  # pylint: disable=protected-access
                       jit_compile=jit_compile)
  np.testing.assert_array_equal(argmax(values), np.argmax(values, -1))
  distances = rng.integers(0, 3, (2, 8, 5000)).astype(np.float32)
  argmin = tf.function(lambda d: tf.argmin(d, 1, output_type=tf.int32),
                       jit_compile=jit_compile)
  np.testing.assert_array_equal(argmin(distances), np.argmin(distances, 1))


@pytest.mark.parametrize('jit_compile', [True, False])
def test_argmax_by_keys_equals_numpy_argmax(jit_compile):
  # Exact ties everywhere, ordinary logits, and the values whose bits order
  # differently from their floats: -0.0 == +0.0 (a tie: lower index wins),
  # negatives (whose bit patterns order backwards), +-Inf, subnormals and
  # the extremes of float32.
  rng = np.random.default_rng(1)
  tied = rng.integers(-2, 3, (3, 4000, 19)).astype(np.float32)
  normal = rng.normal(0, 30, (3, 4000, 19)).astype(np.float32)
  special = np.array([0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-45, 1e-38,
                      -1e-38, 3.4e38, -3.4e38, 1.0, -1.0], np.float32)
  picked = rng.choice(special, (3, 4000, 133)).astype(np.float32)
  argmax = tf.function(postprocess.argmax_by_keys, jit_compile=jit_compile)
  for values in (tied, normal, picked):
    np.testing.assert_array_equal(argmax(values), np.argmax(values, -1))
  # By hand: -0.0 at class 0 ties +0.0 at class 1 -> 0; -Inf everywhere ->
  # 0; the largest negative -> its class.
  by_hand = np.array([[-0.0, 0.0, -1.0], [-np.inf] * 3, [-3.0, -2.0, -5.0]],
                     np.float32)
  np.testing.assert_array_equal(argmax(by_hand), [0, 0, 1])


def test_semantic_ties_take_the_smaller_class():
  # Logits 1 for classes 0 and 2 everywhere (a tie), 0 elsewhere: class 0.
  logits = np.zeros((1, 8, 8, 4), np.float32)
  logits[..., [0, 2]] = 1.0
  out = postprocess.merge_fn(thing_class_ids=[3], stuff_area=1)(
      logits, np.zeros((1, 8, 8, 1), np.float32),
      np.zeros((1, 8, 8, 2), np.float32))
  assert (out[keys.SEMANTIC].numpy() == 0).all()


# ------------------------------------------------ ids vs label_divisor ---
def test_top_k_reaching_the_label_divisor_is_refused_at_once():
  # The merge numbers up to top_k instances of a class from 1; with
  # label_divisor 4, a fifth class-1 instance (1 * 4 + 5 = 9) would decode
  # as class 2 and collide with the class-2 instances.
  for top_k, divisor in ((8, 4), (4, 4)):
    with pytest.raises(ValueError, match=f'top_k \\({top_k}\\) must be >= 1 '
                       f'and < label_divisor \\({divisor}\\)'):
      postprocess.merge_fn(thing_class_ids=[1, 2], label_divisor=divisor,
                           top_k=top_k)
  with pytest.raises(ValueError, match='< label_divisor'):
    postprocess.panoptic_merge(
        np.zeros((1, 4, 4, 3), np.float32), np.zeros((1, 4, 4, 1), np.float32),
        np.zeros((1, 4, 4, 2), np.float32), thing_class_ids=[1],
        label_divisor=4, top_k=4)


def test_five_instances_of_a_class_keep_their_class():
  # Five class-1 blobs and one class-2 blob, each with its own center, with
  # top_k 8 < label_divisor 9: class 1 gets ids 9 + 1..5, class 2 id 18 + 1,
  # and every id decodes to its own class.
  semantic = np.zeros((4, 24), int)
  heat = np.zeros((4, 24))
  for k, cls in enumerate([1, 1, 1, 1, 1, 2]):
    semantic[1:3, 4 * k:4 * k + 2] = cls
    heat[1, 4 * k] = 0.9 - 0.1 * k
  out = merge(semantic, heat, num_classes=3, thing_class_ids=[1, 2],
              label_divisor=9, top_k=8)
  values = [out[keys.PANOPTIC][1, 4 * k] for k in range(6)]
  assert values == [10, 11, 12, 13, 14, 19]
  assert [v // 9 for v in values] == [1, 1, 1, 1, 1, 2]
