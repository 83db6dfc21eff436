"""Tatoeba test sets in LASER v1 layout: ``tatoeba.<xxx>-eng.<xxx>`` and ``.eng``, line-aligned.

The loader accepts a data root holding ``tatoeba/`` (what ``xstilts data fetch`` writes) or a
directory holding the files directly (a LASER checkout's ``data/tatoeba/v1``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from xstilts.data.languages import display_code, to_laser
from xstilts.errors import DataError
from xstilts.io import read_lines


@dataclass(frozen=True)
class TatoebaPair:
    """One language's aligned sentences: ``x[i]`` translates ``en[i]``."""

    lang: str  # result code (ISO 639-1 where it exists)
    laser: str  # LASER/ISO 639-3 code used in file names
    x: list[str]
    en: list[str]
    x_path: Path
    en_path: Path

    def __len__(self) -> int:
        return len(self.x)

    def head(self, n: int | None) -> TatoebaPair:
        """The first ``n`` pairs (all of them for None): a smaller, still aligned test set.

        File order, not a random draw, so the subset is the same for every tool that reads the
        same files (``--max-sentences``, used by the CPU-sized quickstart).
        """
        if n is None or n >= len(self.x):
            return self
        return replace(self, x=self.x[:n], en=self.en[:n])


def tatoeba_dir(data_dir: Path) -> Path:
    """The directory holding the Tatoeba files under ``data_dir``, or a clear error."""
    for cand in (data_dir / "tatoeba", data_dir):
        if cand.is_dir() and any(cand.glob("tatoeba.*-eng.eng")):
            return cand
    raise DataError(
        f"no Tatoeba data in {data_dir} (expected {data_dir / 'tatoeba'}/tatoeba.<xxx>-eng.<xxx>); "
        "fetch it with `xstilts data fetch tatoeba`, or point --data-dir / XSTILTS_DATA at it"
    )


def tatoeba_paths(directory: Path, laser: str) -> tuple[Path, Path]:
    """File paths of one language pair (non-English side, English side)."""
    return (
        directory / f"tatoeba.{laser}-eng.{laser}",
        directory / f"tatoeba.{laser}-eng.eng",
    )


def load_tatoeba(data_dir: Path, lang: str) -> TatoebaPair:
    """Load one language pair, checking both files exist, decode and have equal line counts."""
    laser = to_laser(lang)
    if laser is None:
        raise DataError(f"unknown Tatoeba language {lang!r}")
    directory = tatoeba_dir(data_dir)
    x_path, en_path = tatoeba_paths(directory, laser)
    for p in (x_path, en_path):
        if not p.is_file():
            raise DataError(
                f"{p}: missing Tatoeba file for {display_code(laser)} "
                "(`xstilts data fetch tatoeba` downloads all 112 languages)"
            )
    x = read_lines(x_path)
    en = read_lines(en_path)
    if len(x) != len(en):
        raise DataError(
            f"misaligned Tatoeba pair: {x_path} has {len(x)} lines but {en_path} has {len(en)}"
        )
    return TatoebaPair(display_code(laser), laser, x, en, x_path, en_path)
