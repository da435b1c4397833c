"""pytest configuration: quiet TensorFlow, tests/ importable for helpers."""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
sys.path.insert(0, os.path.dirname(__file__))
