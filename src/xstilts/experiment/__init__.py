"""Experiments: a YAML spec -> a grid of (model, intermediate setting, seed) cells -> a store."""
