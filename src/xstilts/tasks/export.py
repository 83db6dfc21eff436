"""Export MTEB-protocol rows of a results file as MTEB-style result files.

MTEB keeps one JSON file per task (``results/<org>__<model>/<revision>/<Task>.json`` in
embeddings-benchmark/results), shaped like::

    {"dataset_revision": ..., "task_name": "Tatoeba", "mteb_version": ...,
     "scores": {"test": [{"precision", "recall", "f1", "accuracy", "main_score",
                          "hf_subset": "deu-eng", "languages": ["deu-Latn", "eng-Latn"]}, ...]},
     "evaluation_time": ..., "kg_co2_emissions": null, "date": null}

:func:`mteb_task_results` builds those documents from the ``protocol`` ``mteb``/``mteb-v1`` rows
of one layer; :func:`write_mteb_results` writes them as ``<DIR>/<Task>.json``. The files are
computed by xstilts from local data, not by MTEB: ``mteb_version`` is null, and
``dataset_revision`` names the MTEB dataset revision whose protocol and language subsets the
numbers follow. Scores are fractions in [0, 1], as in MTEB.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from xstilts.errors import DataError
from xstilts.io import write_json_atomic
from xstilts.tasks.base import MtebTask
from xstilts.tasks.mteb import MTEB_PROTOCOLS
from xstilts.tasks.registry import get_task

_SCORE_KEYS = ("precision", "recall", "f1", "accuracy")


def _mteb_task(task: str, protocol: str) -> MtebTask:
    """The MTEB task a task's rows of one protocol correspond to (declared by the task)."""
    mapping = get_task(task).mteb_tasks
    if protocol not in mapping:
        raise DataError(f"no MTEB task for {task} rows with protocol {protocol}")
    return mapping[protocol]


def mteb_task_results(doc: dict[str, Any], layer: int | None = None) -> dict[str, dict[str, Any]]:
    """MTEB result documents by task name, from the MTEB-protocol rows of one layer."""
    rows = [r for r in doc["metrics"] if r.get("protocol") in MTEB_PROTOCOLS]
    if not rows:
        raise DataError(
            "the results file has no MTEB-protocol rows; evaluate a task that has one "
            "(xstilts data list) with --protocol mteb first"
        )
    layers = sorted({int(r["layer"]) for r in rows})
    if layer is None:
        if len(layers) > 1:
            raise DataError(
                f"the results hold layers {', '.join(map(str, layers))}; choose one with --layer"
            )
        layer = layers[0]
    elif layer not in layers:
        raise DataError(
            f"layer {layer} is not in the results (layers: {', '.join(map(str, layers))})"
        )
    # (task, protocol) -> split -> lang -> {metric: value}
    grouped: dict[tuple[str, str], dict[str, dict[str, dict[str, float]]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for r in rows:
        if int(r["layer"]) != layer:
            continue
        key = (r["task"], r["protocol"])
        _mteb_task(*key)  # unknown combinations fail before anything is written
        grouped[key][r["split"]].setdefault(r["lang"], {})[r["metric"]] = float(r["value"])
    out: dict[str, dict[str, Any]] = {}
    for (task, protocol), splits in grouped.items():
        mteb = _mteb_task(task, protocol)
        name, revision = mteb.name, mteb.revision
        scores: dict[str, list[dict[str, Any]]] = {}
        for split, by_lang in splits.items():
            entries = []
            for lang, metrics in by_lang.items():
                missing = [k for k in _SCORE_KEYS if k not in metrics]
                if missing:
                    raise DataError(f"{task} {lang} {split}: no {', '.join(missing)} in the rows")
                hf_subset, languages = get_task(task).mteb_subset(lang)
                entries.append(
                    {
                        **{k: metrics[k] for k in _SCORE_KEYS},
                        "main_score": metrics["f1"],
                        "hf_subset": hf_subset,
                        "languages": languages,
                    }
                )
            scores[split] = entries
        out[name] = {
            "dataset_revision": revision,
            "task_name": name,
            "mteb_version": None,
            "scores": scores,
            "evaluation_time": doc.get("timings", {}).get("total_s"),
            "kg_co2_emissions": None,
            "date": None,
        }
    return out


def write_mteb_results(doc: dict[str, Any], out_dir: Path, layer: int | None = None) -> list[Path]:
    """Write ``<out_dir>/<Task>.json`` for every MTEB task in ``doc``; returns the paths."""
    paths = []
    for name, result in mteb_task_results(doc, layer).items():
        path = Path(out_dir) / f"{name}.json"
        write_json_atomic(path, result)
        paths.append(path)
    return paths
