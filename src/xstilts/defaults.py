"""Encoding defaults shared by every command that embeds text (kept free of heavy imports).

Batches are bounded by padded tokens, not by a fixed sentence count: length-sorted short
sentences then travel in batches of up to ``BATCH_SIZE`` (large matrix products, 12-15 %
less time than batches of 32 on a 2-core CPU in ``benchmarks/bench_fast_encode.py``), long ones
in small batches, so memory stays bounded by ``MAX_TOKENS_PER_BATCH`` whatever the lengths.
"""

BATCH_SIZE = 256  # the most sentences in one forward pass
MAX_TOKENS_PER_BATCH = 8192  # the most padded tokens in one forward pass; 0 = no token bound
