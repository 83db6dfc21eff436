"""Embedding pipeline overhead and the cost of keeping every layer.

Measured in one run on the same length-sorted batches:

* ``bare``: the model's forward pass alone on pre-tokenized, pre-padded tensors, no hidden
  states kept (the floor any pipeline pays);
* ``one layer``: ``Encoder.encode(..., layers=[last])`` (tokenization, batching, pooling,
  order restoration included);
* ``all layers``: ``Encoder.encode(..., layers=None)``, every hidden state pooled from the same
  forward pass.

Each round runs the three variants once, in a rotating order; ratios are medians of the
per-round ratios (robust to the machine's speed drifting during the run).
Targets (issue: retrieval evaluation): pipeline overhead <= 10 % over bare; all layers <= 1.1x
one layer. Usage: ``python benchmarks/bench_encode.py [--model builtin:multilingual-e5-small]``.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from _common import DATA, header, interleaved_rounds, paired_ratio
from xstilts.data.tatoeba import load_tatoeba
from xstilts.embedding.encoder import Encoder, length_sorted_batches
from xstilts.models import load_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="builtin:multilingual-e5-small")
    ap.add_argument("--langs", default="de,ru,zh")
    ap.add_argument("--per-lang", type=int, default=500, help="pairs per language")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()
    header(f"bench_encode: {args.model}, Tatoeba {args.langs}")

    loaded = load_model(args.model)
    enc = Encoder(loaded.model, loaded.tokenizer, device="cpu", dtype="fp32")
    texts: list[str] = []
    for lang in args.langs.split(","):
        pair = load_tatoeba(DATA, lang)
        texts += pair.x[: args.per_lang] + pair.en[: args.per_lang]
    texts = ["query: " + t for t in texts]

    ids, _ = enc.tokenize(texts)
    batches = [
        enc._batch_tensors([ids[i] for i in b])
        for b in length_sorted_batches([len(x) for x in ids], args.batch_size)
    ]

    @torch.inference_mode()
    def bare() -> None:
        for input_ids, attention in batches:
            enc.model(input_ids=input_ids, attention_mask=attention)

    last = enc.num_hidden_states - 1
    runs = {
        "bare forward": bare,
        "encode, one layer": lambda: enc.encode(texts, layers=[last], batch_size=args.batch_size),
        "encode, all layers": lambda: enc.encode(texts, layers=None, batch_size=args.batch_size),
    }
    bare()  # warm-up
    times = interleaved_rounds(runs, args.rounds)
    n = len(texts)
    print(f"{n} sentences, batch size {args.batch_size}, {args.rounds} rounds (rotating order)")
    print(f"{'run':<22}{'min s':>8}{'median s':>10}{'sent/s':>8}{'ratio':>8}")
    base = times["bare forward"]
    for name, ts in times.items():
        ratio = paired_ratio(ts, base)
        print(
            f"{name:<22}{min(ts):>8.2f}{statistics.median(ts):>10.2f}"
            f"{n / min(ts):>8.0f}{ratio:>8.3f}"
        )
    overhead = paired_ratio(times["encode, one layer"], base) - 1
    all_vs_one = paired_ratio(times["encode, all layers"], times["encode, one layer"])
    print("ratios: median over rounds of the per-round ratio")
    print(f"pipeline overhead over bare forward: {100 * overhead:+.1f}% (target <= 10%)")
    print(f"all layers / one layer: {all_vs_one:.3f}x (target <= 1.1x)")


if __name__ == "__main__":
    main()
