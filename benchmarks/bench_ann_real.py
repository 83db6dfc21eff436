"""Approximate search on real sentence embeddings: recall@4 against speed, at several sizes.

``bench_ann_random.py`` shows that on uniformly random unit vectors no approximate index reaches
recall@4 >= 0.95 cheaper than exact search: random vectors have no neighbourhood structure. Real
sentence embeddings do. This script measures the same trade-off on them:

* ``pool``: ``--n`` distinct non-English sentences (side x: XNLI dev/test, PAWS-X dev/test,
  Tatoeba, BUCC zh) and ``--n`` distinct English sentences (side y: SST-2, MNLI, QQP, XNLI,
  PAWS-X, Tatoeba, BUCC en) from the offline data, shuffled with ``--seed``; what each side
  holds per source is printed. The sides share translations (XNLI, PAWS-X, Tatoeba, BUCC), so
  mining x against y is the cross-lingual setting of BUCC, at 10x its size;
* ``encode``: both sides embedded once by ``xstilts embed`` with the builtin
  multilingual-e5-small (last layer, mean pooling, ``query: `` prefix, fp32, at most
  ``--max-length`` tokens); the stores live in ``--work`` and an interrupted encode resumes;
* ``curve``: for each size in ``--sizes`` (the first rows of each side), an index of every
  approximate kind (IVF-Flat, IVF-PQ, HNSW-Flat) over side y is searched with ``--queries``
  rows of side x at several knob values: recall@4 against exact search, milliseconds a query,
  and the projected speed-up of mining ``n x n`` both ways (``2 n exact / (2 build + 2 n
  per-query)``, as in ``bench_ann_random.py``). A size above ``--n`` indexes side y followed
  by side x's rows after the queries (a mixed-language corpus of up to ``2 n - queries``);
* ``mine``: real margin mining of the largest size both ways, exact vs IVF tuned to 0.95
  recall@4 (xstilts' own tuner, with its exact fall-back) vs HNSW tuned the same way: seconds,
  speed-up, recall@4 as each run reports it, and the share of the exact run's pairs found.

Everything printed comes from one run (ratios never mix runs); encoding is not timed.

Usage: ``python benchmarks/bench_ann_real.py --work DIR [--n 100000]
[--only pool,encode,curve,mine] [--sizes 10000,30000,100000]``; the record in
docs/benchmarks.md ran ``--only curve,mine`` after the encode, then ``--only curve --sizes 198000``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from _common import DATA, header
from bench_ann_random import sweep
from xstilts.data.bucc import load_bucc_split
from xstilts.embedding.store import load_layer
from xstilts.io import read_lines
from xstilts.retrieval.ann import IndexSpec
from xstilts.retrieval.knn import normalize
from xstilts.retrieval.mining import mine_with_index

MODEL = "builtin:multilingual-e5-small"
XNLI_LANGS = ("ar", "bg", "de", "el", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")
PAWSX_LANGS = ("de", "es", "fr", "ja", "ko", "zh")


def _tsv_columns(path: Path, columns: tuple[int, ...], skip_header: bool = False) -> list[str]:
    """The given columns of every row of a TSV file, flattened (quotes are text, not syntax)."""
    out: list[str] = []
    with path.open(encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        if skip_header:
            next(rows)
        for row in rows:
            out += [row[c] for c in columns if c < len(row)]
    return out


def _glue_json(path: Path) -> list[str]:
    """Both texts of every row of the GLUE prompt-tuning JSON files (MNLI, QQP)."""
    rows = json.loads(path.read_text(encoding="utf-8")).values()
    return [r[key] for r in rows for key in ("text_a", "text_b")]


def _bucc(side: str) -> list[str]:
    split = load_bucc_split(DATA, "zh", "dev")
    return split.x if side == "zh" else split.en


def _pairs(task: str, langs: tuple[str, ...]) -> list[str]:
    """Both sentences of every dev and test row of XNLI / PAWS-X in ``langs``."""
    return [
        s
        for lang in langs
        for split in ("dev", "test")
        for s in _tsv_columns(DATA / task / f"{split}-{lang}.tsv", (0, 1))
    ]


def _glue(task: str) -> list[str]:
    files = (DATA / task / f"glue_pretrain_{split}.json" for split in ("train", "dev"))
    return [s for f in files for s in _glue_json(f)]


def sources() -> dict[str, dict[str, list[str]]]:
    """Every offline sentence we have, by side (x: not English, y: English) and source."""
    tatoeba = sorted((DATA / "tatoeba").glob("tatoeba.*-eng.*"))
    x = {
        "xnli": _pairs("xnli", XNLI_LANGS),
        "pawsx": _pairs("pawsx", PAWSX_LANGS),
        "tatoeba": [s for p in tatoeba if not p.name.endswith(".eng") for s in read_lines(p)],
        "bucc": _bucc("zh"),
    }
    y = {
        "sst2": _tsv_columns(DATA / "sst2" / "train_full.tsv", (0,), skip_header=True),
        "mnli": _glue("mnli"),
        "qqp": _glue("qqp"),
        "xnli": _pairs("xnli", ("en",)),
        "pawsx": _pairs("pawsx", ("en",)),
        "tatoeba": [s for p in tatoeba if p.name.endswith(".eng") for s in read_lines(p)],
        "bucc": _bucc("en"),
    }
    return {"x": x, "y": y}


def build_pool(by_source: dict[str, list[str]], n: int, seed: int) -> tuple[list[str], Counter]:
    """``n`` distinct sentences (first source wins a duplicate), shuffled; counts per source."""
    seen: dict[str, str] = {}
    for name, texts in by_source.items():
        for text in texts:
            text = " ".join(text.split())  # one line, no tabs
            if text and text not in seen:
                seen[text] = name
    texts = list(seen)
    if len(texts) < n:
        raise SystemExit(f"only {len(texts)} distinct sentences on this side, --n {n} asked")
    order = np.random.default_rng(seed).permutation(len(texts))[:n]
    chosen = [texts[i] for i in order]
    return chosen, Counter(seen[t] for t in chosen)


def stage_pool(work: Path, n: int, seed: int) -> None:
    """Write ``x.txt`` and ``y.txt`` (atomically: an interrupted run leaves no half file)."""
    print(f"\n## pool: {n} distinct sentences a side (seed {seed})")
    for side, by_source in sources().items():
        chosen, counts = build_pool(by_source, n, seed)
        path = work / f"{side}.txt"
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(t + "\n" for t in chosen), encoding="utf-8")
        os.replace(tmp, path)
        words = sum(len(t.split()) for t in chosen) / n
        parts = ", ".join(f"{k} {v}" for k, v in counts.most_common())
        name = "not English" if side == "x" else "English"
        print(f"{side} ({name}): {parts}; {words:.1f} words a line")


def stage_encode(work: Path, max_length: int) -> None:
    """Embed both sides with the real CLI (resumable stores ``emb-x``/``emb-y``)."""
    print(f"\n## encode: {MODEL}, last layer, mean pooling, 'query: ', fp32, <={max_length} tokens")
    for side in ("x", "y"):
        cmd = [
            sys.executable, "-m", "xstilts", "embed", str(work / f"{side}.txt"), "--model", MODEL,
            "--out", str(work / f"emb-{side}"), "--prefix", "query: ", "--dtype", "fp32",
            "--max-length", str(max_length),
        ]  # fmt: skip
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
        print(f"{side}: {time.perf_counter() - t0:.0f} s (resumed runs count only their rest)")


def load_side(work: Path, side: str) -> np.ndarray:
    """A side's last-layer vectors, normalised once (searches then skip it: ``norm=False``)."""
    store = work / f"emb-{side}"
    return normalize(np.asarray(load_layer(store, 12), dtype=np.float32))


REAL_SWEEPS = {"ivf": [1, 2, 4, 8, 16, 64], "ivfpq": [4, 16, 64], "hnsw": [16, 32, 64, 128, 256]}


def stage_curve(x: np.ndarray, y: np.ndarray, sizes: list[int], queries: int, seed: int) -> None:
    """The sweep at each index size. Sizes beyond side y's rows index y followed by the x rows
    after the queries (a mixed-language corpus): the only way to reach 200k real vectors here."""
    corpus = np.concatenate([y, x[queries:]]) if max(sizes) > len(y) else y
    for n in sizes:
        what = "English rows" if n <= len(y) else f"rows ({len(y)} English, the rest not)"
        print(f"\n## recall@4 against cost: index over {n} {what}, {queries} queries"
              " (non-English rows)")  # fmt: skip
        rows = sweep(corpus[:n], x[:queries], 4, seed, REAL_SWEEPS)
        ok = [r for r in rows if r["recall"] >= 0.95]
        best = max(ok, key=lambda r: r["projected"], default=None)
        if best is None:
            print("no setting reaches recall@4 0.95 at this size")
        else:
            verdict = "faster" if best["projected"] > 1 else "not faster"
            print(f"best at recall@4 >= 0.95: {best['kind']} {best['knob']}, projected"
                  f" {best['projected']:.2f}x ({verdict} than exact)")  # fmt: skip


def stage_mine(x: np.ndarray, y: np.ndarray) -> None:
    """Margin mining x/y both ways per index spec; pairs compared with the exact run's."""
    n = len(x)
    print(f"\n## margin mining {n} x {n} both ways (k=4, ratio margin): exact vs approximate")
    print(f"{'index':<24}{'seconds':>9}{'speedup':>9}{'recall@4 x/y':>15}{'exact pairs':>13}"
          "  knob x/y")  # fmt: skip
    specs = [
        ("exact (faiss fp32)", IndexSpec("exact")),
        ("ivf, tuned to 0.95", IndexSpec("ivf", target_recall=0.95)),
        ("hnsw, tuned to 0.95", IndexSpec("hnsw", target_recall=0.95)),
    ]
    base = None
    for name, spec in specs:
        t0 = time.perf_counter()
        pairs, reports = mine_with_index(
            x, y, spec, k=4, recall_sample=1000 if spec.approximate else 0, norm=False
        )
        seconds = time.perf_counter() - t0
        got = set(zip(pairs.src.tolist(), pairs.tgt.tolist(), strict=True))
        base = base or (seconds, got)
        recall = "/".join(f"{r['recall@4']:.3f}" if "recall@4" in r else "-" for r in reports)
        knob = "/".join(str(r.get("nprobe", r.get("efSearch", "-"))) for r in reports)
        if any("fallback" in r for r in reports):
            knob += " (fell back to exact)"
        share = len(base[1] & got) / len(base[1])
        print(f"{name:<24}{seconds:>9.1f}{base[0] / seconds:>8.2f}x{recall:>15}{share:>13.4f}"
              f"  {knob}")  # fmt: skip
    print(f"(exact run: {len(base[1])} pairs; speedup = exact seconds / seconds, this run)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, required=True, help="pool, embeddings (kept between runs)")
    ap.add_argument("--only", default="pool,encode,curve,mine")
    ap.add_argument("--n", type=int, default=100_000, help="sentences a side")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--sizes", default="10000,30000,100000", help="curve: index sizes")
    ap.add_argument("--queries", type=int, default=2000, help="curve: queries a size")
    args = ap.parse_args()
    only = set(args.only.split(","))
    header(f"bench_ann_real: {args.n} x {args.n} real sentences, {MODEL}")
    args.work.mkdir(parents=True, exist_ok=True)
    if "pool" in only:
        stage_pool(args.work, args.n, args.seed)
    if "encode" in only:
        stage_encode(args.work, args.max_length)
    if only & {"curve", "mine"}:
        x, y = load_side(args.work, "x"), load_side(args.work, "y")
        if "curve" in only:
            stage_curve(x, y, [int(s) for s in args.sizes.split(",")], args.queries, args.seed)
        if "mine" in only:
            stage_mine(x, y)


if __name__ == "__main__":
    main()
