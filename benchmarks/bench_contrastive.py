"""Contrastive training throughput: xstilts vs sentence-transformers' own fit, in one run.

Same model (builtin multilingual-e5-small, mean pooling of the last hidden state), same data
(MNLI entailment pairs: premise -> entailed hypothesis, no hard negatives on either side), same
batch size, maximum length, learning rate, temperature (0.05, sentence-transformers' scale 20)
and precision (fp32 on CPU, or ``--precision bf16``: autocast in both); each variant runs in its
own subprocess so its peak RSS is its own:

* ``xstilts``: :func:`xstilts.train.loop.train` on ``mnli-pairs`` (symmetric InfoNCE:
  query->document and document->query, false-negative masking);
* ``st-mnrl``: ``SentenceTransformerTrainer`` with ``MultipleNegativesRankingLoss`` (one
  direction: anchor->positive; its default batch sampler).

The symmetric loss costs one more ``B x B`` softmax than MNRL: nothing next to the encoder.
Examples (pairs) per second over the optimizer steps only (no evaluation, no checkpointing).
Target (issue: contrastive training): xstilts >= 1.0x sentence-transformers.
Each variant runs once per round, in a rotating order (the machine speed drifts).
Usage: ``python benchmarks/bench_contrastive.py [--steps 30] [--batch-size 16] [--max-length 64]``
(needs the ``bench`` extra: sentence-transformers and datasets).
"""

from __future__ import annotations

import argparse
import json
import tempfile

from _common import DATA, header, peak_rss_mb, rate_table, subprocess_rounds, xstilts_train_rate


def run_variant(args: argparse.Namespace) -> dict:
    import torch

    from xstilts.hardware import configure_threads
    from xstilts.models import resolve_model

    configure_threads()
    n = args.steps * args.batch_size
    if args.variant == "xstilts":
        rate = xstilts_train_rate(
            model=args.model,
            tasks=["mnli-pairs"],
            max_examples=n,
            max_steps=args.steps,
            batch_size=args.batch_size,
            max_length=args.max_length,
            lr=2e-5,
            temperature=0.05,
            hard_negatives=False,
            mixed_precision="no" if args.precision == "fp32" else "bf16",
        )
        return {"variant": args.variant, "examples_per_s": rate, "peak_rss_mb": peak_rss_mb()}

    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )

    try:  # newer sentence-transformers moved the losses
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    except ImportError:
        from sentence_transformers.losses import MultipleNegativesRankingLoss

    from xstilts.intermediate import get_intermediate_task

    ref = resolve_model(args.model)
    examples = get_intermediate_task("mnli-pairs").load(DATA, "train", max_examples=n, seed=0)
    pairs = [(ex.query["en"], ex.doc["en"]) for ex in examples.examples]
    data = Dataset.from_dict({"anchor": [a for a, _ in pairs], "positive": [p for _, p in pairs]})
    model = SentenceTransformer(str(ref.path), device="cpu")  # Transformer + mean pooling
    model.max_seq_length = args.max_length
    targs = SentenceTransformerTrainingArguments(
        output_dir=tempfile.mkdtemp(),
        per_device_train_batch_size=args.batch_size,
        max_steps=args.steps,
        learning_rate=2e-5,
        logging_steps=10**9,
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        use_cpu=True,
        bf16=args.precision == "bf16",
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=targs,
        train_dataset=data,
        loss=MultipleNegativesRankingLoss(model, scale=20.0),
    )
    torch.manual_seed(0)
    out = trainer.train()
    return {
        "variant": args.variant,
        "examples_per_s": out.metrics["train_samples_per_second"],
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="builtin:multilingual-e5-small")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--variant", choices=["xstilts", "st-mnrl"])
    args = ap.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args)))
        return
    header(
        f"bench_contrastive: {args.model}, MNLI entailment pairs, {args.steps} steps x "
        f"{args.batch_size} pairs, max length {args.max_length}, {args.precision}"
    )
    runs = subprocess_rounds(__file__, ["st-mnrl", "xstilts"], args.rounds)
    if "st-mnrl" not in runs or "xstilts" not in runs:
        raise SystemExit("a variant failed in some round (its error is printed above)")
    rate_table(runs, "st-mnrl", "ST", "pairs/s", args.rounds)
    print("vs ST: median over rounds of the per-round speed ratio (target xstilts >= 1.0)")


if __name__ == "__main__":
    main()
