"""Zero-shot retrieval protocols: (task, encoder) -> tidy metric rows.

Tatoeba (XTREME protocol): cosine top-1 between the two sides of each language pair, for
``en->x`` (English queries retrieve the other side; XTREME's reported direction), ``x->en``
(the LASER/MTEB direction) and their mean, for every requested hidden state.

BUCC 2018: sentences are deduplicated per side (margin neighbourhoods must not be split across
identical sentences), embedded, L2-normalised and mined with a k-NN margin (ratio by default,
k=4) in both directions, kept one-to-one best-first. The decision threshold is the one that
maximises F1 on the split that has gold (the shared task's *sample*, XTREME's ``dev``) and is
then applied unchanged to the test split. XTREME's released code never applied it and jiant
tuned it on the scored set; neither is repeated here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from xstilts.data.bucc import BuccSplit, load_bucc_split, tuning_and_test_splits
from xstilts.data.registry import get_task
from xstilts.data.tatoeba import TatoebaPair, load_tatoeba
from xstilts.encode import Encoder
from xstilts.io import atomic_path, write_text_atomic
from xstilts.metrics import accuracy_at_1, apply_threshold, optimize_threshold
from xstilts.results import build_results, metric_row
from xstilts.search import Backend, knn, mine, normalize


class ProgressHook(Protocol):
    """Receives encoding progress (the CLI shows it with rich; tests pass nothing)."""

    def start(self, total: int, description: str) -> None: ...

    def advance(self, n: int) -> None: ...


@dataclass
class EvalConfig:
    """Protocol settings of one evaluation; recorded verbatim in the results file."""

    task: str
    langs: list[str]
    layers: list[int] | None = None  # None: every hidden state
    pooling: str = "mean"
    prefix: str = ""
    batch_size: int = 32
    max_length: int = 512
    search_backend: Backend = "auto"
    k: int = 4
    margin: str = "ratio"
    tune_split: str | None = None
    save_embeddings: Path | None = None
    save_predictions: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Timer:
    encode_s: float = 0.0
    search_s: float = 0.0
    data_s: float = 0.0


def _save_embeddings(directory: Path, stem: str, emb: np.ndarray, layers: Sequence[int]) -> None:
    """One ``.npy`` per layer: ``<stem>.layerNN.npy`` (raw pooled vectors, float32)."""
    directory.mkdir(parents=True, exist_ok=True)
    for j, layer in enumerate(layers):
        with atomic_path(directory / f"{stem}.layer{layer:02d}.npy") as tmp, tmp.open("wb") as f:
            np.save(f, emb[j])


def _encode_sides(
    encoder: Encoder,
    sides: Sequence[Sequence[str]],
    cfg: EvalConfig,
    layers: list[int],
    timer: _Timer,
    advance: Callable[[int], None] | None,
) -> list[np.ndarray]:
    """Encode several text lists in one call (fuller batches); return one array per list."""
    texts = [t for side in sides for t in side]
    t0 = time.perf_counter()
    emb, _ = encoder.encode(
        texts,
        layers=layers,
        pooling=cfg.pooling,
        prefix=cfg.prefix,
        batch_size=cfg.batch_size,
        progress=advance,
    )
    timer.encode_s += time.perf_counter() - t0
    out, start = [], 0
    for side in sides:
        out.append(emb[:, start : start + len(side)])
        start += len(side)
    return out


def tatoeba_metrics(
    x: np.ndarray, en: np.ndarray, lang: str, layer: int, backend: Backend = "auto"
) -> list[dict[str, Any]]:
    """Accuracy@1 both ways for aligned embeddings ``x[i] <-> en[i]`` of one layer."""
    xn, enn = normalize(x), normalize(en)
    gold = np.arange(len(xn))
    _, en2x = knn(enn, xn, 1, backend)
    _, x2en = knn(xn, enn, 1, backend)
    acc_en_x = accuracy_at_1(en2x[:, 0], gold)
    acc_x_en = accuracy_at_1(x2en[:, 0], gold)
    return [
        metric_row("tatoeba", lang, layer, "accuracy", acc_en_x, direction="en->x"),
        metric_row("tatoeba", lang, layer, "accuracy", acc_x_en, direction="x->en"),
        metric_row("tatoeba", lang, layer, "accuracy", (acc_en_x + acc_x_en) / 2, direction="mean"),
    ]


def evaluate_tatoeba(
    encoder: Encoder,
    data_dir: Path,
    cfg: EvalConfig,
    layers: list[int],
    timer: _Timer,
    progress: ProgressHook | None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Tatoeba for every language in ``cfg.langs``; all files are checked before encoding."""
    t0 = time.perf_counter()
    pairs: list[TatoebaPair] = [load_tatoeba(data_dir, lang) for lang in cfg.langs]
    timer.data_s += time.perf_counter() - t0
    if progress is not None:
        progress.start(sum(2 * len(p) for p in pairs), "encoding Tatoeba")
    rows: list[dict[str, Any]] = []
    for pair in pairs:
        x, en = _encode_sides(
            encoder, [pair.x, pair.en], cfg, layers, timer, progress.advance if progress else None
        )
        if cfg.save_embeddings:
            _save_embeddings(cfg.save_embeddings, f"tatoeba.{pair.lang}.{pair.lang}", x, layers)
            _save_embeddings(cfg.save_embeddings, f"tatoeba.{pair.lang}.en", en, layers)
        t0 = time.perf_counter()
        for j, layer in enumerate(layers):
            rows.extend(tatoeba_metrics(x[j], en[j], pair.lang, layer, cfg.search_backend))
        timer.search_s += time.perf_counter() - t0
    sizes = {p.lang: {"x": len(p.x), "en": len(p.en)} for p in pairs}
    return rows, sizes


def _unique(texts: Sequence[str]) -> tuple[list[str], list[list[int]]]:
    """Distinct texts in first-seen order and, for each, the positions it occurs at."""
    index: dict[str, int] = {}
    groups: list[list[int]] = []
    for i, t in enumerate(texts):
        j = index.setdefault(t, len(index))
        if j == len(groups):
            groups.append([])
        groups[j].append(i)
    return list(index), groups


@dataclass
class BuccCandidates:
    """Mined id pairs of one split and layer, best first, with their margin scores."""

    x_ids: list[str]
    en_ids: list[str]
    scores: np.ndarray

    def correct(self, gold: set[tuple[str, str]]) -> np.ndarray:
        """Whether each candidate pair is in ``gold``."""
        return np.fromiter(
            ((s, e) in gold for s, e in zip(self.x_ids, self.en_ids, strict=True)),
            dtype=bool,
            count=len(self.x_ids),
        )


def bucc_candidates(
    split: BuccSplit, x: np.ndarray, en: np.ndarray, x_groups, en_groups, cfg: EvalConfig
) -> BuccCandidates:
    """Mine unique-sentence embeddings and expand the pairs back to every id they stand for."""
    mined = mine(
        normalize(x), normalize(en), k=cfg.k, margin=cfg.margin, backend=cfg.search_backend
    )
    xs: list[str] = []
    es: list[str] = []
    scores: list[float] = []
    for ui, uj, score in zip(
        mined.src.tolist(), mined.tgt.tolist(), mined.score.tolist(), strict=True
    ):
        for a in x_groups[ui]:
            for b in en_groups[uj]:
                xs.append(split.x_ids[a])
                es.append(split.en_ids[b])
                scores.append(score)
    return BuccCandidates(xs, es, np.asarray(scores, dtype=np.float64))


def evaluate_bucc(
    encoder: Encoder,
    data_dir: Path,
    cfg: EvalConfig,
    layers: list[int],
    timer: _Timer,
    progress: ProgressHook | None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """BUCC 2018: tune the threshold on the gold split, apply it to the test split."""
    t0 = time.perf_counter()
    plan: list[tuple[str, BuccSplit, BuccSplit | None]] = []
    for lang in cfg.langs:
        tune_name, test_name = tuning_and_test_splits(data_dir, lang, cfg.tune_split)
        tune = load_bucc_split(data_dir, lang, tune_name)
        test = load_bucc_split(data_dir, lang, test_name) if test_name else None
        plan.append((lang, tune, test))
    timer.data_s += time.perf_counter() - t0

    def n_unique(s: BuccSplit) -> int:
        return len(set(s.x)) + len(set(s.en))

    if progress is not None:
        progress.start(
            sum(n_unique(t) + (n_unique(s) if s else 0) for _, t, s in plan), "encoding BUCC"
        )
    rows: list[dict[str, Any]] = []
    sizes: dict[str, Any] = {}
    for lang, tune, test in plan:
        sizes[lang] = {}
        thresholds: dict[int, float] = {}
        for split in (tune, test):
            if split is None:
                continue
            ux, x_groups = _unique(split.x)
            uen, en_groups = _unique(split.en)
            x, en = _encode_sides(
                encoder, [ux, uen], cfg, layers, timer, progress.advance if progress else None
            )
            if cfg.save_embeddings:
                for side, emb, groups in ((lang, x, x_groups), ("en", en, en_groups)):
                    full = np.empty((emb.shape[0], sum(map(len, groups)), emb.shape[2]), np.float32)
                    for u, positions in enumerate(groups):
                        full[:, positions] = emb[:, u : u + 1]
                    _save_embeddings(
                        cfg.save_embeddings, f"bucc2018.{lang}.{split.split}.{side}", full, layers
                    )
            sizes[lang][split.split] = {
                "x": len(split.x),
                "en": len(split.en),
                "x_unique": len(ux),
                "en_unique": len(uen),
                "gold": len(split.gold) if split.gold is not None else None,
            }
            t0 = time.perf_counter()
            gold = set(split.gold) if split.gold else None
            for j, layer in enumerate(layers):
                cand = bucc_candidates(split, x[j], en[j], x_groups, en_groups, cfg)
                if split is tune:
                    assert gold is not None
                    res = optimize_threshold(cand.scores, cand.correct(gold), len(gold))
                    thresholds[layer] = res.threshold
                else:
                    th = thresholds[layer]
                    res = apply_threshold(
                        cand.scores,
                        cand.correct(gold) if gold else np.zeros(len(cand.scores), bool),
                        len(gold) if gold else 1,
                        th,
                    )
                    if cfg.save_predictions:
                        keep = cand.scores >= th
                        lines = [
                            f"{a}\t{b}"
                            for a, b, k in zip(cand.x_ids, cand.en_ids, keep, strict=True)
                            if k
                        ]
                        write_text_atomic(
                            cfg.save_predictions / f"{lang}-en.{split.split}.layer{layer:02d}.pred",
                            "".join(line + "\n" for line in lines),
                        )
                names = ("threshold",)
                if gold:
                    names = ("precision", "recall", "f1", "threshold")
                for name in names:
                    rows.append(
                        metric_row(
                            "bucc2018", lang, layer, name, getattr(res, name), split=split.split
                        )
                    )
                rows.append(
                    metric_row(
                        "bucc2018", lang, layer, "n_predicted", res.n_predicted, split=split.split
                    )
                )
            timer.search_s += time.perf_counter() - t0
    return rows, sizes


EVALUATORS = {"tatoeba": evaluate_tatoeba, "bucc2018": evaluate_bucc}


def evaluate(
    encoder: Encoder,
    cfg: EvalConfig,
    data_dir: Path,
    *,
    model_info: dict[str, Any],
    progress: ProgressHook | None = None,
    load_s: float = 0.0,
) -> dict[str, Any]:
    """Run one task on one encoder and return a results document (see :mod:`xstilts.results`)."""
    task = get_task(cfg.task)
    layers = encoder.layer_indices(cfg.layers)
    timer = _Timer()
    t0 = time.perf_counter()
    rows, sizes = EVALUATORS[task.name](encoder, data_dir, cfg, layers, timer, progress)
    total = time.perf_counter() - t0 + load_s
    settings = {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in asdict(cfg).items()
        if k not in ("task", "langs", "extra")
    }
    settings.update(
        layers=layers,
        dtype=encoder.dtype,
        device=str(encoder.device),
        max_length=encoder.max_length,
        data_dir=str(data_dir),
        **cfg.extra,
    )
    return build_results(
        task=task.name,
        model=model_info,
        languages=list(cfg.langs),
        settings=settings,
        sizes=sizes,
        timings={
            "load_s": load_s,
            "data_s": timer.data_s,
            "encode_s": timer.encode_s,
            "search_s": timer.search_s,
            "total_s": total,
        },
        metrics=rows,
    )
