"""The dry-run estimate of search time vs the search time an evaluation measures.

``xstilts run SPEC --dry-run`` counts each evaluation's searches (BUCC's margin mining both
ways, Tatoeba's top-1 both ways, LAReQA's full ranking of its pool) for every evaluated layer:
each kind and size of search is timed on random unit vectors of the model's width, on up to
1,024 queries against the full-size corpus, and scaled by the number of queries
(:func:`xstilts.experiment.estimate.task_search_seconds`). This script checks that against the
truth, in one run: per task, that estimate times the number of evaluated layers, then a real
``xstilts evaluate`` of the same request (full sets, every layer, embedding cache off) and the
``search_s`` its results file reports (everything inside the task's search stage: the searches
plus threshold tuning and per-sentence items). The estimate is made first, so the evaluation's
encoding has not warmed anything for it.

Usage: ``python benchmarks/bench_search_estimate.py [--width 384] [--model MODEL]
[--tasks tatoeba,bucc2018,bucc2018-mteb,lareqa]``. By default the model is an XLM-R with
random weights, one layer ``--width`` wide (e5-small's width) and XLM-R's tokenizer, built in a
temporary directory: search time depends on the vectors' width and count, not on what the model
learnt, and one layer keeps encoding short (two hidden states are searched). ``--model``
evaluates a real one instead (every text is encoded: slow on a CPU).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import DATA, header
from xstilts.experiment.estimate import task_search_seconds
from xstilts.hardware import configure_threads
from xstilts.layers import resolve_layers
from xstilts.models import resolve_model
from xstilts.tasks.run import evaluate_model
from xstilts.tasks.settings import EvalSettings, TaskRequest

REQUESTS = {
    "tatoeba": TaskRequest(task="tatoeba", langs="xtreme-r"),
    "bucc2018": TaskRequest(task="bucc2018", langs=["zh"]),
    "bucc2018-mteb": TaskRequest(task="bucc2018", langs=["zh"], protocol="mteb"),
    "lareqa": TaskRequest(task="lareqa", doc_max_length=92),
}


def random_model(width: int, out: Path) -> str:
    """A one-layer XLM-R with random weights (seed 0), ``width`` wide, with XLM-R's tokenizer
    (from the builtin tiny model), saved to ``out``."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    config = XLMRobertaConfig(
        vocab_size=250002,
        hidden_size=width,
        num_hidden_layers=1,
        num_attention_heads=max(1, width // 64),
        intermediate_size=4 * width,
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    torch.manual_seed(0)
    XLMRobertaModel(config).save_pretrained(out)
    resolve_model("builtin:tiny-random-xlmr").load_tokenizer().save_pretrained(out)
    return str(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="default: a random one-layer XLM-R")
    ap.add_argument("--width", type=int, default=384)
    ap.add_argument("--tasks", default=",".join(REQUESTS))
    args = ap.parse_args()
    configure_threads()
    names = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [n for n in names if n not in REQUESTS]
    if unknown:
        ap.error(f"unknown task {unknown[0]!r}; choose from {', '.join(REQUESTS)}")
    tmp = tempfile.TemporaryDirectory()
    model = args.model or random_model(args.width, Path(tmp.name) / "model")
    label = args.model or "random 1-layer XLM-R"
    ref = resolve_model(model)
    dim = int(ref.config.hidden_size)
    settings = EvalSettings(layers="all", cache=False, max_length=128)
    n_layers = len(resolve_layers(settings.layers, ref.num_hidden_states))
    header(f"search time: dry-run estimate vs measured, {label} ({dim} wide)")
    print(f"layers evaluated: {n_layers} (all hidden states); data {DATA}")
    print(f"{'task':<15}{'estimate s':>12}{'(took s)':>10}{'measured s':>12}{'ratio':>8}")
    for name in names:
        request = REQUESTS[name]
        t0 = time.perf_counter()
        per_layer = task_search_seconds(request, settings, DATA, dim)
        took = time.perf_counter() - t0
        assert per_layer is not None
        estimate = n_layers * per_layer
        res = evaluate_model(model, settings, request, DATA)
        measured = res["timings"]["search_s"]
        print(
            f"{name:<15}{estimate:>12.2f}{took:>10.2f}{measured:>12.2f}{estimate / measured:>8.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
