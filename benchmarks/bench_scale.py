"""Scale: streaming embedding memory, exact vs IVF mining, BUCC F1 with IVF, 1 vs 2 processes.

Everything printed comes from one run of this script (ratios are never combined across runs):

* ``rss``: peak RSS of ``xstilts embed`` (a fresh process per size, read with ``os.wait4``) on
  20k and 200k synthetic lines (Tatoeba sentences numbered to be distinct) with the builtin
  ``tiny-random-xlmr``; the issue's target is growth < 1.5x for 10x the lines;
* ``procs``: the 20k file embedded again by ``accelerate launch --multi_gpu --num_processes 2``
  (two CPU processes over gloo on a machine without GPUs); arrays compared with the one-process
  output (byte-identical, else the largest difference);
* ``mining``: margin mining of N x N random unit vectors (d=384) with the exact index and with
  IVF (nprobe tuned to a 0.95 recall@4 target, which falls back to exact search when IVF cannot
  reach it cheaper, and fixed nprobe values): time, speedup over exact, recall@4 measured
  against exact search on 1000 queries per direction, and the share of the exact run's mined
  pairs that the IVF run also mines;
* ``bucc``: the BUCC 2018 zh-en sample (8,624 x 13,589 lines) with multilingual-e5-small
  embeddings (last layer, ``query: `` prefix) saved once by
  ``xstilts evaluate --task bucc2018 --langs zh --layer last --prefix "query: "
  --save-embeddings DIR``: F1 with the threshold tuned on the sample itself (the protocol's
  ``dev`` row) for exact and the same IVF settings.

Usage: ``python benchmarks/bench_scale.py --bucc-embeddings DIR [--only rss,procs,mining,bucc]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import DATA, header
from xstilts.data.bucc import load_bucc_split
from xstilts.io import read_lines
from xstilts.metrics import optimize_threshold
from xstilts.retrieval.ann import IndexSpec
from xstilts.retrieval.knn import normalize
from xstilts.retrieval.mining import dedup, expand_pairs, mine_with_index, text_keys

TINY = "builtin:tiny-random-xlmr"


def synthetic_lines(n: int) -> list[str]:
    """``n`` distinct lines: real sentences of several scripts, numbered."""
    base: list[str] = []
    for code in ("deu", "rus", "cmn", "ara", "hin", "jpn"):
        base += read_lines(DATA / "tatoeba" / f"tatoeba.{code}-eng.{code}")
    return [f"{base[i % len(base)]} ({i})" for i in range(n)]


def run_measured(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``cmd``; return (seconds, peak RSS in MiB of that child alone)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def embed_cmd(path: Path, out: Path, chunk: int) -> list[str]:
    return [
        sys.executable, "-m", "xstilts", "embed", str(path), "--model", TINY, "--out", str(out),
        "--layers", "all", "--chunk-size", str(chunk), "--dtype", "fp32",
    ]  # fmt: skip


def bench_rss(work: Path, sizes: list[int], chunk: int, env: dict[str, str]) -> None:
    print(f"\n## embed peak RSS ({TINY}, all 3 hidden states, chunk {chunk}, fp32)")
    print(f"{'lines':>8}{'file MiB':>10}{'output MiB':>12}{'seconds':>9}{'peak RSS MiB':>14}")
    rss = {}
    for n in sizes:
        path = work / f"lines{n}.txt"
        path.write_text("".join(f"{t}\n" for t in synthetic_lines(n)), encoding="utf-8")
        out = work / f"emb{n}"
        seconds, peak = run_measured(embed_cmd(path, out, chunk), env)
        size = sum(p.stat().st_size for p in out.glob("*.npy")) / 2**20
        rss[n] = peak
        print(
            f"{n:>8}{path.stat().st_size / 2**20:>10.1f}{size:>12.1f}{seconds:>9.1f}{peak:>14.1f}"
        )
    lo, hi = min(sizes), max(sizes)
    print(f"peak RSS ratio {hi // 1000}k / {lo // 1000}k lines: {rss[hi] / rss[lo]:.3f}x")


def bench_procs(work: Path, n: int, chunk: int, env: dict[str, str]) -> None:
    print(f"\n## 1 vs 2 processes ({n} lines, chunk {chunk})")
    path = work / f"lines{n}.txt"
    one = work / f"emb{n}"
    if not (one / "manifest.json").is_file():
        path.write_text("".join(f"{t}\n" for t in synthetic_lines(n)), encoding="utf-8")
        run_measured(embed_cmd(path, one, chunk), env)
    two = work / f"emb{n}-2proc"
    launcher = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or "accelerate"
    cmd = [
        launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "xstilts",
        *embed_cmd(path, two, chunk)[3:],
    ]  # fmt: skip
    seconds, _ = run_measured(cmd, {**env, "CUDA_VISIBLE_DEVICES": ""})
    print(f"2 processes: {seconds:.1f}s")
    for layer in range(3):
        name = f"layer{layer:02d}.npy"
        same = (one / name).read_bytes() == (two / name).read_bytes()
        diff = float(np.abs(np.load(one / name) - np.load(two / name)).max())
        print(f"{name}: byte-identical {same}, max |difference| {diff:.3g}")


def run_index(name: str, x: np.ndarray, y: np.ndarray, spec: IndexSpec) -> dict:
    """Mine x/y with one index spec; time it and summarise its search reports."""
    t0 = time.perf_counter()
    pairs, reports = mine_with_index(x, y, spec, k=4, recall_sample=1000 if spec.approximate else 0)
    seconds = time.perf_counter() - t0
    recall = "/".join(f"{r['recall@4']:.3f}" if "recall@4" in r else "-" for r in reports)
    knob = "/".join(str(r.get("nprobe", "-")) for r in reports)
    if any("fallback" in r for r in reports):
        tuned = "/".join(f"{r.get('tuning_recall', 1):.3f}" for r in reports)
        knob = f"exact (tuned recall {tuned} < 0.95)"
    return {"name": name, "seconds": seconds, "pairs": pairs, "reports": reports,
            "recall": recall, "knob": knob}  # fmt: skip


def ivf_specs(nprobes: list[int]) -> list[tuple[str, IndexSpec]]:
    """IVF tuned to the target (falls back to exact when it cannot), then fixed nprobes."""
    specs = [("ivf, tuned to 0.95", IndexSpec("ivf", target_recall=0.95))]
    return specs + [(f"ivf, nprobe {p}", IndexSpec("ivf", knob=p)) for p in nprobes]


def bench_mining(n: int, dim: int, nprobes: list[int]) -> None:
    print(f"\n## mining {n} x {n} random unit vectors, d={dim}, k=4, ratio margin")
    rng = np.random.default_rng(0)
    x = normalize(rng.normal(size=(n, dim)).astype(np.float32))
    y = normalize(rng.normal(size=(n, dim)).astype(np.float32))
    print(f"{'index':<20}{'seconds':>9}{'speedup':>9}{'recall@4 x/y':>14}{'exact pairs':>13}"
          "  nprobe x/y")  # fmt: skip
    base = None
    for name, spec in [("exact", IndexSpec("exact")), *ivf_specs(nprobes)]:
        row = run_index(name, x, y, spec)
        base = base or row
        ref = set(zip(base["pairs"].src.tolist(), base["pairs"].tgt.tolist(), strict=True))
        got = set(zip(row["pairs"].src.tolist(), row["pairs"].tgt.tolist(), strict=True))
        print(f"{name:<20}{row['seconds']:>9.1f}{base['seconds'] / row['seconds']:>8.2f}x"
              f"{row['recall']:>14}{len(ref & got) / len(ref):>13.3f}  {row['knob']}")  # fmt: skip
    nlist = next((r["nlist"] for r in row["reports"] if "nlist" in r), None)
    print(f"(ivf: nlist {nlist}; speedup = exact seconds / seconds, the same run)")


def bench_bucc(emb_dir: Path, nprobes: list[int]) -> None:
    print("\n## BUCC 2018 zh-en sample, multilingual-e5-small last layer, exact vs IVF")
    split = load_bucc_split(DATA, "zh", "dev")
    stems = [f"bucc2018.zh.{split.split}.{side}" for side in ("zh", "en")]
    layers = sorted(p.name for p in emb_dir.glob(f"{stems[0]}.layer*.npy"))
    if not layers:
        raise SystemExit(f"no {stems[0]}.layerNN.npy in {emb_dir} (see the module docstring)")
    tag = layers[-1].split(".")[-2]
    sides = []
    for stem, texts in zip(stems, (split.x, split.en), strict=True):
        emb = np.load(emb_dir / f"{stem}.{tag}.npy")
        first, rows = dedup(text_keys(texts))
        sides.append((emb[first], rows, len(first)))
    (x, x_rows, nx), (y, y_rows, ny) = sides
    gold = set(split.gold or ())
    print(f"unique sentences {nx} x {ny}, gold pairs {len(gold)} ({tag}); F1 with the threshold"
          " tuned on this sample (the protocol's dev row)")  # fmt: skip
    print(f"{'index':<20}{'seconds':>9}{'recall@4 x/y':>14}{'F1':>7}{'F1 - exact':>11}"
          "  nprobe x/y")  # fmt: skip
    base_f1 = None
    for name, spec in [("exact", IndexSpec("exact")), *ivf_specs(nprobes)]:
        row = run_index(name, x, y, spec)
        s_lines, t_lines, scores = expand_pairs(row["pairs"], x_rows, y_rows)
        ids = zip(
            [split.x_ids[i] for i in s_lines], [split.en_ids[i] for i in t_lines], strict=True
        )
        correct = np.fromiter((p in gold for p in ids), dtype=bool, count=len(scores))
        f1 = 100 * optimize_threshold(scores, correct, len(gold)).f1
        base_f1 = f1 if base_f1 is None else base_f1
        print(f"{name:<20}{row['seconds']:>9.2f}{row['recall']:>14}{f1:>7.2f}"
              f"{f1 - base_f1:>+11.2f}  {row['knob']}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="rss,procs,mining,bucc")
    ap.add_argument("--sizes", default="20000,200000")
    ap.add_argument("--chunk-size", type=int, default=5000)
    ap.add_argument("--n", type=int, default=200_000, help="mining: vectors per side")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--nprobe", default="16,64", help="mining: fixed nprobe values to time")
    ap.add_argument("--bucc-embeddings", type=Path, help="--save-embeddings dir of evaluate")
    ap.add_argument("--work", type=Path, help="scratch directory (default: a temp dir)")
    args = ap.parse_args()
    only = set(args.only.split(","))
    header("bench_scale")
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "XSTILTS_DATA": str(DATA)}
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        work = Path(tmp)
        if "rss" in only:
            bench_rss(work, sizes, args.chunk_size, env)
        if "procs" in only:
            bench_procs(work, min(sizes), args.chunk_size, env)
    if "mining" in only:
        bench_mining(args.n, args.dim, [int(p) for p in args.nprobe.split(",") if p])
    if "bucc" in only:
        if args.bucc_embeddings is None:
            raise SystemExit("--bucc-embeddings DIR is needed for the bucc section")
        bench_bucc(args.bucc_embeddings, [int(p) for p in args.nprobe.split(",") if p])


if __name__ == "__main__":
    main()
