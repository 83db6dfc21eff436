"""Encoding speed on the 36 XTREME Tatoeba languages: naive vs xstilts vs sentence-transformers.

Each variant runs in its own subprocess (so its peak RSS is its own) on the same sentences
(both sides of every language pair, "query: " prefix, builtin multilingual-e5-small):

* (a) ``naive``: fixed batches of 100 sentences in file order, fp32, one layer kept (the last)
  - the way XTREME's scripts encode;
* (b) ``xstilts``: ``Encoder.encode`` with xstilts' defaults (length-sorted batches of at most 256
  sentences and 8,192 padded tokens, the
  ``--dtype auto`` choice for this machine) keeping ALL hidden states;
* (c) ``sentence-transformers``: ``SentenceTransformer.encode`` on the same model directory
  (mean pooling, last layer, its default batch size 32) - needs ``pip install '.[bench]'``;
* ``xstilts-fp32``: (b) forced to fp32, added when ``--dtype`` resolves to a reduced precision
  on this CPU (native bf16), so the precision's own speed-up is measured in the same run.

Targets (issue: fast encoding): (b) <= 0.5x the time of (a); (b) >= 1.5x faster than (c).
Each variant runs once per round in a rotating order (the machine speed drifts); seconds are
the fastest round, ratios the median of per-round ratios.
Usage: ``python benchmarks/bench_fast_encode.py [--langs xtreme] [--per-lang N] [--rounds 3]
[--variants naive,xstilts,sentence-transformers]``.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from _common import DATA, header, paired_ratio, peak_rss_mb, subprocess_rounds
from xstilts import defaults
from xstilts.hardware import resolve_dtype

VARIANTS = ["naive", "xstilts", "sentence-transformers", "xstilts-fp32"]


def load_texts(langs: str, per_lang: int | None) -> list[str]:
    from xstilts.data.languages import parse_tatoeba_langs
    from xstilts.data.tatoeba import load_tatoeba

    texts: list[str] = []
    for lang in parse_tatoeba_langs(langs):
        pair = load_tatoeba(DATA, lang).head(per_lang)
        texts += pair.x + pair.en
    return ["query: " + t for t in texts]


def run_variant(args: argparse.Namespace) -> dict:
    from xstilts.embedding.encoder import Encoder
    from xstilts.hardware import configure_threads
    from xstilts.models import load_model

    configure_threads()
    texts = load_texts(args.langs, args.per_lang)
    loaded = load_model(args.model)
    model, tok = loaded.model, loaded.tokenizer
    out: dict = {"variant": args.variant, "sentences": len(texts)}
    t0 = time.perf_counter()
    if args.variant == "naive":
        last = model.config.num_hidden_layers
        with torch.inference_mode():
            for i in range(0, len(texts), 100):
                enc = tok(
                    texts[i : i + 100],
                    padding=True,
                    truncation=True,
                    max_length=512,
                    return_tensors="pt",
                )
                h = model(**enc, output_hidden_states=True).hidden_states[last]
                m = enc["attention_mask"].unsqueeze(-1).float()
                _ = ((h * m).sum(1) / m.sum(1)).numpy()
                out["padded"] = out.get("padded", 0) + enc["input_ids"].numel()
                out["tokens"] = out.get("tokens", 0) + int(enc["attention_mask"].sum())
        out["dtype"] = "fp32"
    elif args.variant in ("xstilts", "xstilts-fp32"):
        dtype = "fp32" if args.variant == "xstilts-fp32" else args.dtype
        enc = Encoder(model, tok, device="cpu", dtype=dtype)
        _, stats = enc.encode(
            texts, layers=None, batch_size=args.batch_size, max_tokens_per_batch=args.max_tokens
        )
        out.update(padded=stats.n_padded, tokens=stats.n_tokens, dtype=enc.dtype)
    else:
        from sentence_transformers import SentenceTransformer, models

        word = models.Transformer(loaded.ref.path)
        st = SentenceTransformer(
            modules=[word, models.Pooling(word.get_word_embedding_dimension(), "mean")],
            device="cpu",
        )
        st.encode(texts, batch_size=32, show_progress_bar=False)
        out["dtype"] = "fp32"
    out["seconds"] = time.perf_counter() - t0
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="builtin:multilingual-e5-small")
    ap.add_argument("--langs", default="xtreme")
    ap.add_argument("--per-lang", type=int, default=None, help="Cap sentences per language.")
    ap.add_argument("--batch-size", type=int, default=defaults.BATCH_SIZE, help="xstilts only")
    ap.add_argument("--max-tokens", type=int, default=defaults.MAX_TOKENS_PER_BATCH)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--variants", default=",".join(VARIANTS[:3]), help="comma-separated subset")
    ap.add_argument("--variant", choices=VARIANTS)
    args = ap.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args)))
        return
    header(f"bench_fast_encode: {args.model}, Tatoeba {args.langs}")
    variants = [v for v in args.variants.split(",") if v]
    if unknown := set(variants) - set(VARIANTS):
        raise SystemExit(f"--variants: unknown {sorted(unknown)}; choose from {VARIANTS}")
    reduced = resolve_dtype(args.dtype, torch.device("cpu")) != "fp32"
    if reduced and "xstilts" in variants and "xstilts-fp32" not in variants:
        variants.append("xstilts-fp32")
    runs = subprocess_rounds(__file__, variants, args.rounds)
    secs = {v: [r["seconds"] for r in rs] for v, rs in runs.items()}
    if not runs:
        raise SystemExit("every variant failed (see above)")
    base = "naive" if "naive" in runs else next(iter(runs))
    n = runs[base][0]["sentences"]
    print(f"{n} sentences, {args.rounds} rounds (rotating order); seconds = fastest round")
    cols = f"{'variant':<24}{'seconds':>9}{'sent/s':>9}{'padding':>9}{'peak MB':>9}"
    print(f"{cols}{'vs ' + base:>12}")
    for name, rs in runs.items():
        r = rs[0]
        pad = 1 - r["tokens"] / r["padded"] if r.get("padded") else float("nan")
        best = min(secs[name])
        peak = max(x["peak_rss_mb"] for x in rs)
        ratio = paired_ratio(secs[name], secs[base])
        print(f"{name:<24}{best:>9.1f}{n / best:>9.0f}{100 * pad:>8.0f}%{peak:>9.0f}{ratio:>12.3f}")
    print("ratios: median over rounds of the per-round ratio")
    if "xstilts" not in runs:
        return
    x = runs["xstilts"][0]
    if "naive" in runs:
        ratio = paired_ratio(secs["xstilts"], secs["naive"])
        print(f"xstilts ({x['dtype']}, all layers) / naive: {ratio:.3f} (target <= 0.5)")
    if "sentence-transformers" in runs:
        st = paired_ratio(secs["sentence-transformers"], secs["xstilts"])
        print(f"sentence-transformers / xstilts ({x['dtype']}): {st:.2f}x (target >= 1.5x)")
    if "xstilts-fp32" in runs:
        sp = paired_ratio(secs["xstilts-fp32"], secs["xstilts"])
        print(f"xstilts fp32 / xstilts {x['dtype']}: {sp:.2f}x (the reduced precision's speed-up)")


if __name__ == "__main__":
    main()
