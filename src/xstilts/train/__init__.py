"""Intermediate-task training: featurization, heads, task sampling, the training loop."""
