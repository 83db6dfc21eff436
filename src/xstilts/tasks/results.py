"""The results file: one JSON document per evaluation, with a schema version.

``items`` holds the per-sentence outcomes behind the metrics (for paired bootstrap CIs in
``xstilts compare`` and reports): rows with the same key columns plus ``kind`` and the values
as ``{dtype, n, data}`` (base64; booleans as packed bits).

``pandas.DataFrame(results["metrics"])`` is the whole result: a tidy list of rows
``{task, lang, layer, direction, metric, value, protocol, split}`` where ``lang`` is the ISO
639-1 code where one exists (else the LASER code), ``layer`` the hidden-state index (0 = the
embedding output), and ``direction`` one of ``"en->x"``, ``"x->en"``, ``"mean"`` or None.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from xstilts import __version__
from xstilts.errors import DataError

SCHEMA_VERSION = 1
_PACKAGES = ("torch", "transformers", "tokenizers", "numpy", "faiss-cpu", "accelerate")


def metric_row(
    task: str,
    lang: str,
    layer: int,
    metric: str,
    value: float,
    *,
    direction: str | None = None,
    protocol: str = "xtreme",
    split: str = "test",
) -> dict[str, Any]:
    """One tidy metric row."""
    return {
        "task": task,
        "lang": lang,
        "layer": int(layer),
        "direction": direction,
        "metric": metric,
        "value": float(value),
        "protocol": protocol,
        "split": split,
    }


def encode_items(values: np.ndarray) -> tuple[str, bytes]:
    """Compact storage: booleans as packed bits, everything else as float32."""
    values = np.asarray(values)
    if values.dtype == bool:
        return "bits", np.packbits(values).tobytes()
    return "f4", values.astype("<f4").tobytes()


def decode_items(dtype: str, n: int, data: bytes) -> np.ndarray:
    """Inverse of :func:`encode_items`."""
    if dtype == "bits":
        return np.unpackbits(np.frombuffer(data, np.uint8), count=n).astype(bool)
    return np.frombuffer(data, "<f4", count=n).copy()


def items_to_json(values: np.ndarray) -> dict[str, Any]:
    """The results-file form of an items array: ``{dtype, n, data}`` with base64 data."""
    dtype, blob = encode_items(values)
    return {"dtype": dtype, "n": len(values), "data": base64.b64encode(blob).decode()}


def items_from_json(doc: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`items_to_json`."""
    return decode_items(doc["dtype"], int(doc["n"]), base64.b64decode(doc["data"]))


def environment() -> dict[str, Any]:
    """Python, platform and package versions, so a number can be reproduced."""
    versions: dict[str, str | None] = {}
    for pkg in _PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": versions,
    }


def build_results(
    *,
    task: str,
    model: dict[str, Any],
    languages: list[str],
    settings: dict[str, Any],
    sizes: dict[str, Any],
    timings: dict[str, float],
    metrics: list[dict[str, Any]],
    encoding: dict[str, Any] | None = None,
    items: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Assemble a results document (see the module docstring for the metrics schema)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "xstilts_version": __version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "task": task,
        "model": model,
        "languages": languages,
        "settings": settings,
        "sizes": sizes,
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "encoding": encoding or {},
        "environment": environment(),
        "metrics": metrics,
        "items": items or [],
    }


def load_results(path: str | Path) -> dict[str, Any]:
    """Read a results file, checking it is one (and of a schema this version understands)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a JSON results file ({exc})") from None
    if not isinstance(doc, dict) or "metrics" not in doc or "schema_version" not in doc:
        raise DataError(f"{path}: not an xstilts results file (no schema_version/metrics)")
    version = doc["schema_version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise DataError(f"{path}: schema_version {version!r} is not a whole number")
    if version > SCHEMA_VERSION:
        raise DataError(
            f"{path}: schema_version {version} is newer than this xstilts "
            f"understands ({SCHEMA_VERSION}); upgrade xstilts"
        )
    check_metric_rows(doc["metrics"], path)
    return doc


_ROW_TEXT = ("task", "lang", "metric", "protocol", "split")


def check_metric_rows(rows: Any, path: str | Path) -> None:
    """Every metric row has its key fields and a finite number as value (else one line naming
    the file and the row): a string or null value would otherwise fail deep in a report."""
    if not isinstance(rows, list):
        raise DataError(f"{path}: metrics must be a list of rows")
    for i, row in enumerate(rows):
        where = f"{path}: metrics[{i}]"
        if not isinstance(row, dict):
            raise DataError(f"{where}: not an object")
        missing = [k for k in (*_ROW_TEXT, "layer", "value") if k not in row]
        if missing:
            raise DataError(f"{where}: no {', '.join(missing)}")
        bad_text = [k for k in _ROW_TEXT if not isinstance(row[k], str)]
        if bad_text:
            raise DataError(f"{where}: {bad_text[0]} {row[bad_text[0]]!r} is not text")
        if not isinstance(row["layer"], int) or isinstance(row["layer"], bool):
            raise DataError(f"{where}: layer {row['layer']!r} is not a whole number")
        value = row["value"]
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise DataError(f"{where}: value {value!r} is not a number")
        if row.get("direction") is not None and not isinstance(row["direction"], str):
            raise DataError(f"{where}: direction {row['direction']!r} is not text")
