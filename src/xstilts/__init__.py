"""xstilts: intermediate-task training and zero-shot cross-lingual retrieval evaluation.

The package is organised as one direction of dependency::

    cli -> experiment -> (train, evaluate) -> (encode, search, metrics, data, models)

``metrics`` and ``search`` import no model code and work on plain numpy arrays.
"""

__version__ = "0.1.0"
