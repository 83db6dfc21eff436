"""BUCC 2018 bitext mining data (Zweigenbaum et al. 2018).

Two file layouts are understood, flat in ``<data>/bucc2018/`` or in ``<data>/bucc2018/<l>-en/``:

* XTREME's naming: ``zh-en.dev.zh``, ``zh-en.dev.en``, ``zh-en.dev.gold``, ``zh-en.test.*``
  (XTREME calls the shared task's *sample* split ``dev``);
* the shared task's own: ``zh-en.sample.*``, ``zh-en.training.*``, ``zh-en.test.*``.

Text files hold ``id<TAB>sentence`` lines; gold files ``<l>_id<TAB>en_id`` lines.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from xstilts.errors import DataError
from xstilts.io import read_lines

log = logging.getLogger(__name__)

BUCC_LANGS: tuple[str, ...] = ("de", "fr", "ru", "zh")
# Splits in the order preferred for tuning the threshold (the first one with gold is used).
SPLITS: tuple[str, ...] = ("dev", "sample", "training", "test")


@dataclass(frozen=True)
class BuccSplit:
    """One split of one language pair: sentences with ids on both sides, and gold if any."""

    lang: str
    split: str
    x_ids: list[str]
    x: list[str]
    en_ids: list[str]
    en: list[str]
    gold: list[tuple[str, str]] | None
    x_path: Path
    en_path: Path
    gold_path: Path | None


def bucc_dirs(data_dir: Path, lang: str) -> list[Path]:
    """Directories that may hold the files of ``lang``-en, most specific first."""
    return [data_dir / "bucc2018" / f"{lang}-en", data_dir / "bucc2018", data_dir]


def find_splits(data_dir: Path, lang: str) -> dict[str, tuple[Path, Path, Path | None]]:
    """Available splits for ``lang``: ``{split: (x_path, en_path, gold_path or None)}``."""
    found: dict[str, tuple[Path, Path, Path | None]] = {}
    for d in bucc_dirs(data_dir, lang):
        for split in SPLITS:
            if split in found:
                continue
            x = d / f"{lang}-en.{split}.{lang}"
            en = d / f"{lang}-en.{split}.en"
            gold = d / f"{lang}-en.{split}.gold"
            if x.is_file() or en.is_file():
                found[split] = (x, en, gold if gold.is_file() else None)
    return found


def read_id_text(path: Path) -> tuple[list[str], list[str]]:
    """Parse ``id<TAB>text`` lines; a line without a tab or a repeated id is an error."""
    ids: list[str] = []
    texts: list[str] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(read_lines(path), start=1):
        sid, tab, text = line.partition("\t")
        if not tab or not sid:
            raise DataError(f"{path}:{n}: expected 'id<TAB>sentence', got {line[:60]!r}")
        if sid in seen:
            raise DataError(f"{path}:{n}: duplicate id {sid!r} (first on line {seen[sid]})")
        seen[sid] = n
        ids.append(sid)
        texts.append(text)
    return ids, texts


def read_gold(path: Path, x_ids: set[str], en_ids: set[str], x_path: Path, en_path: Path):
    """Parse gold ``x_id<TAB>en_id`` pairs, checking both ids exist in the text files."""
    pairs: list[tuple[str, str]] = []
    first: dict[tuple[str, str], int] = {}
    duplicates: list[int] = []
    for n, line in enumerate(read_lines(path), start=1):
        parts = line.split("\t")
        if len(parts) != 2 or not all(parts):
            raise DataError(f"{path}:{n}: expected 'src_id<TAB>en_id', got {line[:60]!r}")
        sid, eid = parts
        if sid not in x_ids:
            raise DataError(f"{path}:{n}: gold id {sid!r} is not in {x_path}")
        if eid not in en_ids:
            raise DataError(f"{path}:{n}: gold id {eid!r} is not in {en_path}")
        if (sid, eid) in first:  # counted twice it would inflate gold and lower recall
            duplicates.append(n)
            continue
        first[(sid, eid)] = n
        pairs.append((sid, eid))
    if duplicates:
        log.warning(
            "%s:%d: duplicate gold pair (%d duplicate line(s) in all), counted once",
            path,
            duplicates[0],
            len(duplicates),
        )
    return pairs


def load_bucc_split(data_dir: Path, lang: str, split: str) -> BuccSplit:
    """Load one split; both text files must exist; gold is optional (the test split has none)."""
    splits = find_splits(data_dir, lang)
    if split not in splits:
        raise DataError(
            f"no BUCC {lang}-en {split} split under {data_dir / 'bucc2018'} "
            f"(found: {', '.join(splits) or 'none'}); "
            "fetch it with `xstilts data fetch bucc2018`"
        )
    x_path, en_path, gold_path = splits[split]
    for p in (x_path, en_path):
        if not p.is_file():
            raise DataError(f"{p}: missing (the {lang}-en {split} split needs both sides)")
    x_ids, x = read_id_text(x_path)
    en_ids, en = read_id_text(en_path)
    gold = None
    if gold_path is not None:
        gold = read_gold(gold_path, set(x_ids), set(en_ids), x_path, en_path)
    return BuccSplit(lang, split, x_ids, x, en_ids, en, gold, x_path, en_path, gold_path)


def tuning_and_test_splits(data_dir: Path, lang: str, tune_split: str | None = None):
    """Pick the split to tune the threshold on (has gold) and the split to apply it to.

    The tuning split is ``tune_split`` if given, else the first of dev/sample/training with a
    gold file. The application split is ``test`` when present (and different), else ``None``.
    """
    splits = find_splits(data_dir, lang)
    if not splits:
        raise DataError(
            f"no BUCC 2018 {lang}-en files under {data_dir} (looked in "
            f"{', '.join(str(d) for d in bucc_dirs(data_dir, lang)[:2])}); "
            "fetch them with `xstilts data fetch bucc2018`"
        )
    with_gold = [s for s in SPLITS if s in splits and splits[s][2] is not None]
    if tune_split is None:
        candidates = [s for s in with_gold if s != "test"] or with_gold
        if not candidates:
            raise DataError(
                f"no BUCC {lang}-en split has a gold file (found {', '.join(splits)}); "
                "the threshold must be tuned on a split with gold (the sample split)"
            )
        tune_split = candidates[0]
    elif tune_split not in with_gold:
        raise DataError(
            f"--tune-split {tune_split}: no gold file for the {lang}-en {tune_split} split "
            f"(splits with gold: {', '.join(with_gold) or 'none'})"
        )
    test = "test" if "test" in splits and tune_split != "test" else None
    return tune_split, test


def subsample_bucc(split: BuccSplit, n: int | None, seed: int = 0) -> BuccSplit:
    """``n`` sentences per side: every gold sentence, then a seeded draw of the others.

    A side with fewer than ``n`` lines is kept whole; one with more than ``n`` gold sentences
    keeps exactly its gold sentences.

    Mining difficulty comes from the distractors, so a subsample that kept a fraction of each
    side would lose almost every gold pair (both halves must survive). Keeping all gold
    sentences and thinning the distractors keeps every positive and makes the task easier:
    scores on a subsample are for quick comparisons between models, not for comparison with
    published BUCC numbers. The kept lines stay in file order.
    """
    if n is None or (len(split.x) <= n and len(split.en) <= n):
        return split
    gold = split.gold or []
    rng = np.random.default_rng(seed)

    def keep(ids: list[str], gold_ids: set[str]) -> np.ndarray:
        must = np.array([i in gold_ids for i in ids], dtype=bool)
        if len(ids) <= n:
            return np.ones(len(ids), dtype=bool)
        if must.sum() >= n:
            return must
        others = np.flatnonzero(~must)
        chosen = rng.choice(others, size=n - int(must.sum()), replace=False)
        must[chosen] = True
        return must

    kx = keep(split.x_ids, {a for a, _ in gold})
    ken = keep(split.en_ids, {b for _, b in gold})

    def pick(values: list[str], mask: np.ndarray) -> list[str]:
        return [v for v, k in zip(values, mask, strict=True) if k]

    return replace(
        split,
        x_ids=pick(split.x_ids, kx),
        x=pick(split.x, kx),
        en_ids=pick(split.en_ids, ken),
        en=pick(split.en, ken),
    )
