"""Training throughput: the xstilts loop vs Hugging Face's ``Trainer``, measured in one run.

Same model (builtin multilingual-e5-small + a classification head), same MNLI examples, same
batch size, maximum length, learning rate and precision (fp32 on CPU); each variant runs in its
own subprocess so its peak RSS is its own:

* ``xstilts``: :func:`xstilts.train.loop.train` (length-grouped batches from its task sampler);
* ``trainer``: ``transformers.Trainer`` with ``DataCollatorWithPadding`` (its defaults);
* ``trainer-grouped``: the same with ``group_by_length=True``.

Examples/s are measured over the optimizer steps only (no evaluation, no checkpointing).
Target (issue: intermediate training): xstilts >= 1.0x the Trainer.
Each variant runs once per round, in a rotating order (the machine speed drifts).
Usage: ``python benchmarks/bench_train.py [--steps 60] [--batch-size 16] [--max-length 128]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile

from _common import DATA, header, peak_rss_mb, rate_table, subprocess_rounds, xstilts_train_rate


def run_variant(args: argparse.Namespace) -> dict:
    import torch

    from xstilts.hardware import configure_threads
    from xstilts.intermediate import get_intermediate_task
    from xstilts.models import resolve_model
    from xstilts.train.features import featurize

    configure_threads()
    n = args.steps * args.batch_size
    if args.variant == "xstilts":
        rate = xstilts_train_rate(
            model=args.model,
            tasks=["mnli"],
            max_examples=n,
            max_steps=args.steps,
            batch_size=args.batch_size,
            max_length=args.max_length,
            lr=2e-5,
            mixed_precision="no",
        )
        return {"variant": args.variant, "examples_per_s": rate, "peak_rss_mb": peak_rss_mb()}

    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    ref = resolve_model(args.model)
    task = get_intermediate_task("mnli")
    split = task.load(DATA, "train", max_examples=n, seed=0)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ref.path)
    feats = featurize(task, split.examples, tok, max_length=args.max_length, labels=task.labels)
    model = AutoModelForSequenceClassification.from_pretrained(ref.path, num_labels=3)
    targs = TrainingArguments(
        output_dir=tempfile.mkdtemp(),
        per_device_train_batch_size=args.batch_size,
        max_steps=args.steps,
        learning_rate=2e-5,
        logging_steps=10**9,
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        train_sampling_strategy="group_by_length"
        if args.variant == "trainer-grouped"
        else "random",
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model, args=targs, train_dataset=feats, data_collator=DataCollatorWithPadding(tok)
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
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--variant", choices=["xstilts", "trainer", "trainer-grouped"])
    args = ap.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args)))
        return
    header(
        f"bench_train: {args.model}, MNLI, {args.steps} steps x {args.batch_size}, "
        f"max length {args.max_length}"
    )
    runs = subprocess_rounds(__file__, ["trainer", "trainer-grouped", "xstilts"], args.rounds)
    rate_table(runs, "trainer", "Trainer", "examples/s", args.rounds)
    print("vs Trainer: median over rounds of the per-round speed ratio (target xstilts >= 1.0)")


if __name__ == "__main__":
    main()
