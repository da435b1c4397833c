"""Helpers shared by tests: running a Python snippet in a fresh process."""

import os
import subprocess
import sys
import textwrap


def run_python(code, timeout=300):
  """Runs ``code`` in a new interpreter (fresh TensorFlow state).

  Returns the CompletedProcess; stdout and stderr are captured as text.
  """
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  return subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                        capture_output=True, text=True, timeout=timeout,
                        env=env, check=False)
