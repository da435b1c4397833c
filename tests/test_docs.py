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
