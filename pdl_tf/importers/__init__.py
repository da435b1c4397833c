"""Importers of checkpoints published by other code bases."""
