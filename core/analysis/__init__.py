"""What the session computes from a model and a dataset: evaluation under ablations,
per-unit sweeps, attention head scores, and the activation cache they share."""
