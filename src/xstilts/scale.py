"""Bitext mining at corpus scale: the library behind ``xstilts mine`` (and ``embed``).

:func:`mine_files` glues the pieces: stream-embed each side's distinct sentences into embedding
stores (:func:`xstilts.embedding.stream.embed_file`), margin-mine them through an index
(:func:`xstilts.retrieval.mining.mine_with_index`: the one mining implementation, the BUCC
evaluation uses it too), expand distinct-sentence pairs back to every line they stand for,
choose a threshold (given, tuned on a BUCC-style gold sample with the same model and settings,
or none) and write ``score<TAB>src<TAB>tgt`` atomically, best first. It runs under
``accelerate launch`` as several processes (searching happens in rank 0 only).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xstilts.data.bucc import BuccSplit, load_bucc_split, tuning_and_test_splits
from xstilts.embedding.settings import EmbedSettings
from xstilts.embedding.stream import EmbedResult, ProcessGroup, embed_file, process_group
from xstilts.errors import DataError, UsageError
from xstilts.io import atomic_path, write_json_atomic
from xstilts.metrics import optimize_threshold
from xstilts.retrieval.ann import IndexSpec
from xstilts.retrieval.mining import MARGINS, expand_pairs, gold_correct, mine_with_index


@dataclass
class MineOptions:
    """Mining settings besides embedding (see ``xstilts mine --help``)."""

    layer: int
    k: int = 4
    margin: str = "ratio"
    index: IndexSpec = field(default_factory=IndexSpec)
    threshold: float | None = None
    gold_sample: Path | None = None
    recall_sample: int = 1000
    texts: bool | None = None  # None: add texts when an input has no ids

    def __post_init__(self) -> None:
        if self.margin not in MARGINS:
            raise UsageError(f"--margin {self.margin!r}: choose one of {', '.join(MARGINS)}")
        if self.k < 1:
            raise UsageError("--k must be >= 1")
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise UsageError(f"--threshold {self.threshold}: must be a finite number")
        if self.threshold is not None and self.gold_sample is not None:
            raise UsageError("--threshold and --gold-sample exclude each other")


def find_gold_sample(directory: Path) -> tuple[Path, str, str]:
    """The BUCC-style split with gold under ``directory``: ``(data dir, lang, split)``.

    Accepts the pair's own directory or a data root (``bucc2018/`` or ``bucc2018/<l>-en/``
    below it), with XTREME's or the shared task's file names (``zh-en.dev.gold``,
    ``zh-en.sample.gold``).
    """
    if not directory.is_dir():
        raise DataError(f"--gold-sample {directory}: not a directory")
    langs = set()
    for d in (directory, directory / "bucc2018", *directory.glob("bucc2018/*-en")):
        for p in d.glob("*-en.*.gold"):
            if m := re.fullmatch(r"(\w+)-en\.(\w+)\.gold", p.name):
                langs.add(m.group(1))
    if not langs:
        raise DataError(
            f"--gold-sample {directory}: no '<l>-en.<split>.gold' file (with its '.<l>' and "
            "'.en' files, lines 'id<TAB>sentence')"
        )
    if len(langs) > 1:
        raise UsageError(
            f"--gold-sample {directory}: gold files for several pairs ({', '.join(sorted(langs))}"
            "); point it at one pair's directory"
        )
    (lang,) = langs
    split, _ = tuning_and_test_splits(directory, lang)
    return directory, lang, split


def _embed_gold_sample(
    opts: MineOptions, embed: Any, work_dir: Path
) -> tuple[BuccSplit, EmbedResult, EmbedResult]:
    """Load and embed (every process takes part) the gold sample's two sides."""
    assert opts.gold_sample is not None
    data_dir, lang, split_name = find_gold_sample(opts.gold_sample)
    split = load_bucc_split(data_dir, lang, split_name)
    src = embed(split.x_path, work_dir / "gold-src", "id-text")
    tgt = embed(split.en_path, work_dir / "gold-tgt", "id-text")
    return split, src, tgt


def _mine_lines(
    opts: MineOptions, src: EmbedResult, tgt: EmbedResult
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], list[dict[str, Any]]]:
    """Mine ``opts.layer`` of two embedded files: ``(src lines, tgt lines, scores)`` of the
    one-to-one pairs (duplicate lines expanded) and the search reports."""
    pairs, reports = mine_with_index(
        src.array(opts.layer),
        tgt.array(opts.layer),
        opts.index,
        k=opts.k,
        margin=opts.margin,
        recall_sample=opts.recall_sample,
    )
    return expand_pairs(pairs, src.line_rows, tgt.line_rows), reports


def _threshold_from_gold(
    opts: MineOptions, split: BuccSplit, src: EmbedResult, tgt: EmbedResult
) -> tuple[float, dict[str, Any]]:
    """Mine the gold sample exactly as the corpus and pick the F1-maximising threshold."""
    assert split.gold is not None
    (s_lines, t_lines, scores), reports = _mine_lines(opts, src, tgt)
    gold = split.gold
    correct = gold_correct(src.index.read_ids(s_lines), tgt.index.read_ids(t_lines), gold)
    res = optimize_threshold(scores, correct, len(gold))
    info = {
        "source": "gold-sample",
        "files": [str(split.x_path), str(split.en_path), str(split.gold_path)],
        "gold_pairs": len(gold),
        # tuned and scored on the same sample: the optimum, not a test score
        "sample_precision": res.precision,
        "sample_recall": res.recall,
        "sample_f1": res.f1,
        "search": reports,
    }
    return res.threshold, info


def write_pairs(
    out: Path,
    src: EmbedResult,
    tgt: EmbedResult,
    lines: tuple[np.ndarray, np.ndarray, np.ndarray],
    texts: bool,
    block: int = 100_000,
) -> None:
    """``score<TAB>src<TAB>tgt[<TAB>src text<TAB>tgt text]`` lines, best first, atomically.

    ``src``/``tgt`` are ids for ``id<TAB>text`` inputs, else 1-based line numbers.
    """
    s_lines, t_lines, scores = lines
    with atomic_path(out) as tmp, tmp.open("w", encoding="utf-8", newline="\n") as f:
        for start in range(0, len(scores), block):
            sl, tl = s_lines[start : start + block], t_lines[start : start + block]
            cols = [
                [f"{s:.6f}" for s in scores[start : start + block].tolist()],
                src.index.read_ids(sl),
                tgt.index.read_ids(tl),
            ]
            if texts:
                cols += [src.index.read_texts(sl)[0], tgt.index.read_texts(tl)[0]]
            f.writelines("\t".join(row) + "\n" for row in zip(*cols, strict=True))


def mine_files(
    src_file: Path,
    tgt_file: Path,
    out: Path,
    *,
    encoder: Any,
    model: dict[str, Any],
    settings: EmbedSettings,
    opts: MineOptions,
    work_dir: Path | None = None,
    group: ProcessGroup | None = None,
    progress: Any = None,
) -> dict[str, Any] | None:
    """Mine ``src_file`` x ``tgt_file`` into ``out``; returns the report (None off rank 0).

    Embeddings of distinct sentences go to ``work_dir`` (default ``<out>.work``), one
    resumable directory per side (and per gold-sample side), so a rerun with another threshold
    or index reuses them.
    """
    t0 = time.perf_counter()
    group = group or process_group()
    work_dir = work_dir or out.with_name(out.name + ".work")
    settings = settings.model_copy(update={"unique": True, "layers": [opts.layer]})

    def embed(path: Path, directory: Path, fmt: str | None = None) -> EmbedResult:
        s = settings if fmt is None else settings.model_copy(update={"fmt": fmt})
        return embed_file(path, encoder, directory, s, model=model, group=group, progress=progress)

    # the small gold sample first: a problem with it shows before hours of corpus encoding
    gold = _embed_gold_sample(opts, embed, work_dir) if opts.gold_sample is not None else None
    src = embed(src_file, work_dir / "src")
    tgt = embed(tgt_file, work_dir / "tgt")
    threshold, threshold_info = opts.threshold, {"source": "none (all one-to-one pairs)"}
    if opts.threshold is not None:
        threshold_info = {"source": "--threshold"}
    t_embed = time.perf_counter() - t0
    if group.process_index != 0:
        return None  # searching is rank 0's (a faiss GPU index uses every GPU already)
    if gold is not None:
        threshold, threshold_info = _threshold_from_gold(opts, *gold)
    t1 = time.perf_counter()
    (s_lines, t_lines, scores), reports = _mine_lines(opts, src, tgt)
    n_candidates = len(scores)
    if threshold is not None:
        keep = scores >= threshold
        s_lines, t_lines, scores = s_lines[keep], t_lines[keep], scores[keep]
    texts = opts.texts
    if texts is None:
        texts = src.index.fmt != "id-text" or tgt.index.fmt != "id-text"
    write_pairs(out, src, tgt, (s_lines, t_lines, scores), texts)
    report = {
        "src": {"file": str(src_file), "lines": len(src.index), "unique": len(src.row_lines)},
        "tgt": {"file": str(tgt_file), "lines": len(tgt.index), "unique": len(tgt.row_lines)},
        "model": model,
        "layer": opts.layer,
        "k": opts.k,
        "margin": opts.margin,
        "index": opts.index.kind,
        "search": reports,
        "threshold": threshold,
        "threshold_info": threshold_info,
        "candidate_pairs": n_candidates,
        "pairs_written": len(scores),
        "output": str(out),
        "columns": ["score", "src", "tgt", *(["src_text", "tgt_text"] if texts else [])],
        "work_dir": str(work_dir),
        "timings": {
            "embed_s": round(t_embed, 3),
            "mine_s": round(time.perf_counter() - t1, 3),
            "total_s": round(time.perf_counter() - t0, 3),
        },
    }
    write_json_atomic(out.with_name(out.name + ".json"), report)
    return report
