"""The package's layout holds its rules (issue 26): small rooms, no arrow
back up, no cycle, a docstring on every module.

Pure ``ast`` over the source files of ``pdl_tf/``: no module is imported,
no TensorFlow. A room is a package of ``pdl_tf`` (``pdl_tf`` itself,
``pdl_tf.data``, ``pdl_tf.data.readers``...) with its own ``.py`` files,
not its subpackages'. Imports are read wherever they stand (top of the
module or inside a function): ``import pdl_tf.x.y``, ``from pdl_tf.x
import y`` (y a module: an import of ``pdl_tf.x.y``) and relative imports.
The dependency rules are those of ARCHITECTURE.md's "Dependency rules".
"""

import ast
import collections
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / 'pdl_tf'
MAX_ROOM_LINES = 1600
# The code that takes tensors and plain arguments (ARCHITECTURE.md).
CORE = ('pdl_tf.model', 'pdl_tf.losses', 'pdl_tf.postprocess',
        'pdl_tf.evaluation')
# What the core never imports.
ABOVE_CORE = ('pdl_tf.config', 'pdl_tf.config_io', 'pdl_tf.data',
              'pdl_tf.training', 'pdl_tf.serving', 'pdl_tf.cli')
# The core's factories read config (and only config): "Only factories
# (model/factory.py, data/pipeline.py, training/) read config".
CORE_FACTORIES = ('pdl_tf.model.factory',)
CONFIG = ('pdl_tf.config', 'pdl_tf.config_io')


def _module_name(path):
  parts = path.relative_to(ROOT).with_suffix('').parts
  if parts[-1] == '__init__':
    parts = parts[:-1]
  return '.'.join(parts)


def _modules():
  """{module name: (path, ast)} of every module of pdl_tf."""
  return {_module_name(path): (path, ast.parse(path.read_text(), str(path)))
          for path in sorted(PACKAGE.rglob('*.py'))}


MODULES = _modules()


def _is_package(name):
  return MODULES[name][0].name == '__init__.py'


def _room(name):
  """The package whose own file ``name`` is (a package is its own room)."""
  return name if _is_package(name) else name.rpartition('.')[0]


def _within(name, prefix):
  return name == prefix or name.startswith(prefix + '.')


def _imports(name, tree):
  """[(line, imported pdl_tf module)] of one module, wherever they stand."""
  package = name if _is_package(name) else name.rpartition('.')[0]
  found = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      found += [(node.lineno, alias.name) for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ''
      if node.level:
        anchor = package.split('.')
        anchor = anchor[:len(anchor) - node.level + 1]
        base = '.'.join(anchor + ([base] if base else []))
      for alias in node.names:
        target = f'{base}.{alias.name}'
        found.append((node.lineno, target if target in MODULES else base))
  result = []
  for line, target in found:
    if not _within(target, 'pdl_tf'):
      continue
    while target not in MODULES:  # an attribute path: its module
      target = target.rpartition('.')[0]
    result.append((line, target))
  return result


GRAPH = {name: _imports(name, tree) for name, (_, tree) in MODULES.items()}


def _top_level_imports(tree):
  """[(line, module name)] of the imports a module runs when imported: in
  its body and in the if/try blocks there, not inside functions."""
  found, nodes = [], list(tree.body)
  while nodes:
    node = nodes.pop(0)
    if isinstance(node, ast.Import):
      found += [(node.lineno, alias.name) for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and not node.level:
      found += [(node.lineno, node.module)]
      found += [(node.lineno, f'{node.module}.{alias.name}')
                for alias in node.names]
    elif isinstance(node, (ast.If, ast.Try)):
      nodes += [n for field in ('body', 'orelse', 'finalbody', 'handlers')
                for n in getattr(node, field, ())]
    elif isinstance(node, ast.ExceptHandler):
      nodes += node.body
  return found


def _where(name, line):
  return f'{MODULES[name][0].relative_to(ROOT)}:{line}'


def test_the_graph_sees_the_imports_of_a_module():
  # The parser's own check: data/pipeline.py imports sources, at top level.
  targets = {t for _, t in GRAPH['pdl_tf.data.pipeline']}
  assert 'pdl_tf.data.sources' in targets
  assert 'pdl_tf.config' in targets


def _room_lines():
  lines = collections.Counter()
  for name, (path, _) in MODULES.items():
    lines[_room(name)] += len(path.read_text().splitlines())
  return lines


def test_no_room_is_over_the_line_limit():
  lines = _room_lines()
  over = [f'{room}: {n} lines (limit {MAX_ROOM_LINES})'
          for room, n in sorted(lines.items())
          if n > MAX_ROOM_LINES]
  assert not over, ('rooms too big; split them into subpackages with one '
                    f'job each: {over}')


def _broken_rules():
  broken = []
  for name, imports in GRAPH.items():
    for line, target in imports:
      if (any(_within(name, c) for c in CORE)
          and any(_within(target, a) for a in ABOVE_CORE)
          and not (name in CORE_FACTORIES and target in CONFIG)):
        broken.append(f'{_where(name, line)} imports {target} (model/, '
                      'losses.py, postprocess/, evaluation/ take tensors '
                      'and plain arguments)')
      if (_within(name, 'pdl_tf.serving')
          and _within(target, 'pdl_tf.training')):
        broken.append(f'{_where(name, line)} imports {target} (serving/ '
                      'never imports training/)')
      if (_within(target, 'pdl_tf.cli')
          and not _within(name, 'pdl_tf.cli')):
        broken.append(f'{_where(name, line)} imports {target} (nothing '
                      'outside cli/ imports cli/)')
  return broken


def test_the_dependency_rules_hold():
  broken = _broken_rules()
  assert not broken, '\n'.join(broken)


def _node(name):
  """A cycle's unit: a room, except that pdl_tf's own modules (config.py,
  losses.py, keys.py...) are each their own (they share no job)."""
  room = _room(name)
  return name if room == 'pdl_tf' and name != 'pdl_tf' else room


def _room_edges():
  """{room: {room it imports: first (module, line) that does}}."""
  edges = collections.defaultdict(dict)
  for name, imports in GRAPH.items():
    for line, target in imports:
      a, b = _node(name), _node(target)
      if a != b:
        edges[a].setdefault(b, (name, line))
  return edges


def _cycles(edges):
  """Every cycle found by a depth-first walk (each once, as a list)."""
  cycles, state, stack = [], {}, []

  def visit(node):
    state[node] = 'open'
    stack.append(node)
    for nxt in sorted(edges.get(node, ())):
      if state.get(nxt) == 'open':
        cycles.append(stack[stack.index(nxt):] + [nxt])
      elif nxt not in state:
        visit(nxt)
    stack.pop()
    state[node] = 'done'

  for node in sorted(edges):
    if node not in state:
      visit(node)
  return cycles


def test_no_import_cycle_between_rooms():
  edges = _room_edges()
  described = []
  for cycle in _cycles(edges):
    steps = [f'{a} -> {b} ({_where(*edges[a][b])})'
             for a, b in zip(cycle, cycle[1:])]
    described.append('cycle: ' + '; '.join(steps))
  assert not described, '\n'.join(described)


def test_no_arrow_back_up_into_a_parent_room():
  # A subpackage serves its parent: pdl_tf.data.readers never imports a
  # module of pdl_tf.data's own (pipeline.py, sources.py...).
  up = []
  for name, imports in GRAPH.items():
    room = _room(name)
    for line, target in imports:
      target_room = _room(target)
      if (target_room != room and _within(room, target_room)
          and target_room != 'pdl_tf'):
        up.append(f'{_where(name, line)} imports {target}, a module of '
                  f'the room above ({target_room})')
  assert not up, '\n'.join(up)


@pytest.mark.parametrize('kind', ['module', 'package'])
def test_every_module_has_a_docstring(kind):
  lacking = [str(path.relative_to(ROOT))
             for name, (path, tree) in MODULES.items()
             if _is_package(name) == (kind == 'package')
             and not ast.get_docstring(tree)]
  assert not lacking, f'no module docstring: {lacking}'


# Rooms the commands import before TensorFlow starts (their checks):
# importing any of their modules must not import TensorFlow.
TF_FREE = ('pdl_tf.config', 'pdl_tf.data.catalog', 'pdl_tf.data.formats',
           'pdl_tf.data.writers.dataset_stats',
           'pdl_tf.data.writers.coco_writers')
TENSORFLOW = ('tensorflow', 'tf_keras', 'tensorflow_datasets', 'official',
              'keras')


def _parents(name):
  """The packages Python imports before the module ``name``."""
  parts = name.split('.')
  return ['.'.join(parts[:i]) for i in range(1, len(parts))]


def _tensorflow_chain(start):
  """The chain of top-level imports from ``start`` to TensorFlow, or None."""
  first = [m for m in _parents(start) + [start] if m in MODULES]
  seen, queue = dict.fromkeys(first), first
  while queue:
    name = queue.pop(0)
    _, tree = MODULES[name]
    for line, target in _top_level_imports(tree):
      if any(_within(target, t) for t in TENSORFLOW):
        chain = [f'{_where(name, line)} imports {target}']
        while seen[name]:
          importer, at = seen[name]
          chain.insert(0, f'{_where(importer, at)} imports {name}')
          name = importer
        return chain
      if not _within(target, 'pdl_tf'):
        continue
      while target not in MODULES:
        target = target.rpartition('.')[0]
      for module in _parents(target) + [target]:
        if module in MODULES and module not in seen:
          seen[module] = (name, line)
          queue.append(module)
  return None


def test_the_rooms_read_before_tensorflow_import_no_tensorflow():
  chains = []
  for name in MODULES:
    if any(_within(name, room) for room in TF_FREE):
      chain = _tensorflow_chain(name)
      if chain:
        chains.append(f'{name}: ' + ' -> '.join(chain))
  assert not chains, '\n'.join(chains)
