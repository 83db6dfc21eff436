"""Embedding pipeline overhead and the cost of keeping every layer.

Measured in one run on the same length-sorted batches:

* ``bare``: the model's forward pass alone on pre-tokenized, pre-padded tensors, no hidden
  states kept (the floor any pipeline pays);
* ``one layer``: ``Encoder.encode(..., layers=[last])`` (tokenization, batching, pooling,
  order restoration included);
* ``all layers``: ``Encoder.encode(..., layers=None)``, every hidden state pooled from the same
  forward pass.

Targets (issue: retrieval evaluation): pipeline overhead <= 10 % over bare; all layers <= 1.1x
one layer. Usage: ``python benchmarks/bench_encode.py [--model builtin:multilingual-e5-small]``.
"""

from __future__ import annotations

import argparse

import torch

from _common import DATA, best_of_interleaved, header
from xstilts.data.tatoeba import load_tatoeba
from xstilts.encode import Encoder, length_sorted_batches
from xstilts.models import load_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="builtin:multilingual-e5-small")
    ap.add_argument("--langs", default="de,ru,zh")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    header(f"bench_encode: {args.model}, Tatoeba {args.langs}")

    loaded = load_model(args.model)
    enc = Encoder(loaded.model, loaded.tokenizer, device="cpu", dtype="fp32")
    texts: list[str] = []
    for lang in args.langs.split(","):
        pair = load_tatoeba(DATA, lang)
        texts += pair.x + pair.en
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
    times = best_of_interleaved(runs, args.repeat)
    n = len(texts)
    print(f"{n} sentences, batch size {args.batch_size}, best of {args.repeat} (round-robin)")
    print(f"{'run':<22}{'seconds':>9}{'sent/s':>9}{'ratio':>8}")
    base = times["bare forward"]
    for name, t in times.items():
        print(f"{name:<22}{t:>9.2f}{n / t:>9.0f}{t / base:>8.3f}")
    overhead = times["encode, one layer"] / base - 1
    all_vs_one = times["encode, all layers"] / times["encode, one layer"]
    print(f"pipeline overhead over bare forward: {100 * overhead:+.1f}% (target <= 10%)")
    print(f"all layers / one layer: {all_vs_one:.3f}x (target <= 1.1x)")


if __name__ == "__main__":
    main()
