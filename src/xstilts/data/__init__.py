"""Task registry and loaders for retrieval tasks (and, later, intermediate tasks)."""
