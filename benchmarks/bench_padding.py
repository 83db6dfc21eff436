"""Encoding with a padding bound per batch vs batches filled to the token bound.

Length-sorted batches filled up to 256 sentences / 8,192 padded tokens take their width from
their longest sentence, so a few long Tatoeba sentences pad hundreds of short ones (39 % of
the tokens fed for the quickstart's Tatoeba subset were padding). ``max_padding`` ends a batch
before a sentence that would be padded by more than that share of the batch's longest one.
This script encodes what a Tatoeba evaluation encodes (per language, both sides of the first
``--pairs`` pairs, in one call, as ``xstilts evaluate`` does) with the builtin e5-small, with
``max_padding`` None (the old batching) and each of ``--shares`` (default 0.1, the default
of ``xstilts``), in rounds of rotating order; it
prints the padding share, the seconds and the ratio (median of per-round ratios), and the
largest difference between the two embeddings (fp32: batch composition changes only rounding).

Usage: ``python benchmarks/bench_padding.py [--langs de,fr,...] [--pairs 300] [--rounds 2]
[--shares 0.1,0.25,0.5]``.
"""

from __future__ import annotations

import argparse
from functools import partial

import numpy as np

from _common import DATA, header, interleaved_rounds, paired_ratio
from xstilts.data.tatoeba import load_tatoeba
from xstilts.embedding.encoder import Encoder
from xstilts.hardware import configure_threads
from xstilts.models import resolve_model

QUICKSTART_LANGS = "de,fr,ru,ar,hi,zh,ja,th,ka,sw"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="builtin:multilingual-e5-small")
    ap.add_argument("--langs", default=QUICKSTART_LANGS)
    ap.add_argument("--pairs", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--shares", default="0.1", help="max_padding values to compare")
    args = ap.parse_args()
    variants: dict[str, float | None] = {"filled": None}
    variants.update({f"max_padding {v}": float(v) for v in args.shares.split(",")})
    configure_threads()
    loaded = resolve_model(args.model).load()
    enc = Encoder(loaded.model, loaded.tokenizer, device="cpu", dtype="fp32")
    texts = []
    for lang in args.langs.split(","):
        pair = load_tatoeba(DATA, lang).head(args.pairs)
        texts.append(pair.x + pair.en)
    header(f"padding bound per batch, {args.model}, Tatoeba {args.langs}, {args.pairs} pairs")
    out: dict[str, list[np.ndarray]] = {}
    padding: dict[str, float] = {}

    def run(name: str) -> None:
        vecs, fed, real = [], 0, 0
        for group in texts:
            v, stats = enc.encode(group, layers=[8, 12], prefix="query: ",
                                  max_padding=variants[name])  # fmt: skip
            vecs.append(v)
            fed, real = fed + stats.n_padded, real + stats.n_tokens
        out[name], padding[name] = vecs, 1 - real / fed

    times = interleaved_rounds({name: partial(run, name) for name in variants}, args.rounds)
    for name in variants:
        print(
            f"{name:<18} padding {padding[name]:6.3f}  seconds {min(times[name]):7.1f} (fastest)"
            f"  speed vs filled {paired_ratio(times['filled'], times[name]):.2f}x"
        )
    for name in list(variants)[1:]:
        pairs = zip(out["filled"], out[name], strict=True)
        diff = max(float(np.abs(a - b).max()) for a, b in pairs)
        print(f"largest |difference| of the embeddings, {name} vs filled: {diff:.2e}")


if __name__ == "__main__":
    main()
