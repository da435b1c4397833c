"""The docs stay true to the code: every config key is documented, and
every relative link of the README and docs/ points at a file that
exists."""

import dataclasses
import pathlib
import re

from pdl_tf import config

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _keys(section, prefix=''):
  for field in dataclasses.fields(section):
    value = getattr(section, field.name)
    if isinstance(value, config.Config):
      yield from _keys(value, f'{prefix}{field.name}.')
    else:
      yield prefix + field.name


def test_every_config_key_is_in_the_configuration_reference():
  text = (ROOT / 'docs' / 'configuration.md').read_text()
  missing = [key for key in _keys(config.ExperimentConfig())
             if f'`{key}`' not in text]
  assert not missing, f'docs/configuration.md lacks {missing}'


def test_relative_links_point_at_files():
  pages = [ROOT / 'README.md', *sorted((ROOT / 'docs').glob('*.md'))]
  broken = []
  for page in pages:
    for target in re.findall(r'\]\(([^)#\s]+)(?:#[^)]*)?\)', page.read_text()):
      if '://' in target or target.startswith('mailto:'):
        continue
      if not (page.parent / target).exists():
        broken.append(f'{page.relative_to(ROOT)} -> {target}')
  assert not broken, broken


def test_the_docs_yaml_files_are_valid_configs(tmp_path):
  # Each ```yaml block that names its file (first line '# NAME.yaml: ...')
  # and holds config sections loads over the defaults as the commands load
  # it (config_io checks every key and type), so a user can paste it as
  # written.
  import yaml  # pylint: disable=g-import-not-at-top
  from pdl_tf import config_io  # pylint: disable=g-import-not-at-top
  sections = {f.name for f in dataclasses.fields(config.ExperimentConfig)}
  blocks = []
  for page in sorted((ROOT / 'docs').glob('*.md')):
    for block in re.findall(r'```yaml\n(.*?)```', page.read_text(), re.S):
      name = re.match(r'# ([\w.-]+\.yaml):', block)
      if name and set(yaml.safe_load(block) or {}) <= sections:
        blocks.append((page.name, name.group(1), block))
  assert len(blocks) >= 2, blocks  # own_data.md's two files at least
  for page, name, block in blocks:
    path = tmp_path / name
    path.write_text(block)
    try:
      config_io.load_config(config_files=[str(path)])
    except Exception as e:  # pylint: disable=broad-except
      raise AssertionError(f'docs/{page}: {name} does not load: {e}') from e
