"""Search on plain arrays: exact k-NN in memory (:mod:`.knn`), approximate and block-wise search
for large corpora (:mod:`.ann`), margin-based bitext mining (:mod:`.mining`, used by both the
BUCC evaluation and ``xstilts mine``), and ranked retrieval with average precision
(:mod:`.ranking`). No model code."""
