"""Tatoeba: cosine top-1 between aligned sentence lists, XTREME or MTEB protocol.

XTREME protocol (default): ``en->x``: English sentences query the other side (XTREME's
reported direction); ``x->en``: the other side queries English (the LASER/MTEB direction);
``mean``: their average. Accuracy only. With different query and document prefixes each side is
embedded in both roles, so the searching side always carries the query prefix.

MTEB protocol (``--protocol mteb``): the non-English side queries the English side (query and
document prefix respectively); accuracy plus MTEB's weighted precision/recall/F1
(:mod:`xstilts.tasks.mteb`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from xstilts.data.fetch import Download, recorded_checksums
from xstilts.data.languages import ALL_TATOEBA, parse_tatoeba_langs, to_laser
from xstilts.data.tatoeba import TatoebaPair, load_tatoeba, tatoeba_paths
from xstilts.metrics import accuracy_at_1
from xstilts.retrieval.knn import Backend, knn, normalize
from xstilts.tasks.base import (
    ConsoleTable,
    Headline,
    MtebTask,
    RetrievalTask,
    Rows,
    SearchWork,
    knn_search,
)
from xstilts.tasks.context import EvalContext
from xstilts.tasks.mteb import MTEB_DIRECTION, mteb_rows, scores_of, top1
from xstilts.tasks.results import metric_row
from xstilts.tasks.settings import EvalSettings
from xstilts.tasks.views import per_language

TATOEBA_URL = "https://raw.githubusercontent.com/facebookresearch/LASER/main/data/tatoeba/v1"
# Scripts of the Tatoeba languages in MTEB's subsets that are not written in Latin script.
_MTEB_SCRIPTS: dict[str, str] = {
    "amh": "Ethi", "ara": "Arab", "arq": "Arab", "arz": "Arab", "awa": "Deva", "bel": "Cyrl",
    "ben": "Beng", "ber": "Tfng", "bul": "Cyrl", "cmn": "Hans", "ell": "Grek", "heb": "Hebr",
    "hin": "Deva", "hye": "Armn", "jpn": "Jpan", "kat": "Geor", "kaz": "Cyrl", "khm": "Khmr",
    "kor": "Hang", "mal": "Mlym", "mar": "Deva", "max": "Deva", "mhr": "Cyrl", "mkd": "Cyrl",
    "mon": "Cyrl", "orv": "Cyrl", "pes": "Arab", "rus": "Cyrl", "srp": "Cyrl", "tam": "Taml",
    "tat": "Cyrl", "tel": "Telu", "tha": "Thai", "uig": "Arab", "ukr": "Cyrl", "urd": "Arab",
    "wuu": "Hans", "yid": "Hebr", "yue": "Hant",
}  # fmt: skip


def tatoeba_correct(
    x: np.ndarray,
    en: np.ndarray,
    backend: Backend = "auto",
    *,
    x_doc: np.ndarray | None = None,
    en_doc: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-query correctness of cosine top-1, ``(en->x, x->en)``, for aligned ``x[i] <-> en[i]``.

    ``x``/``en`` are the query-role embeddings; ``x_doc``/``en_doc`` the document-role ones
    when the prefixes differ (default: the same arrays).
    """
    gold = np.arange(len(x))
    xq, enq = normalize(x), normalize(en)
    xd = xq if x_doc is None else normalize(x_doc)
    end = enq if en_doc is None else normalize(en_doc)
    _, en2x = knn(enq, xd, 1, backend)
    _, x2en = knn(xq, end, 1, backend)
    return en2x[:, 0] == gold, x2en[:, 0] == gold


def accuracy_rows(lang: str, layer: int, en_x: np.ndarray, x_en: np.ndarray) -> list[dict]:
    """The three XTREME-protocol rows from per-query correctness."""
    acc_en_x = accuracy_at_1(en_x, np.ones_like(en_x))
    acc_x_en = accuracy_at_1(x_en, np.ones_like(x_en))
    return [
        metric_row("tatoeba", lang, layer, "accuracy", acc_en_x, direction="en->x"),
        metric_row("tatoeba", lang, layer, "accuracy", acc_x_en, direction="x->en"),
        metric_row("tatoeba", lang, layer, "accuracy", (acc_en_x + acc_x_en) / 2, direction="mean"),
    ]


def tatoeba_metrics(
    x: np.ndarray,
    en: np.ndarray,
    lang: str,
    layer: int,
    backend: Backend = "auto",
    *,
    x_doc: np.ndarray | None = None,
    en_doc: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Accuracy@1 both ways for aligned embeddings ``x[i] <-> en[i]`` of one layer."""
    en_x, x_en = tatoeba_correct(x, en, backend, x_doc=x_doc, en_doc=en_doc)
    return accuracy_rows(lang, layer, en_x, x_en)


def _xtreme_pair(ctx: EvalContext, pair: TatoebaPair) -> list[dict[str, Any]]:
    """Both directions; each side embedded once, or twice when query/doc prefixes differ."""
    qp, dp = ctx.settings.role_prefixes()
    x, en = ctx.encode([pair.x, pair.en], prefix=qp)
    x_doc, en_doc = (x, en) if qp == dp else ctx.encode([pair.x, pair.en], prefix=dp)
    ctx.save_embeddings(f"tatoeba.{pair.lang}.{pair.lang}", x)
    ctx.save_embeddings(f"tatoeba.{pair.lang}.en", en)
    if qp != dp:
        ctx.save_embeddings(f"tatoeba.{pair.lang}.{pair.lang}.doc", x_doc)
        ctx.save_embeddings(f"tatoeba.{pair.lang}.en.doc", en_doc)
    rows: list[dict[str, Any]] = []
    with ctx.timing("search"):
        for j, layer in enumerate(ctx.layers):
            en_x, x_en = tatoeba_correct(
                x[j],
                en[j],
                ctx.settings.search,
                x_doc=None if qp == dp else x_doc[j],
                en_doc=None if qp == dp else en_doc[j],
            )
            rows += accuracy_rows(pair.lang, layer, en_x, x_en)
            ctx.add_items("tatoeba", pair.lang, layer, "correct", en_x, direction="en->x")
            ctx.add_items("tatoeba", pair.lang, layer, "correct", x_en, direction="x->en")
    return rows


def _mteb_pair(ctx: EvalContext, pair: TatoebaPair) -> list[dict[str, Any]]:
    """MTEB: the non-English side (queries) searches the English side (corpus)."""
    (x,), (en,) = ctx.encode_roles([pair.x], [pair.en])
    ctx.save_embeddings(f"tatoeba.{pair.lang}.{pair.lang}", x)
    ctx.save_embeddings(f"tatoeba.{pair.lang}.en", en)
    gold = np.arange(len(pair))
    rows: list[dict[str, Any]] = []
    with ctx.timing("search"):
        for j, layer in enumerate(ctx.layers):
            predicted = top1(x[j], en[j], ctx.settings.search)
            rows += mteb_rows("tatoeba", pair.lang, layer, scores_of(predicted, gold))
            ctx.add_items(
                "tatoeba", pair.lang, layer, "correct", predicted == gold,
                direction=MTEB_DIRECTION, protocol="mteb",
            )  # fmt: skip
    return rows


class Tatoeba(RetrievalTask):
    """Tatoeba bitext retrieval (LASER v1 test sets): cosine top-1 both ways, 112 languages."""

    name = "tatoeba"
    description = "Tatoeba bitext retrieval (LASER v1 test sets), accuracy@1, 112 languages"
    languages = ALL_TATOEBA
    default_langs = "xtreme"
    metric = "accuracy"
    reference = "Artetxe & Schwenk 2019; XTREME (Hu et al. 2020)"
    protocols = ("xtreme", "mteb")
    subset = "the first {n} pairs per language"
    fetchable = True
    headlines = (
        Headline("tatoeba", "accuracy", "en->x", "Tatoeba accuracy en->x"),
        Headline("tatoeba", "accuracy", "x->en", "Tatoeba accuracy x->en"),
        Headline("tatoeba", "accuracy", "x->en", "Tatoeba (MTEB) accuracy", "mteb"),
        Headline("tatoeba", "f1", "x->en", "Tatoeba (MTEB) F1", "mteb", kinds=()),
    )
    mteb_tasks: ClassVar[dict[str, MtebTask]] = {
        "mteb": MtebTask("Tatoeba", "69e8f12da6e31d59addadda9a9c8a2e601a0e282")
    }

    def parse_langs(self, spec: str) -> list[str]:
        return parse_tatoeba_langs(spec)

    def files(self, data_dir: Path, lang: str) -> list[Path]:
        return list(tatoeba_paths(data_dir / "tatoeba", to_laser(lang) or lang))

    def texts(
        self, data_dir: Path, langs: list[str], max_sentences: int | None = None
    ) -> Iterator[str]:
        for lang in langs:
            pair = load_tatoeba(data_dir, lang).head(max_sentences)
            yield from pair.x
            yield from pair.en

    def searches(
        self,
        data_dir: Path,
        langs: list[str],
        settings: EvalSettings,
        protocol: str = "xtreme",
        max_sentences: int | None = None,
    ) -> list[SearchWork]:
        """Top-1 of each side among the other (XTREME: both directions; MTEB: x->en)."""
        directions = 1 if protocol == "mteb" else 2
        out = []
        for lang in langs:
            n = len(load_tatoeba(data_dir, lang).head(max_sentences))
            out += [knn_search(n, n, 1, settings.search)] * directions
        return out

    def downloads(self, base_url: str | None, langs: list[str] | None) -> list[Download]:
        sums = recorded_checksums()["tatoeba"]
        base = (base_url or TATOEBA_URL).rstrip("/")
        names = sorted(sums)
        if langs is not None:
            lasers = {to_laser(code) for code in parse_tatoeba_langs(",".join(langs))}
            names = [n for n in names if n.split(".")[1].split("-")[0] in lasers]
        return [Download(f"{base}/{n}", f"tatoeba/{n}", sums[n]) for n in names]

    def evaluate(self, ctx: EvalContext) -> tuple[Rows, dict[str, Any]]:
        """Every language; all files are checked before anything is encoded."""
        with ctx.timing("data"):
            pairs = [load_tatoeba(ctx.data_dir, lang).head(ctx.max_sentences) for lang in ctx.langs]
        mteb = ctx.protocol == "mteb"
        qp, dp = ctx.settings.role_prefixes()
        passes = 1 if mteb or qp == dp else 2
        ctx.start_progress(sum(2 * passes * len(p) for p in pairs), "encoding Tatoeba")
        evaluate_pair = _mteb_pair if mteb else _xtreme_pair
        rows: Rows = []
        for pair in pairs:
            rows += evaluate_pair(ctx, pair)
        sizes = {p.lang: {"x": len(p.x), "en": len(p.en)} for p in pairs}
        return rows, sizes

    def console_tables(self, results: dict[str, Any]) -> list[ConsoleTable]:
        if results["settings"].get("protocol") == "mteb":
            title = "Tatoeba, MTEB protocol (x->en)"
            return per_language(results, title, ("f1", "accuracy"), "x")
        return per_language(
            results, "Tatoeba accuracy", ("accuracy",), "x", index="direction", chooser="mean",
            chooser_label="mean accuracy (both directions)",
        )  # fmt: skip

    def mteb_subset(self, lang: str) -> tuple[str, list[str]]:
        laser = to_laser(lang) or lang
        return f"{laser}-eng", [f"{laser}-{_MTEB_SCRIPTS.get(laser, 'Latn')}", "eng-Latn"]
