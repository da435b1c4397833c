"""Training: distribution strategy, optimizer and the custom training loop."""
