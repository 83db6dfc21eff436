"""The results store: one SQLite file next to the runs, holding every metric of every cell.

Tables::

    meta     (key, value)                       schema version, the spec last run
    cells    one row per (model, setting, seed): status, error, run directory, train metrics
    evals    one row per (cell, evaluation): status, error, evaluation hash, summary; an
             evaluation is one retrieval task under one protocol (``eval_key`` "tatoeba/xtreme")
    metrics  tidy metric rows: cell, task, lang, layer, direction, metric, protocol, split, value
    items    per-sentence outcomes (packed arrays) for paired bootstrap confidence intervals

Each (cell, evaluation) is written in one transaction that first deletes that pair's old
rows, so a run killed at any point and restarted has neither duplicate nor lost rows.
``direction`` is stored as '' for "no direction" (SQLite treats NULLs in keys as distinct).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xstilts.errors import DataError
from xstilts.tasks.results import decode_items, encode_items, items_from_json

SCHEMA_VERSION = 2  # 2: cells.train_record, cells.group_source and cells.leakage
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cells (
    cell_key TEXT PRIMARY KEY, spec TEXT NOT NULL, model TEXT NOT NULL, setting TEXT NOT NULL,
    grp TEXT NOT NULL, seed INTEGER, tasks TEXT NOT NULL, train_hash TEXT, run_dir TEXT,
    status TEXT NOT NULL, error TEXT, train_metrics TEXT, updated TEXT NOT NULL,
    train_record TEXT, group_source TEXT, leakage TEXT);
CREATE TABLE IF NOT EXISTS evals (
    cell_key TEXT NOT NULL, eval_key TEXT NOT NULL, eval_hash TEXT NOT NULL,
    status TEXT NOT NULL, error TEXT, summary TEXT, updated TEXT NOT NULL,
    PRIMARY KEY (cell_key, eval_key));
CREATE TABLE IF NOT EXISTS metrics (
    cell_key TEXT NOT NULL, eval_key TEXT NOT NULL, task TEXT NOT NULL, lang TEXT NOT NULL,
    layer INTEGER NOT NULL, direction TEXT NOT NULL, metric TEXT NOT NULL,
    protocol TEXT NOT NULL, split TEXT NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (cell_key, task, lang, layer, direction, metric, protocol, split));
CREATE TABLE IF NOT EXISTS items (
    cell_key TEXT NOT NULL, eval_key TEXT NOT NULL, task TEXT NOT NULL, lang TEXT NOT NULL,
    layer INTEGER NOT NULL, direction TEXT NOT NULL, protocol TEXT NOT NULL,
    split TEXT NOT NULL, kind TEXT NOT NULL, dtype TEXT NOT NULL, n INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (cell_key, task, lang, layer, direction, protocol, split, kind));
"""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


_TABLES = {"meta", "cells", "evals", "metrics", "items"}


class ResultStore:
    """Thin wrapper over the SQLite file; every write is its own transaction."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        """Open (``readonly=False``: create if needed) the store at ``path``.

        Read-only opening never modifies the file: no table is created, the journal mode is
        left alone, and a file that is not a results store (empty, another application's
        database, not SQLite at all) is refused with a one-line error.
        """
        self.path = Path(path)
        self.readonly = readonly
        try:
            if readonly:
                self.db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(self.path, timeout=30)
        except (sqlite3.Error, OSError) as exc:
            raise DataError(f"{self.path}: cannot open the results store ({exc})") from None
        try:
            if readonly:
                self.db.execute("PRAGMA query_only=ON")
                self._check_is_store()
            else:
                self._create()
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise DataError(f"{self.path}: not a results store ({exc})") from None
        except BaseException:
            self.db.close()
            raise

    def _create(self) -> None:
        self.db.execute("PRAGMA journal_mode=WAL")
        with self.db:
            self.db.executescript(_SCHEMA)
            have = {r[1] for r in self.db.execute("PRAGMA table_info(cells)")}
            for column in ("train_record", "group_source", "leakage"):  # written by schema 1
                if column not in have:
                    self.db.execute(f"ALTER TABLE cells ADD COLUMN {column} TEXT")
            row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is not None:
                self._check_version(row[0])
            self.db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )

    def _check_is_store(self) -> None:
        names = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        missing = sorted(_TABLES - names)
        if missing:
            raise DataError(
                f"{self.path}: not a results store (no {', '.join(missing)} table"
                f"{'s' if len(missing) > 1 else ''}; run `xstilts run SPEC` to make one)"
            )
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            raise DataError(f"{self.path}: not a results store (no schema_version)")
        self._check_version(row[0])

    def _check_version(self, value: str) -> None:
        try:
            version = int(value)
        except (TypeError, ValueError):
            raise DataError(f"{self.path}: schema_version {value!r} is not a number") from None
        if version > SCHEMA_VERSION:
            raise DataError(f"{self.path}: results store schema {value} is newer than this xstilts")

    @classmethod
    def open_existing(cls, path: str | Path) -> ResultStore:
        """Open a store that must already exist, read-only (for reports): never modifies it."""
        path = Path(path)
        if path.is_dir():
            raise DataError(f"{path}: is a directory, not a results store")
        if not path.is_file():
            raise DataError(f"{path}: no results store (run `xstilts run SPEC` first)")
        return cls(path, readonly=True)

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON value under ``key``."""
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value, default=str))
            )

    def get_meta(self, key: str) -> Any:
        """Read a JSON value (None when absent); a damaged value is a one-line error."""
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        try:
            return json.loads(row[0])
        except (TypeError, ValueError) as exc:
            raise DataError(f"{self.path}: meta {key!r} is not valid JSON ({exc})") from None

    def upsert_cell(self, cell_key: str, **fields: Any) -> None:
        """Create a cell's row (all columns given) or update some of its columns."""
        fields = {**fields, "updated": _now()}
        with self.db:
            cur = self.db.execute(
                f"UPDATE cells SET {', '.join(f'{k}=?' for k in fields)} WHERE cell_key=?",
                (*fields.values(), cell_key),
            )
            if cur.rowcount == 0:
                cols = ", ".join(fields)
                marks = ", ".join("?" for _ in fields)
                self.db.execute(
                    f"INSERT INTO cells (cell_key, {cols}) VALUES (?, {marks})",
                    (cell_key, *fields.values()),
                )

    def cell_status(self, cell_key: str) -> str | None:
        """``pending``/``training``/``evaluating``/``done``/``failed`` or None if unknown."""
        row = self.db.execute("SELECT status FROM cells WHERE cell_key=?", (cell_key,)).fetchone()
        return row[0] if row else None

    def cell_record(self, cell_key: str) -> dict[str, Any] | None:
        """The training record stored for a cell (planned or exact), or None."""
        row = self.db.execute(
            "SELECT train_record FROM cells WHERE cell_key=?", (cell_key,)
        ).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def eval_done(self, cell_key: str, eval_key: str, eval_hash: str) -> bool:
        """Whether this exact evaluation finished (and its rows are complete)."""
        row = self.db.execute(
            "SELECT status, eval_hash FROM evals WHERE cell_key=? AND eval_key=?",
            (cell_key, eval_key),
        ).fetchone()
        return bool(row) and row[0] == "done" and row[1] == eval_hash

    def write_eval(
        self,
        cell_key: str,
        eval_key: str,
        eval_hash: str,
        metrics: Iterable[dict[str, Any]],
        items: Iterable[dict[str, Any]] = (),
        summary: dict[str, Any] | None = None,
    ) -> None:
        """Replace one evaluation's rows atomically and mark it done.

        ``items`` rows carry ``values`` (a numpy array) or the ``dtype``/``n``/``data``
        (base64) form of a results file.
        """
        with self.db:
            self._delete(cell_key, eval_key)
            self.db.executemany(
                "INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (cell_key, eval_key, r["task"], r["lang"], int(r["layer"]),
                     r["direction"] or "", r["metric"], r["protocol"], r["split"],
                     float(r["value"]))
                    for r in metrics
                ],
            )  # fmt: skip
            rows = []
            for it in items:
                values = it["values"] if "values" in it else items_from_json(it)
                dtype, blob = encode_items(values)
                rows.append(
                    (cell_key, eval_key, it["task"], it["lang"], int(it["layer"]),
                     it["direction"] or "", it["protocol"], it["split"], it["kind"], dtype,
                     len(values), blob)
                )  # fmt: skip
            self.db.executemany("INSERT INTO items VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            self.db.execute(
                "INSERT OR REPLACE INTO evals VALUES (?, ?, ?, 'done', NULL, ?, ?)",
                (cell_key, eval_key, eval_hash, json.dumps(summary or {}, default=str), _now()),
            )

    def _delete(self, cell_key: str, eval_key: str) -> None:
        for table in ("metrics", "items"):
            self.db.execute(
                f"DELETE FROM {table} WHERE cell_key=? AND eval_key=?", (cell_key, eval_key)
            )

    def fail_eval(self, cell_key: str, eval_key: str, eval_hash: str, error: str) -> None:
        """Record a failed evaluation (its old rows are removed)."""
        with self.db:
            self._delete(cell_key, eval_key)
            self.db.execute(
                "INSERT OR REPLACE INTO evals VALUES (?, ?, ?, 'failed', ?, NULL, ?)",
                (cell_key, eval_key, eval_hash, error, _now()),
            )

    def evals(self) -> pd.DataFrame:
        """All evaluations with their status."""
        return pd.read_sql_query("SELECT * FROM evals ORDER BY rowid", self.db)

    def cells(self) -> pd.DataFrame:
        """All cells as a DataFrame."""
        return pd.read_sql_query("SELECT * FROM cells ORDER BY rowid", self.db)

    def metrics(self) -> pd.DataFrame:
        """Every metric row joined with its cell's model/setting/group/seed."""
        df = pd.read_sql_query(
            "SELECT c.model, c.setting, c.grp AS grp, c.seed, m.* FROM metrics m "
            "JOIN cells c USING (cell_key)",
            self.db,
        )
        df["direction"] = df["direction"].replace("", None)
        return df

    def items(self, cell_key: str, task: str, lang: str, layer: int, direction: str | None,
              protocol: str, split: str, kind: str) -> np.ndarray | None:  # fmt: skip
        """One per-sentence outcome array, or None."""
        row = self.db.execute(
            "SELECT dtype, n, data FROM items WHERE cell_key=? AND task=? AND lang=? AND "
            "layer=? AND direction=? AND protocol=? AND split=? AND kind=?",
            (cell_key, task, lang, int(layer), direction or "", protocol, split, kind),
        ).fetchone()
        return decode_items(*row) if row else None
