"""Encoding defaults shared by every command that embeds text (kept free of heavy imports).

Batches are bounded by padded tokens, not by a fixed sentence count: length-sorted short
sentences then travel in batches of up to ``BATCH_SIZE`` (large matrix products, 12-15 %
less time than batches of 32 on a 2-core CPU in ``benchmarks/bench_fast_encode.py``), long ones
in small batches, so memory stays bounded by ``MAX_TOKENS_PER_BATCH`` whatever the lengths;
a batch also ends before a text that would be padded by more than ``MAX_PADDING`` of its width.
Batching changes only floating-point rounding, not results (and no cache key).
"""

BATCH_SIZE = 256  # the most sentences in one forward pass
MAX_TOKENS_PER_BATCH = 8192  # the most padded tokens in one forward pass; 0 = no token bound
# With a token bound: the most padding a text gets, as a share of its batch's longest text (a
# batch ends before a shorter text). None: batches filled to the bounds whatever the padding.
# Batches filled to the bounds made the quickstart's Tatoeba texts 39 % padding; 0.1 cut that to
# 4 % and encoding time by 1.56x on a 2-core CPU (benchmarks/bench_padding.py, docs/benchmarks.md).
MAX_PADDING = 0.1
