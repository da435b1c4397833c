"""Command-line entry points; argument parsing only, logic lives elsewhere."""
