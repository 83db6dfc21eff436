"""The leakage guard over all the offline data: every intermediate task's training rows against
every retrieval evaluation's texts.

Prints, per training task, the split read, the rows and texts hashed, the time it took and the
overlaps found (distinct texts per evaluation task), then the time to build the evaluation
index. The guard runs before every training run of ``xstilts run`` and ``xstilts train
--check-against``; this shows what it costs and what it finds on real data.
Baseline in the same run: reading the same training rows without hashing them (the guard's
own cost is the difference).
Usage: ``python benchmarks/bench_leakage.py [--tasks mnli,xquad] [--max-rows N]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import DATA, header
from xstilts.errors import DataError
from xstilts.experiment.leakage import EvalIndex, find_overlaps
from xstilts.intermediate.registry import INTERMEDIATE_TASKS
from xstilts.tasks import get_task
from xstilts.train.config import TrainConfig
from xstilts.train.data import select_examples

EVALUATIONS = ("tatoeba", "bucc2018", "lareqa", "mewsli-x")


def build_index() -> tuple[EvalIndex, dict[str, int]]:
    """Every offline evaluation text of every language the data holds."""
    index, texts = EvalIndex(), {}
    for name in EVALUATIONS:
        task = get_task(name)
        langs = [lang for lang in task.parse_langs("all") if _has_files(task, lang)]
        try:
            for lang in langs:
                batch = list(task.texts(DATA, [lang]))
                texts[name] = texts.get(name, 0) + len(batch)
                index.add(name, lang, batch)
        except DataError as exc:  # not in the offline data (Mewsli-X: a format fixture only)
            print(f"{name}: left out ({str(exc)[:90]})")
    return index, texts


def _has_files(task, lang: str) -> bool:
    try:
        return all(p.exists() for p in task.files(DATA, lang))
    except (DataError, OSError):  # a language whose files cannot even be named is absent
        return False


def config_for(name: str, max_rows: int | None) -> TrainConfig | None:
    """Train split if the offline data has it, else dev; None when neither is here."""
    task = INTERMEDIATE_TASKS[name]
    available = task.available(DATA)
    split = task.train_split if task.train_split in available else task.dev_split
    if split not in available:
        return None
    return TrainConfig(
        model="unused", out=Path("/tmp/unused"), tasks=name, train_split=split,
        max_examples=max_rows, langs=list(available[split]) if len(task.languages) > 1 else None,
    )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", default=",".join(INTERMEDIATE_TASKS))
    ap.add_argument("--max-rows", type=int, default=None, help="rows per task (default all)")
    args = ap.parse_args()
    header("bench_leakage: offline training sets x offline evaluation sets")
    t0 = time.perf_counter()
    index, counts = build_index()
    t_index = time.perf_counter() - t0
    print(
        f"evaluation index: {len(index.shown)} distinct texts in {len(index.keys)} task "
        f"languages ({', '.join(f'{k} {v}' for k, v in counts.items())} texts embedded) in "
        f"{t_index:.1f}s"
    )
    print(f"{'task':<14}{'split':<7}{'rows':>8}{'read s':>8}{'guard s':>9}  overlaps")
    total_read = total_guard = 0.0
    shown: list[str] = []
    for name in args.tasks.split(","):
        cfg = config_for(name, args.max_rows)
        if cfg is None:
            print(f"{name:<14}(no offline data)")
            continue
        t0 = time.perf_counter()
        rows = select_examples(INTERMEDIATE_TASKS[name], cfg, DATA)
        t_read = time.perf_counter() - t0
        t0 = time.perf_counter()
        overlaps = find_overlaps(cfg, index, DATA)  # reads the rows again, then hashes them
        t_guard = time.perf_counter() - t0
        total_read, total_guard = total_read + t_read, total_guard + t_guard
        found = (
            ", ".join(
                f"{o.evaluation} {o.n} (max {100 * o.share:.2f}% of {o.lang}"
                f"{', STOPS' if o.contaminating else ''})"
                for o in overlaps
            )
            or "none"
        )
        shown.extend(o.describe() for o in overlaps)
        split = cfg.split_for(name, INTERMEDIATE_TASKS[name].train_split)
        print(f"{name:<14}{split:<7}{len(rows):>8}{t_read:>8.1f}{t_guard:>9.1f}  {found}")
    print(
        f"total: reading rows {total_read:.1f}s, guard (read + hash + look up) "
        f"{total_guard:.1f}s, index {t_index:.1f}s; guard / read: "
        f"{total_guard / max(total_read, 1e-9):.2f}x"
    )
    print("examples:", *shown, sep="\n  ")


if __name__ == "__main__":
    main()
