"""Texts to vectors: the encoder (every hidden state from one forward pass), the settings that
decide the vectors, the one on-disk store format (the cache is a folder of stores, ``embed``
writes one), and streaming embedding of files of any size."""
