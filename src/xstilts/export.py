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

from xstilts.data.languages import to_laser
from xstilts.errors import DataError
from xstilts.evaluate.mteb import MTEB_PROTOCOLS
from xstilts.io import write_json_atomic

# (xstilts task, protocol) -> (MTEB task name, MTEB dataset revision in the MTEB task metadata)
MTEB_TASKS: dict[tuple[str, str], tuple[str, str]] = {
    ("tatoeba", "mteb"): ("Tatoeba", "69e8f12da6e31d59addadda9a9c8a2e601a0e282"),
    ("bucc2018", "mteb"): ("BUCC.v2", "1739dc11ffe9b7bfccd7f3d585aeb4c544fc6677"),
    ("bucc2018", "mteb-v1"): ("BUCC", "d51519689f32196a32af33b075a01d0e7c51e252"),
}
# Scripts of the Tatoeba languages in MTEB's subsets that are not written in Latin script.
_TATOEBA_SCRIPTS: dict[str, str] = {
    "amh": "Ethi", "ara": "Arab", "arq": "Arab", "arz": "Arab", "awa": "Deva", "bel": "Cyrl",
    "ben": "Beng", "ber": "Tfng", "bul": "Cyrl", "cmn": "Hans", "ell": "Grek", "heb": "Hebr",
    "hin": "Deva", "hye": "Armn", "jpn": "Jpan", "kat": "Geor", "kaz": "Cyrl", "khm": "Khmr",
    "kor": "Hang", "mal": "Mlym", "mar": "Deva", "max": "Deva", "mhr": "Cyrl", "mkd": "Cyrl",
    "mon": "Cyrl", "orv": "Cyrl", "pes": "Arab", "rus": "Cyrl", "srp": "Cyrl", "tam": "Taml",
    "tat": "Cyrl", "tel": "Telu", "tha": "Thai", "uig": "Arab", "ukr": "Cyrl", "urd": "Arab",
    "wuu": "Hans", "yid": "Hebr", "yue": "Hant",
}  # fmt: skip
_BUCC_LANGUAGES = {"de": "deu-Latn", "fr": "fra-Latn", "ru": "rus-Cyrl", "zh": "cmn-Hans"}
_SCORE_KEYS = ("precision", "recall", "f1", "accuracy")


def _subset(task: str, lang: str) -> tuple[str, list[str]]:
    """MTEB's ``hf_subset`` and ``languages`` for one of our language codes."""
    if task == "tatoeba":
        laser = to_laser(lang) or lang
        return f"{laser}-eng", [f"{laser}-{_TATOEBA_SCRIPTS.get(laser, 'Latn')}", "eng-Latn"]
    return f"{lang}-en", [_BUCC_LANGUAGES[lang], "eng-Latn"]


def mteb_task_results(doc: dict[str, Any], layer: int | None = None) -> dict[str, dict[str, Any]]:
    """MTEB result documents by task name, from the MTEB-protocol rows of one layer."""
    rows = [r for r in doc["metrics"] if r.get("protocol") in MTEB_PROTOCOLS]
    if not rows:
        raise DataError(
            "the results file has no MTEB-protocol rows; evaluate tatoeba or bucc2018 with "
            "--protocol mteb first"
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
        if key not in MTEB_TASKS:
            raise DataError(f"no MTEB task for {r['task']} rows with protocol {r['protocol']}")
        grouped[key][r["split"]].setdefault(r["lang"], {})[r["metric"]] = float(r["value"])
    out: dict[str, dict[str, Any]] = {}
    for (task, protocol), splits in grouped.items():
        name, revision = MTEB_TASKS[(task, protocol)]
        scores: dict[str, list[dict[str, Any]]] = {}
        for split, by_lang in splits.items():
            entries = []
            for lang, metrics in by_lang.items():
                missing = [k for k in _SCORE_KEYS if k not in metrics]
                if missing:
                    raise DataError(f"{task} {lang} {split}: no {', '.join(missing)} in the rows")
                hf_subset, languages = _subset(task, lang)
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
