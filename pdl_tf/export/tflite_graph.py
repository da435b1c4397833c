"""Reading and repairing converted .tflite files: which ops belong to the
network (their output tensors are named under the model's name scope,
e.g. ``panoptic_deep_lab/``) and which to the merge (every other op), so
that the export can keep the merge float and check that it did.
"""

import collections

import numpy as np
from tensorflow.lite.tools import flatbuffer_utils

from pdl_tf import keys

# Element types a merge op may read or write in every file.
_PLAIN_TYPES = ('FLOAT32', 'INT32', 'INT64', 'BOOL')
_BOUNDARY_OPS = ('QUANTIZE', 'DEQUANTIZE')

Tensor = collections.namedtuple('Tensor', 'id name dtype data')
Op = collections.namedtuple('Op', 'subgraph type inputs outputs')


def ops(content):
  """Every operator of a .tflite flatbuffer, as ``Op`` tuples of ``Tensor``
  tuples (``data``: a constant's bytes as uint8 numpy, else None)."""
  model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
  found = []
  for index, subgraph in enumerate(model.subgraphs):
    def tensors(ids, subgraph=subgraph):
      described = []
      for i in ids:
        if i < 0:
          continue
        tensor = subgraph.tensors[i]
        data = model.buffers[tensor.buffer].data
        described.append(Tensor(
            (index, i), tensor.name.decode(),
            flatbuffer_utils.type_to_name(tensor.type),
            None if data is None or not len(data) else np.asarray(data)))
      return described
    for op in subgraph.operators:
      found.append(Op(index, flatbuffer_utils.opcode_to_name(
          model, op.opcodeIndex), tensors(op.inputs), tensors(op.outputs)))
  return found


def in_network(op, network_prefix):
  """True if one of ``op``'s outputs is named under ``network_prefix``."""
  return any(t.name.startswith(network_prefix) for t in op.outputs)


def exact_in_float16(data):
  """True if float16 constant bytes hold only values that cannot be a
  rounded float32: 0, NaN and integers up to 2048 (conservative: 0.5 is
  exact too but counts as rounded). Infinity counts as rounded: the
  converter writes float32 infinity as 65504, float16's largest value."""
  values = np.frombuffer(data.tobytes(), np.float16).astype(np.float64)
  if np.isinf(values).any():
    return False
  finite = values[np.isfinite(values)]
  return bool(np.all((finite == np.round(finite)) & (np.abs(finite) <= 2048)))


def quantized_merge_ops(content, network_prefix):
  """The ops outside the network that read or write a quantized or float16
  tensor, or a constant float16 could not hold exactly (an empty list for
  a float merge).

  Network ops are those with an output under ``network_prefix``; QUANTIZE
  and DEQUANTIZE of activations are the boundary; a DEQUANTIZE of a
  constant belongs to the ops it feeds.

  Args:
    content: bytes of a .tflite file.
    network_prefix: the network's name scope, ``model.name + '/'``.

  Returns:
    list of (op type, first output name, element types) tuples.
  """
  every = ops(content)
  consumers = collections.defaultdict(list)
  for op in every:
    for tensor in op.inputs:
      consumers[tensor.id].append(op)
  bad = []
  for op in every:
    types = [t.dtype for t in op.inputs + op.outputs]
    if op.type in _BOUNDARY_OPS:
      constant = op.inputs[0].data is not None
      feeds_merge = any(not in_network(user, network_prefix)
                        for user in consumers[op.outputs[0].id])
      if constant and feeds_merge and not (
          op.inputs[0].dtype == 'FLOAT16' and
          exact_in_float16(op.inputs[0].data)):
        bad.append((op.type, op.outputs[0].name, types))
    elif not in_network(op, network_prefix) and any(
        dtype not in _PLAIN_TYPES for dtype in types):
      bad.append((op.type, op.outputs[0].name if op.outputs else '', types))
  return bad


def network_output_tensors(content, network_prefix):
  """Indices of the float32 tensors the merge reads from the network.

  Run the file with ``experimental_preserve_all_tensors=True`` and read
  them with ``get_tensor``: the network's outputs exactly as the merge sees
  them (dequantized in the int8 file).

  Args:
    content: bytes of a .tflite file from ``convert``.
    network_prefix: the network's name scope.

  Returns:
    dict: ``keys.SEMANTIC_LOGITS``, ``keys.CENTER_HEATMAP`` and
    ``keys.CENTER_OFFSETS`` -> tensor index in the main subgraph, told
    apart by their channels (C, 1 and 2).

  Raises:
    ValueError: not exactly three such tensors, or C is 1 or 2.
  """
  main = [op for op in ops(content) if op.subgraph == 0]
  network = {t.id for op in main if in_network(op, network_prefix)
             for t in op.outputs}
  for op in main:  # a DEQUANTIZE of a network output is on the network side
    if op.type == 'DEQUANTIZE' and op.inputs[0].id in network:
      network.add(op.outputs[0].id)
  read = {t.id: t for op in main
          if op.type not in _BOUNDARY_OPS and not in_network(
              op, network_prefix) for t in op.inputs if t.id in network}
  model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
  found = {}
  for (_, index), tensor in read.items():
    channels = int(model.subgraphs[0].tensors[index].shape[-1])
    key = {1: keys.CENTER_HEATMAP, 2: keys.CENTER_OFFSETS}.get(
        channels, keys.SEMANTIC_LOGITS)
    if key in found or tensor.dtype != 'FLOAT32':
      raise ValueError(f'Cannot tell the network outputs apart: {read}.')
    found[key] = index
  if len(found) != 3:
    raise ValueError(f'Expected 3 network outputs read by the merge, found '
                     f'{sorted(found)}.')
  return found


def float_denylist(calibrated, network_prefix, float_scopes=()):
  """Node names and op types the int8 quantizer must leave float.

  Args:
    calibrated: a calibrated float .tflite (a calibrate-only conversion,
      ``tflite.int8_model``).
    network_prefix: the network's name scope.
    float_scopes: name fragments (e.g. ``'center_head/classifier'``) of
      network ops to keep float as well.

  Returns:
    (node names, op types): every merge op (multi-output merge ops by
    their type), plus the network ops named by ``float_scopes``.

  Raises:
    ValueError: a float scope matches no op, or a multi-output merge op's
      type also occurs in the network (it cannot be denylisted by type).
  """
  nodes, op_types, network_types = set(), set(), set()
  used = {scope: False for scope in float_scopes}
  for op in ops(calibrated):
    name = ';'.join(t.name for t in op.outputs)
    if in_network(op, network_prefix):
      network_types.add(op.type)
      for scope in float_scopes:
        if network_prefix + scope in name:
          nodes.add(name)
          used[scope] = True
    elif len(op.outputs) == 1:
      nodes.add(name)
    else:
      op_types.add(op.type)
  unused = [scope for scope, hit in used.items() if not hit]
  if unused:
    raise ValueError(f'float_scopes {unused} match no network op under '
                     f'{network_prefix!r}.')
  shared = op_types & network_types
  if shared:
    raise ValueError(f'Merge ops of types {sorted(shared)} have several '
                     'outputs (no node name to denylist) and occur in the '
                     'network too.')
  return sorted(nodes), sorted(op_types)



def _is_constant(model, tensor):
  data = model.buffers[tensor.buffer].data
  return data is not None and len(data) > 0


def _as_float16(values):
  """float32 values as the float16 converter writes them (saturating)."""
  return np.clip(values, -65504, 65504).astype(np.float16)


def _float32_constants(model):
  """shape -> {float32 bytes} of every float32 constant of ``model``."""
  found = collections.defaultdict(set)
  for subgraph in model.subgraphs:
    for tensor in subgraph.tensors:
      if (flatbuffer_utils.type_to_name(tensor.type) == 'FLOAT32' and
          _is_constant(model, tensor)):
        found[tuple(tensor.shape)].add(
            model.buffers[tensor.buffer].data.tobytes())
  return found


def restore_merge_constants(content, reference, network_prefix):
  """The float16 file with its merge's constants put back to float32.

  TFLite's float16 conversion stores every float32 constant as float16
  with a DEQUANTIZE, the merge's too: its infinities become 65504 (which
  breaks the grouping at large sizes: a pixel whose squared distance to
  every center exceeds 65504 would join none) and its 0.1 threshold
  0.09998. Each DEQUANTIZE of a constant that feeds a merge op is removed
  and its output made a float32 constant again, with the value of the
  float32 constant of ``reference`` (the float32 conversion of the same
  function) that rounds to its float16 value.

  Args:
    content: bytes of the float16 .tflite.
    reference: bytes of the float32 .tflite of the same function.
    network_prefix: the network's name scope.

  Returns:
    bytes, the repaired .tflite.

  Raises:
    ValueError: no float32 constant, or several different ones, round to
      a merge constant.
  """
  model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
  originals = _float32_constants(
      flatbuffer_utils.read_model_from_bytearray(bytearray(reference)))
  opcode = lambda op: flatbuffer_utils.opcode_to_name(model, op.opcodeIndex)
  for subgraph in model.subgraphs:
    merge_inputs = {
        i for op in subgraph.operators if not any(
            subgraph.tensors[o].name.decode().startswith(network_prefix)
            for o in op.outputs) for i in op.inputs}
    kept = []
    for op in subgraph.operators:
      source = subgraph.tensors[op.inputs[0]] if len(op.inputs) else None
      if (opcode(op) != 'DEQUANTIZE' or op.outputs[0] not in merge_inputs or
          not _is_constant(model, source)):
        kept.append(op)
        continue
      stored = model.buffers[source.buffer].data.view(np.float16)
      matches = [data for data in originals[tuple(source.shape)]
                 if np.array_equal(_as_float16(np.frombuffer(data, np.float32)),
                                   stored, equal_nan=True)]
      name = subgraph.tensors[op.outputs[0]].name.decode()
      if len(matches) != 1:
        raise ValueError(f'{len(matches)} float32 constants of the reference '
                         f'file round to the float16 constant of {name!r}.')
      buffer = type(model.buffers[0])()
      buffer.data = np.frombuffer(matches[0], np.uint8).copy()
      model.buffers.append(buffer)
      subgraph.tensors[op.outputs[0]].buffer = len(model.buffers) - 1
    subgraph.operators = kept
  return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
