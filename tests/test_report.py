"""The comparison report on a synthetic results store: numbers, CIs, findings, files, browser.

The store holds 4 settings (baseline; mnli, English, 2 seeds; xnli, multilingual; copy, mixed,
whose outcomes equal the baseline's), 3 Tatoeba languages, 2 BUCC languages, layers 6 and 12,
with per-sentence items written as the runner writes them.
"""

from __future__ import annotations

import base64
import collections
import json
import re
import shutil
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import run_cli
from xstilts.data.language_info import (
    JOSHI_CLASS,
    MIXED_SCRIPT,
    SCRIPT,
    joshi_class,
    resource_group,
    script,
)
from xstilts.data.languages import ALL_TATOEBA, LASER_TO_ISO1, display_code
from xstilts.errors import DataError, UsageError
from xstilts.experiment.spec import ExperimentSpec
from xstilts.experiment.store import ResultStore, encode_items
from xstilts.metrics import prf
from xstilts.report import corrections, make_report
from xstilts.report.build import build_report, compare_results, decode_result_items
from xstilts.tasks.results import build_results, metric_row

LANGS = ("de", "sw", "ka")
LAYERS = (6, 12)
N_TATOEBA = 200
N_BUCC = 150
B = 200
# setting -> (group, seeds, extra accuracy per seed at the report layer)
SETTINGS = {
    "baseline": ("baseline", [None], [0.0]),
    "mnli": ("english", [0, 1], [0.15, 0.16]),
    "xnli": ("multilingual", [0], [0.05]),
    "copy": ("mixed", [0], [0.0]),
}


def _improve(correct: np.ndarray, gain: float, rng: np.random.Generator) -> np.ndarray:
    """Flip wrong answers to right until accuracy rises by ``gain`` (never loses one)."""
    out = correct.copy()
    wrong = np.flatnonzero(~out)
    k = min(len(wrong), round(gain * len(out)))
    out[rng.choice(wrong, size=k, replace=False)] = True
    return out


def _bucc_counts(pred_correct: np.ndarray, pred_wrong: np.ndarray) -> np.ndarray:
    """(tp, pred, gold) per source sentence: the first 100 sentences have a gold pair."""
    gold = (np.arange(N_BUCC) < 100).astype(float)
    tp = (pred_correct & (gold > 0)).astype(float)
    pred = np.clip(tp + pred_wrong, 0, 1)
    return np.stack([tp, pred, gold], axis=1)


def _cell_data(setting: str, seed: int | None, gains: float, layer: int):
    """Metric rows and items of one cell at one layer (deterministic per setting and seed)."""
    metrics, items = [], []
    # the baseline's outcomes are the base; others improve on them (copy: gains 0)
    layer_gain = gains if layer == 12 else gains / 2
    for li, lang in enumerate(LANGS):
        for di, direction in enumerate(("en->x", "x->en")):
            base = np.random.default_rng(100 + 10 * li + di + layer).random(N_TATOEBA) < 0.55
            rng = np.random.default_rng([li, di, layer, 0 if seed is None else seed + 1])
            correct = _improve(base, layer_gain, rng) if layer_gain else base
            metrics.append(
                metric_row("tatoeba", lang, layer, "accuracy", correct.mean(), direction=direction)
            )
            items.append(
                {
                    "task": "tatoeba",
                    "lang": lang,
                    "layer": layer,
                    "direction": direction,
                    "protocol": "xtreme",
                    "split": "test",
                    "kind": "correct",
                    "values": correct,
                }
            )
        acc = np.mean([m["value"] for m in metrics[-2:]])
        metrics.append(metric_row("tatoeba", lang, layer, "accuracy", acc, direction="mean"))
    # MTEB-protocol row: stored, shown in results.csv, never a headline
    metrics.append(
        metric_row("tatoeba", "de", layer, "accuracy", 0.5, direction="x->en", protocol="mteb")
    )
    for li, (lang, splits) in enumerate((("de", ("dev", "test")), ("zh", ("dev",)))):
        for si, split in enumerate(splits):
            rng = np.random.default_rng(200 + 10 * li + si + layer)
            hit = rng.random(N_BUCC) < 0.6
            wrong = (rng.random(N_BUCC) < 0.2).astype(float)
            if layer_gain:
                seed_rng = np.random.default_rng([li, si, 0 if seed is None else seed + 1])
                hit = _improve(hit, layer_gain, seed_rng)
            counts = _bucc_counts(hit, wrong)
            p, r, f = prf(*counts.sum(axis=0).tolist())
            for name, v in (
                ("precision", p),
                ("recall", r),
                ("f1", f),
                ("threshold", 1.1),
                ("n_predicted", counts[:, 1].sum()),
            ):
                metrics.append(metric_row("bucc2018", lang, layer, name, v, split=split))
            for k, kind in enumerate(("tp", "pred", "gold")):
                items.append(
                    {
                        "task": "bucc2018",
                        "lang": lang,
                        "layer": layer,
                        "direction": None,
                        "protocol": "xtreme",
                        "split": split,
                        "kind": kind,
                        "values": counts[:, k],
                    }
                )
    return metrics, items


def make_store(path: Path, *, drop_items: set[str] = frozenset(), with_spec: bool = True) -> Path:
    """A results store as the runner writes it (spec in meta, one cell per setting x seed)."""
    spec = ExperimentSpec.model_validate(
        {
            "name": "synthetic",
            "models": ["tiny"],
            "seeds": [0, 1],
            "settings": [
                {"name": "baseline", "tasks": []},
                {"name": "mnli", "tasks": ["mnli"]},
                {"name": "xnli", "tasks": ["xnli"]},
                {"name": "copy", "tasks": ["mnli", "xnli"], "group": "mixed"},
            ],
            "evaluation": {
                "tasks": [
                    {"task": "tatoeba", "langs": list(LANGS)},
                    {"task": "bucc2018", "langs": ["de", "zh"], "max_sentences": 2500},
                ],
                "layers": list(LAYERS),
                "report_layer": "last",
            },
            "report": {"bootstrap": B, "seed": 0},
        }
    )
    store = ResultStore(path)
    if with_spec:
        store.set_meta("spec", spec.model_dump(mode="json"))
    for setting, (group, seeds, gains) in SETTINGS.items():
        for seed, gain in zip(seeds, gains, strict=True):
            key = f"{setting}-{seed}"
            store.upsert_cell(
                key,
                spec="synthetic",
                model="tiny",
                setting=setting,
                grp=group,
                seed=seed,
                tasks="[]",
                status="done",
            )
            for task in ("tatoeba", "bucc2018"):
                rows, its = [], []
                for layer in LAYERS:
                    m, i = _cell_data(setting, seed, gain, layer)
                    rows += [r for r in m if r["task"] == task]
                    its += [x for x in i if x["task"] == task]
                if setting in drop_items:
                    its = []
                store.write_eval(key, f"{task}/xtreme", "hash", rows, its)
    store.close()
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    """One synthetic store and its report (built once: plots take a moment)."""
    root = tmp_path_factory.mktemp("report")
    db = make_store(root / "results.sqlite")
    report, paths = make_report(db, root / "out")
    return db, report, paths


def _summary(paths) -> pd.DataFrame:
    return pd.read_csv(paths["summary"])


def _stored(db: Path) -> pd.DataFrame:
    store = ResultStore.open_existing(db)
    try:
        return store.metrics()
    finally:
        store.close()


# ---------------------------------------------------------------------------- language info


def test_language_info_covers_every_reported_language():
    from xstilts.data.bucc import BUCC_LANGS
    from xstilts.data.lareqa import LAREQA_LANGS
    from xstilts.data.mewsli import MEWSLI_LANGS

    codes = {*ALL_TATOEBA, *BUCC_LANGS, *LAREQA_LANGS, *MEWSLI_LANGS, "en"}
    assert codes <= set(SCRIPT) and codes <= set(JOSHI_CLASS)
    unknown = {c for c in codes if joshi_class(c) is None}
    assert unknown == {"arq", "dtp", "kzj", "lfn", "max", "nov", "orv", "swg", "tzl"}
    assert all(resource_group(c) == "unknown" for c in unknown)
    assert [resource_group(c) for c in ("en", "de", "hi", "ka", "sw", "ber", "arq")] == [
        "high",
        "high",
        "high",
        "mid",
        "low",
        "low",
        "unknown",
    ]
    assert (script("ja"), script("zh"), script("sr"), script("nope")) == (
        "Jpan",
        "Hani",
        "Latn",
        "unknown",
    )


_SCRIPT_OF = {
    "LATIN": "Latn",
    "CYRILLIC": "Cyrl",
    "ARABIC": "Arab",
    "GREEK": "Grek",
    "HEBREW": "Hebr",
    "CJK": "Hani",
    "HIRAGANA": "Jpan",
    "KATAKANA": "Jpan",
    "HANGUL": "Hang",
    "DEVANAGARI": "Deva",
    "BENGALI": "Beng",
    "TAMIL": "Taml",
    "TELUGU": "Telu",
    "MALAYALAM": "Mlym",
    "THAI": "Thai",
    "GEORGIAN": "Geor",
    "ARMENIAN": "Armn",
    "ETHIOPIC": "Ethi",
    "KHMER": "Khmr",
}


def test_scripts_are_the_majority_script_of_the_tatoeba_data(data_dir):
    for laser in LASER_TO_ISO1:
        text = (data_dir / "tatoeba" / f"tatoeba.{laser}-eng.{laser}").read_text("utf-8")
        counts = collections.Counter(
            _SCRIPT_OF.get(unicodedata.name(ch, "?").split()[0], "other")
            for ch in text
            if ch.isalpha()
        )
        code = display_code(laser)
        if code == "ja":  # kana + kanji: Japanese, whichever of the two is more frequent
            assert counts["Jpan"] > counts["Latn"]
            continue
        top, n = counts.most_common(1)[0]
        assert top == SCRIPT[code], (code, counts.most_common(3))
        assert (n / sum(counts.values()) < 0.9) == (code in MIXED_SCRIPT), code


# ---------------------------------------------------------------------------- numbers


def test_results_csv_equals_the_stored_metrics(built):
    db, _, paths = built
    stored = _stored(db)
    csv = pd.read_csv(paths["results"], keep_default_na=False, na_values={"seed": [""]})
    assert len(csv) == len(stored)
    keys = ["setting", "seed", "task", "lang", "layer", "direction", "metric", "protocol", "split"]
    stored = stored.assign(direction=stored.direction.fillna(""))
    merged = csv.merge(stored, on=keys, suffixes=("_csv", "_db"), validate="one_to_one")
    assert len(merged) == len(stored)
    assert (merged.value_csv == merged.value_db).all()  # exact: same floats, not rounded
    assert {"mteb"} <= set(csv.protocol)


def test_summary_numbers_equal_the_stored_metrics(built):
    db, report, paths = built
    stored = _stored(db)
    summary = _summary(paths)
    at = stored[
        (stored.layer == 12)
        & (stored.task == "tatoeba")
        & (stored.metric == "accuracy")
        & (stored.protocol == "xtreme")
        & (stored.direction == "en->x")
    ]
    base = at[at.setting == "baseline"].set_index("lang").value
    row = summary[(summary.headline == "tatoeba en->x") & (summary.setting == "baseline")]
    assert row.score.item() == np.mean(base.loc[list(LANGS)].to_numpy())
    mnli = at[at.setting == "mnli"]
    per_seed = [
        np.mean(g.set_index("lang").value.loc[list(LANGS)].to_numpy())
        for _, g in mnli.groupby("seed")
    ]
    row = summary[(summary.headline == "tatoeba en->x") & (summary.setting == "mnli")]
    assert row.score.item() == np.mean(per_seed)
    assert row.delta.item() == np.mean(per_seed) - np.mean(base.loc[list(LANGS)].to_numpy())
    # per language, single-seed setting: the stored value itself
    per_lang = pd.read_csv(paths["per_language"])
    xnli_ka = per_lang[
        (per_lang.headline == "tatoeba x->en")
        & (per_lang.setting == "xnli")
        & (per_lang.lang == "ka")
    ]
    stored_ka = stored[
        (stored.setting == "xnli")
        & (stored.lang == "ka")
        & (stored.layer == 12)
        & (stored.direction == "x->en")
        & (stored.protocol == "xtreme")
    ]
    assert xnli_ka.value.item() == stored_ka.value.item()
    # the Markdown table shows the same numbers, rounded
    md = paths["markdown"].read_text()
    res = next(r for r in report.results if r.headline.key == "tatoeba en->x")
    assert f"| mnli | english | 2 | {100 * res.settings[0].score:.1f} |" in md


def test_headline_selection_layer_and_split(built, tmp_path):
    db, report, _ = built
    assert report.layers == {"tiny": 12}
    keys = [r.headline.key for r in report.results]
    assert keys == ["tatoeba en->x", "tatoeba x->en", "bucc2018 f1"]  # no MTEB headline
    bucc = report.results[2]
    assert bucc.splits == {"de": "test", "zh": "dev"}
    assert bucc.tuned_split
    assert any("tuned on" in n and "zh" in n for n in bucc.notes)
    stored = _stored(db)
    f1 = stored[
        (stored.task == "bucc2018")
        & (stored.metric == "f1")
        & (stored.layer == 12)
        & (stored.setting == "baseline")
    ]
    expected = np.mean(
        [
            f1[(f1.lang == "de") & (f1.split == "test")].value.item(),
            f1[(f1.lang == "zh") & (f1.split == "dev")].value.item(),
        ]
    )
    assert bucc.baseline.score == expected
    six = build_report(db, layer=6, bootstrap=100)
    assert six.layers == {"tiny": 6} and all(r.layer == 6 for r in six.results)
    with pytest.raises(UsageError, match=r"layer 7 was not evaluated.*6, 12"):
        build_report(db, layer=7)
    with pytest.raises(UsageError, match="at least 100"):
        build_report(db, bootstrap=10)


def test_subset_evaluations_are_noted(built):
    _, report, paths = built
    assert any(
        "bucc2018 was evaluated on a subset: every gold pair and 2500 lines" in n
        for n in report.notes
    )
    assert "2500 lines per side" in paths["markdown"].read_text(encoding="utf-8")


def test_cis_and_significance(built):
    _, report, paths = built
    res = next(r for r in report.results if r.headline.key == "tatoeba en->x")
    by = {r.setting: r for r in res.settings}
    mnli, xnli, copy = by["mnli"], by["xnli"], by["copy"]
    # mnli: +15/16 points on every language, two seeds: both intervals exclude 0, but its
    # p-value is the larger of the two tests', and a t-test over 2 seeds (1 degree of freedom)
    # is weak: p 0.02 uncorrected does not survive Holm over the report's comparisons
    assert mnli.ci.low > 0 and mnli.seed_ci is not None and mnli.seed_ci.low > 0
    assert mnli.ci.n_boot == B and mnli.ci.n == 3 * N_TATOEBA
    assert mnli.ci.low <= mnli.delta <= mnli.ci.high
    assert mnli.ci.p_value < 0.01 and mnli.seed_ci.p_value == pytest.approx(0.0205, abs=1e-3)
    assert mnli.p_value == mnli.seed_ci.p_value and mnli.p_adjusted > 0.05
    assert mnli.significant is False
    # xnli: one seed, +5 points on 600 sentences: the bootstrap alone decides, and it survives
    assert xnli.seed_ci is None and xnli.p_value == xnli.ci.p_value
    assert xnli.p_adjusted < 0.05 and xnli.significant
    # copy has the baseline's outcomes: delta 0 with a zero-width interval, not significant
    assert copy.delta == 0 and (copy.ci.low, copy.ci.high) == (0.0, 0.0)
    assert copy.significant is False and copy.seed_ci is None
    assert all(lr.ci.low > 0 and lr.significant for lr in mnli.per_lang.values())
    md = paths["markdown"].read_text()
    xnli_row = next(ln for ln in md.splitlines() if ln.startswith("| xnli |"))
    copy_row = next(ln for ln in md.splitlines() if ln.startswith("| copy |"))
    assert " * |" in xnli_row and " * |" not in copy_row
    html_text = paths["html"].read_text()
    assert '<td class="sig">' in html_text
    # head to head: best English (mnli) vs best multilingual (xnli), picked on the selection
    # split and compared on the test split (xnli has one seed: no seed pairing)
    h2h = res.english_vs_multilingual
    assert (h2h.b, h2h.a) == ("mnli", "xnli")
    assert h2h.reported_on == "the test split" and "selection split" in h2h.selected_on
    assert h2h.delta == pytest.approx(h2h.b_score - h2h.a_score) and h2h.ci.low > 0
    assert abs(h2h.delta - (mnli.score - xnli.score)) < 0.05  # a subset of the same data
    # language groups: de high, ka mid, sw low; Latin vs Georgian script
    groups = {(g.kind, g.group) for g in res.groups if g.setting == "mnli"}
    assert groups == {
        ("resource", "high"),
        ("resource", "mid"),
        ("resource", "low"),
        ("script", "Latn"),
        ("script", "Geor"),
    }


def test_findings_name_the_best_setting_with_cis(built):
    _, report, paths = built
    from xstilts.report.findings import findings

    text = findings(report)
    first = text[0]
    assert first.startswith("Tatoeba accuracy en->x (layer 12): the best setting, mnli (picked")
    assert "measured on the test split" in first
    assert "95% CI [" in first and "significant" in first
    h2h = next(t for t in text if "best English setting" in t)
    assert "mnli" in h2h and "xnli" in h2h and "ahead of" in h2h and "95% CI" in h2h
    assert any("BUCC F1" in t and "optimistic" in t for t in text)
    assert "Holm-Bonferroni" in text[-1]
    md = paths["markdown"].read_text()
    assert "## Findings" in md and first in md


def test_missing_items_give_deltas_without_ci(tmp_path):
    db = make_store(tmp_path / "results.sqlite", drop_items={"xnli"})
    report = build_report(db, bootstrap=100)
    res = report.results[0]
    xnli = next(r for r in res.settings if r.setting == "xnli")
    mnli = next(r for r in res.settings if r.setting == "mnli")
    assert xnli.delta is not None and xnli.ci is None and xnli.significant is None
    assert all(lr.ci is None for lr in xnli.per_lang.values())
    assert mnli.ci is not None  # the others keep theirs
    assert any("no per-sentence items" in n for n in res.notes)
    assert res.english_vs_multilingual.ci is None  # xnli has no items: no CI for mnli - xnli


def test_store_without_spec_and_with_failures(tmp_path):
    db = make_store(tmp_path / "results.sqlite", with_spec=False)
    store = ResultStore(db)
    store.upsert_cell(
        "pawsx-0",
        spec="synthetic",
        model="tiny",
        setting="pawsx",
        grp="multilingual",
        seed=0,
        tasks="[]",
        status="failed",
        error="out of memory",
    )
    store.fail_eval("xnli-0", "bucc2018/xtreme", "hash", "file not found")
    store.close()
    report = build_report(db, bootstrap=100)
    assert report.spec is None and report.options.baseline == "baseline"  # from the group
    assert report.title == "results"
    assert any("pawsx" in n and "failed" in n and "out of memory" in n for n in report.notes)
    assert any("bucc2018/xtreme of xnli" in n for n in report.notes)
    bucc = next(r for r in report.results if r.headline.task == "bucc2018")
    assert "xnli" not in [r.setting for r in bucc.settings]  # its rows were removed


def test_head_to_head_pairs_seeds_without_items():
    from xstilts.experiment.spec import ReportOptions
    from xstilts.report.build import headline_result
    from xstilts.tasks import all_headlines

    HEADLINES = all_headlines()

    rows = []
    for setting, grp, seed, value in [
        ("base", "baseline", None, 0.5),
        ("e", "english", 0, 0.7),
        ("e", "english", 1, 0.72),
        ("m", "multilingual", 0, 0.6),
        ("m", "multilingual", 1, 0.61),
    ]:
        row = metric_row("tatoeba", "de", 1, "accuracy", value, direction="en->x")
        rows.append(
            {
                **row,
                "model": "x",
                "setting": setting,
                "grp": grp,
                "seed": seed,
                "cell_key": f"{setting}{seed}",
            }
        )
    res = headline_result(
        pd.DataFrame(rows), HEADLINES[0], 1, None, ReportOptions(baseline="base", bootstrap=100)
    )
    corrections.apply([res])
    h2h = res.english_vs_multilingual
    assert h2h.ci is None and h2h.delta == pytest.approx(0.105)
    assert "nothing" in h2h.selected_on or "no per-sentence items" in h2h.selected_on
    # per-seed differences 0.10 and 0.11: mean 0.105, half-width 12.706 * 0.00707 / sqrt(2)
    assert h2h.seed_ci.low == pytest.approx(0.105 - 12.706205 * 0.0070711 / 2**0.5, abs=1e-5)
    # the only test is the t-test over 2 seeds (p 0.04): with the other comparisons of the
    # family (e vs baseline, m vs baseline, best vs baseline) it is not significant after Holm
    assert h2h.p_value == pytest.approx(h2h.seed_ci.p_value) and h2h.p_value < 0.05
    assert h2h.p_adjusted >= h2h.p_value and h2h.significant is (h2h.p_adjusted < 0.05)
    e = next(r for r in res.settings if r.setting == "e")
    assert e.ci is None and e.seed_ci is not None and "no per-sentence items" in res.notes[0]


def test_lareqa_map_uses_ap_items():
    from xstilts.experiment.spec import ReportOptions
    from xstilts.report.build import headline_result
    from xstilts.tasks import all_headlines

    HEADLINES = all_headlines()

    ap = {"base": np.linspace(0, 1, 50), "e": np.linspace(0, 1, 50) ** 0.5}
    rows = [
        {**metric_row("lareqa", "el", 12, "map@20", float(np.mean(v.astype(np.float32)))),
         "model": "x", "setting": name, "grp": "baseline" if name == "base" else "english",
         "seed": None if name == "base" else 0, "cell_key": name}
        for name, v in ap.items()
    ]  # fmt: skip

    def items(cell, key, kind):
        assert key == ("lareqa", "el", 12, None, "xtreme", "test")
        if kind == "group":  # no articles stored: the selection split draws questions
            return None
        assert kind == "ap@20"
        return ap[cell].astype(np.float32)

    lareqa = next(h for h in HEADLINES if h.task == "lareqa")
    res = headline_result(pd.DataFrame(rows), lareqa, 12, items, ReportOptions(baseline="base"))
    corrections.apply([res])
    e = res.settings[0]
    assert e.ci is not None and e.ci.n == 50 and e.ci.low > 0 and e.significant
    assert res.languages == ["el"] and resource_group("el") == "mid"


def test_report_files_are_self_contained(built):
    _, _, paths = built
    out = paths["html"].parent
    pngs = sorted((out / "plots").glob("*.png"))
    assert len(pngs) == 9  # heatmap, layer curves, group bars for 3 headlines
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    page = paths["html"].read_text()
    assert "<script" not in page.lower()
    assert "http://" not in page and "https://" not in page
    assert page.count('src="data:image/png;base64,') == 9
    md = paths["markdown"].read_text()
    assert md.count("](plots/") == 9


def test_rewriting_a_report_reproduces_it_byte_for_byte_except_the_date(
    built, tmp_path, monkeypatch
):
    """What docs/study-e5-small.md promises: ``xstilts report`` on a store rewrites the
    committed report identically (plots included), also from a copy of the store in another
    checkout (the store's path is shown relative to the working directory)."""
    db = built[0]
    for name in ("first", "second"):
        copy = tmp_path / name / "runs" / "results.sqlite"
        copy.parent.mkdir(parents=True)
        shutil.copy(db, copy)
        monkeypatch.chdir(tmp_path / name)
        make_report(Path("runs/results.sqlite"), Path("report"))
    first, second = tmp_path / "first" / "report", tmp_path / "second" / "report"
    names = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert len(names) > 5
    date = re.compile(rb"Generated \d{4}-\d{2}-\d{2}")
    for name in names:
        a, b = (first / name).read_bytes(), (second / name).read_bytes()
        assert date.sub(b"", a) == date.sub(b"", b), name


def test_report_from_spec_yaml(tmp_path):
    out = tmp_path / "runs"
    make_store(out / "results.sqlite")
    spec_path = tmp_path / "exp.yaml"
    spec_path.write_text(
        yaml.safe_dump(
            {
                "name": "synthetic",
                "models": ["tiny"],
                "output": "runs",
                "settings": [{"name": "baseline"}, {"name": "mnli", "tasks": ["mnli"]}],
                "evaluation": {"tasks": [{"task": "tatoeba"}], "report_layer": 6},
                "report": {"bootstrap": 100},
            }
        )
    )
    report = build_report(spec_path)
    assert report.title == "synthetic" and report.layers == {"tiny": 6}
    assert report.options.bootstrap == 100


# ---------------------------------------------------------------------------- browser


def test_report_html_renders_in_headless_chromium(built, tmp_path):
    """The page opens in Debian's Chromium with no console error and every plot loaded."""
    chromium = Path("/usr/bin/chromium")
    assert chromium.exists(), "Debian's chromium is required: apt-get install -y chromium"
    from playwright.sync_api import sync_playwright

    _, _, paths = built
    errors: list[str] = []
    with sync_playwright() as pw:
        # a fresh, empty profile (--user-data-dir), as playwright wants it passed
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(chromium),
            headless=True,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(paths["html"].resolve().as_uri(), wait_until="load")
            images = page.evaluate(
                "Array.from(document.images)"
                ".map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
            )
            tables = page.evaluate("document.querySelectorAll('table').length")
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            context.close()
    assert errors == []
    assert len(images) == 9
    assert all(done and w > 0 and h > 0 for done, w, h in images), images
    assert tables >= 5


# ---------------------------------------------------------------------------- CLI


def _one_line_error(code: int, err: str, needle: str) -> None:
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert needle in lines[0], lines[0]


def test_cli_report(built, tmp_path, capsys, monkeypatch):
    db, _, _ = built
    code, out, err = run_cli(
        ["report", str(db), "--out", str(tmp_path / "r"), "--bootstrap", "100"], capsys, monkeypatch
    )
    assert code == 0, err
    assert "mnli" in out and "report:" in out and (tmp_path / "r" / "report.html").is_file()
    code, _, err = run_cli(
        ["report", str(tmp_path / "nope.sqlite"), "--out", str(tmp_path)], capsys, monkeypatch
    )
    _one_line_error(code, err, "no results store")
    code, _, err = run_cli(
        ["report", str(db), "--out", str(tmp_path), "--layer", "3"], capsys, monkeypatch
    )
    _one_line_error(code, err, "layer 3 was not evaluated")


def _results_file(
    path: Path,
    setting: str,
    *,
    task: str = "tatoeba",
    n: int | None = None,
    langs: tuple[str, ...] = LANGS,
) -> Path:
    """A results file as ``xstilts evaluate --out`` writes it, items included."""
    metrics, items = _cell_data(setting, 0, SETTINGS[setting][2][0], 12)
    metrics = [
        m for m in metrics if m["task"] == task and m["lang"] in langs and m["protocol"] == "xtreme"
    ]
    items = [i for i in items if i["task"] == task and i["lang"] in langs]
    doc = build_results(
        task=task,
        model={"spec": setting},
        languages=list(langs),
        settings={},
        sizes={},
        timings={},
        metrics=metrics,
    )
    doc["items"] = []
    for it in items:
        values = it["values"][:n] if n else it["values"]
        dtype, blob = encode_items(values)
        doc["items"].append(
            {
                **{
                    k: it[k]
                    for k in ("task", "lang", "layer", "direction", "protocol", "split", "kind")
                },
                "dtype": dtype,
                "n": len(values),
                "data": base64.b64encode(blob).decode(),
            }
        )
    path.write_text(json.dumps(doc))
    return path


def test_compare_two_results_files(tmp_path, capsys, monkeypatch):
    a = _results_file(tmp_path / "base.json", "baseline")
    b = _results_file(tmp_path / "mnli.json", "mnli")
    results, layer = compare_results(a, b, bootstrap=200)
    assert layer == 12 and [r.headline.key for r in results] == ["tatoeba en->x", "tatoeba x->en"]
    mnli = results[0].settings[0]
    assert mnli.setting == "mnli" and mnli.ci is not None and mnli.significant
    code, out, err = run_cli(["compare", str(a), str(b)], capsys, monkeypatch)
    assert code == 0, err
    assert "mean" in out and "*" in out and "de" in out
    # decoding round trip
    items = decode_result_items(json.loads(b.read_text()), b)
    assert len(items) == 6 and all(len(v) == N_TATOEBA for v in items.values())


def test_compare_bad_input(tmp_path, capsys, monkeypatch):
    a = _results_file(tmp_path / "base.json", "baseline")
    cases = {
        "not an xstilts results file": tmp_path / "x.json",
        "compare results of the same task": _results_file(
            tmp_path / "b.json", "mnli", task="bucc2018", langs=("de", "zh")
        ),
        "cover different languages": _results_file(tmp_path / "c.json", "mnli", langs=("de",)),
        "did not score the same sentences": _results_file(tmp_path / "d.json", "mnli", n=150),
    }
    (tmp_path / "x.json").write_text('{"hello": 1}')
    for needle, other in cases.items():
        code, _, err = run_cli(["compare", str(a), str(other)], capsys, monkeypatch)
        _one_line_error(code, err, needle)
    doc = json.loads(a.read_text())
    doc["items"][0]["data"] = "not base64!"
    with pytest.raises(DataError, match=r"items\[0\]: malformed"):
        decode_result_items(doc, "a.json")
    doc["items"][0]["data"] = base64.b64encode(b"\x00").decode()
    with pytest.raises(DataError, match="do not hold"):
        decode_result_items(doc, "a.json")
