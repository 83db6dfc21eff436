"""An honest comparison: groups from the rows trained on, matched budgets, "best" chosen on a
held-out selection split, no training text that is evaluation text, corrected significance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import run_cli
from xstilts.errors import UsageError
from xstilts.experiment.grid import expand_grid
from xstilts.experiment.spec import ReportOptions, load_spec
from xstilts.report import corrections
from xstilts.report.build import headline_result
from xstilts.report.folds import build_folds, selection_mask
from xstilts.tasks import all_headlines
from xstilts.tasks.results import metric_row
from xstilts.train.config import TrainConfig
from xstilts.train.data import plan_record
from xstilts.train.loop import train
from xstilts.train.record import derive_group

# ------------------------------------------------------------------ groups from data


def test_group_rule():
    assert derive_group({"en": 10}) == "english"
    assert derive_group({"en": 5, "de": 5}) == "multilingual"  # half is "at least half"
    assert derive_group({"en": 6, "de": 4}) == "mixed"
    assert derive_group({"de": 3, "und": 1}) == "multilingual"
    assert derive_group({"en": 9, "und": 1}) == "mixed"  # unknown language is not English


def cfg(**kw) -> TrainConfig:
    return TrainConfig(model="m", out=Path("/tmp/unused"), **kw)


def test_xnli_limited_to_english_is_english(data_dir):
    plan = plan_record(cfg(tasks="xnli", langs=["en"], train_split="dev"), data_dir)
    assert plan["group"] == "english" and set(plan["tasks"]["xnli"]["rows"]) == {"en"}
    multi = plan_record(cfg(tasks="xnli", langs=["de", "fr"], train_split="dev"), data_dir)
    assert multi["group"] == "multilingual"


def test_tydiqa_default_and_english_xglue_task_are_english(data_dir, tmp_path):
    assert plan_record(cfg(tasks="tydiqa"), data_dir)["group"] == "english"
    # XGLUE NC: its training split is English only, whatever its 5 evaluation languages
    nc = tmp_path / "xglue" / "NC"
    nc.mkdir(parents=True)
    rows = "".join(f"Title {i}\tSome news body number {i}.\tsports\n" for i in range(20))
    (nc / "xglue.nc.en.train").write_text(rows)
    for lang in ("en", "de"):
        (nc / f"xglue.nc.{lang}.dev").write_text(rows)
    plan = plan_record(cfg(tasks="xglue-nc"), tmp_path)
    assert plan["group"] == "english" and plan["tasks"]["xglue-nc"]["rows"] == {"en": 20}


def test_mlm_text_makes_english_training_mixed(data_dir):
    plan = plan_record(cfg(tasks="mnli", mlm_aux=True), data_dir)
    assert plan["group"] == "mixed" and 0.5 < plan["english_share"] < 1


def spec_doc(settings: list[dict], tasks: list[dict] | None = None, **top) -> dict:
    return {
        "name": "c",
        "models": ["builtin:tiny-random-xlmr"],
        "training": {"max_steps": 1, "batch_size": 2, "max_examples": 8},
        "settings": [{"name": "baseline", "tasks": []}, *settings],
        "evaluation": {"layers": [1, 2], "tasks": tasks or [{"task": "tatoeba", "langs": "de"}]},
        **top,
    }


def write_spec(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def test_spec_group_must_agree_with_the_data_or_say_override(tmp_path, data_dir):
    xnli_en = {
        "name": "xen",
        "tasks": ["xnli"],
        "langs": ["en"],
        "training": {"train_split": "dev"},
    }
    spec = load_spec(
        write_spec(tmp_path / "a.yaml", spec_doc([{**xnli_en, "group": "multilingual"}]))
    )
    with pytest.raises(UsageError, match="group 'multilingual' contradicts its training data"):
        expand_grid(spec)
    spec = load_spec(
        write_spec(
            tmp_path / "b.yaml",
            spec_doc([{**xnli_en, "group": "multilingual", "group_override": True}]),
        )
    )
    (cell,) = [c for c in expand_grid(spec) if c.train is not None]
    assert (cell.group, cell.group_source, cell.plan["group"]) == (
        "multilingual",
        "override",
        "english",
    )


# ------------------------------------------------------------------ the leakage guard


@pytest.mark.parametrize(
    ("setting", "task", "needle"),
    [
        (
            # all of German XQuAD: LAReQA's German questions and a part of its candidate pool
            {"name": "xq", "tasks": ["xquad"], "langs": ["de"], "training": {"max_examples": None}},
            {"task": "lareqa", "langs": "de"},
            "training xquad x evaluation lareqa",
        ),
        (
            {
                "name": "mlm",
                "tasks": ["mnli"],
                "training": {"mlm_aux": True, "mlm_data": ["de:TATOEBA"]},
            },
            {"task": "tatoeba", "langs": "de"},
            "training mlm x evaluation tatoeba",
        ),
    ],
)
def test_training_on_evaluation_text_is_refused_with_counts(
    setting, task, needle, tmp_path, data_dir, capsys, monkeypatch
):
    tatoeba = data_dir / "tatoeba" / "tatoeba.deu-eng.deu"
    if "mlm_data" in setting.get("training", {}):
        setting["training"]["mlm_data"] = [f"de:{tatoeba}"]
    spec = write_spec(tmp_path / "s.yaml", spec_doc([setting], [task]))
    code, _, err = run_cli(["run", str(spec), "--dry-run"], capsys, monkeypatch)
    assert code == 2 and needle in err and "--allow-overlap" in err, err
    count = int(err.split(needle + ": ")[1].split(" texts")[0])
    share = float(err.split(" texts, ")[1].split("%")[0])
    assert count > 500 and share > 5, err  # far above the contamination threshold
    code, out, err = run_cli(
        ["run", str(spec), "--dry-run", "--allow-overlap", "--no-estimate"], capsys, monkeypatch
    )
    assert code == 0 and needle in out, err


# ------------------------------------------------------------------ matched budgets


@pytest.mark.dtype_sensitive
def test_budget_gives_every_setting_the_same_examples(tiny_model, tmp_path):
    """Different tasks, different sizes, one budget: the same examples seen, within a step."""
    seen = {}
    for name, kw in {
        "xnli": dict(tasks="xnli", langs=["de", "fr"], train_split="dev", max_examples=30),
        "mnli+sst2": dict(tasks="mnli,sst2", max_examples=12),
    }.items():
        config = TrainConfig(
            model=str(tiny_model), out=tmp_path / name, batch_size=4, grad_accum=2,
            budget="examples:100", max_length=32, eval_max_examples=4, **kw,
        )  # fmt: skip
        record = train(config).record
        seen[name] = record
        assert 100 <= record["examples"] < 100 + 4 * 2  # within one optimizer step
    assert seen["mnli+sst2"]["tasks"]["sst2"]["epochs"] > 1  # the small task repeats
    assert seen["xnli"]["group"] == "multilingual" and seen["mnli+sst2"]["group"] == "english"


def test_budget_syntax():
    assert TrainConfig(
        model="m", out=Path("x"), tasks="mnli", budget="tokens:2e6"
    ).budget.target == (2_000_000)
    with pytest.raises(ValueError, match="one of them"):
        TrainConfig(model="m", out=Path("x"), tasks="mnli", budget={"examples": 1, "tokens": 2})


# ------------------------------------------------------------------ held-out selection


def test_selection_and_test_splits_are_disjoint_and_fixed():
    mask = selection_mask(300, "tatoeba|de|test|selection", fraction=1 / 3, seed=0)
    assert mask.sum() == 100 and (~mask).sum() == 200
    again = selection_mask(300, "tatoeba|de|test|selection", fraction=1 / 3, seed=0)
    assert np.array_equal(mask, again)  # every cell, run and report draws the same split
    other = selection_mask(300, "tatoeba|fr|test|selection", fraction=1 / 3, seed=0)
    assert not np.array_equal(mask, other)
    groups = np.repeat(np.arange(30), 10)  # 30 articles of 10 questions
    by_group = selection_mask(
        300, "lareqa|de|test|selection", fraction=1 / 3, seed=0, groups=groups
    )
    for g in range(30):  # an article is on one side only
        assert len(set(by_group[groups == g])) == 1
    assert by_group.sum() == 100


def test_a_stratum_of_one_group_is_split_by_item_and_said_so():
    # a quick LAReQA subset whose 74 Arabic questions all come from one article: a split by
    # article would leave one side empty (the study's report crashed on it); split by item
    one = np.zeros(74, dtype=int)
    mask = selection_mask(74, "lareqa|ar|test|selection", fraction=1 / 3, seed=0, groups=one)
    assert mask.sum() == 25 and (~mask).sum() == 49
    items = {("a", "ar"): np.arange(74) % 2 == 0, ("b", "ar"): np.arange(74) % 3 == 0}
    folds = build_folds(
        items, {"ar": one}, "mean", {"ar": "lareqa|ar|test|selection"},
        fraction=1 / 3, seed=0, n_boot=50,
    )  # fmt: skip
    assert folds.by_item == ["ar"] and folds.selection.sizes["ar"] == 25
    two = np.repeat([0, 1], 37)
    assert (
        build_folds(
            items, {"ar": two}, "mean", {"ar": "k"}, fraction=1 / 3, seed=0, n_boot=50
        ).by_item
        == []
    )


def _two_candidates(selection_winner: str, n: int = 300) -> tuple[pd.DataFrame, dict]:
    """Baseline, two English and one multilingual setting whose per-sentence outcomes make
    ``selection_winner`` better on the selection split and the other better on the test split."""
    key = "tatoeba|de|test|selection"
    sel = selection_mask(n, key, fraction=1 / 3, seed=0)
    base = np.zeros(n, dtype=bool)
    base[: n // 2] = True
    win_sel = base | sel  # right on every selection item
    win_test = base | ~sel  # right on every test item
    outcomes = {
        "base": base,
        "e1": win_sel if selection_winner == "e1" else win_test,
        "e2": win_test if selection_winner == "e1" else win_sel,
        "m": base.copy(),
    }
    rows = []
    for cell, grp in (
        ("base", "baseline"),
        ("e1", "english"),
        ("e2", "english"),
        ("m", "multilingual"),
    ):
        row = metric_row(
            "tatoeba", "de", 1, "accuracy", float(outcomes[cell].mean()), direction="en->x"
        )
        rows.append({**row, "model": "x", "setting": cell, "grp": grp,
                     "seed": None if cell == "base" else 0, "cell_key": cell})  # fmt: skip
    return pd.DataFrame(rows), outcomes


@pytest.mark.parametrize("winner", ["e1", "e2"])
def test_best_is_chosen_on_the_selection_split_only(winner):
    df, outcomes = _two_candidates(winner)

    def items(cell, key, kind):
        return outcomes[cell] if kind == "correct" else None

    headline = all_headlines()[0]  # Tatoeba en->x
    res = headline_result(df, headline, 1, items, ReportOptions(baseline="base", bootstrap=200))
    corrections.apply([res])
    loser = "e2" if winner == "e1" else "e1"
    assert res.english_vs_multilingual.b == winner and res.best.b == winner
    # what is reported about the choice comes from the test split, where the winner is worse
    assert res.best.reported_on == "the test split"
    assert res.english_vs_multilingual.b_score < next(
        r.score for r in res.settings if r.setting == loser
    )


# ------------------------------------------------------------------ the runner and the report


@pytest.mark.dtype_sensitive
def test_report_shows_groups_budgets_selection_and_corrected_significance(tmp_path, data_dir):
    from xstilts.experiment.runner import run_experiment
    from xstilts.report import make_report

    doc = spec_doc(
        [
            {"name": "mnli", "tasks": ["mnli"]},
            {
                "name": "xnli",
                "tasks": ["xnli"],
                "langs": ["de", "fr"],
                "training": {"train_split": "dev"},
            },
        ],
        [{"task": "tatoeba", "langs": ["de", "fr"], "max_sentences": 60}],
    )
    doc["training"] = {"budget": {"examples": 24}, "batch_size": 4, "max_examples": 16}
    doc["report"] = {"bootstrap": 200}
    spec = load_spec(write_spec(tmp_path / "s.yaml", doc))
    assert not run_experiment(spec).failed
    report, paths = make_report(spec.output / "results.sqlite", tmp_path / "report")
    training = {t.setting: t for t in report.training}
    assert training["mnli"].group == "english" and training["xnli"].group == "multilingual"
    assert training["mnli"].examples == training["xnli"].examples == 24
    assert set(training["xnli"].by_lang) == {"de", "fr"}
    md = paths["markdown"].read_text()
    assert "## What each setting trained on" in md and "multilingual (from data)" in md
    assert "chosen on the selection split, reported on the test split" in md
    assert "Holm-Bonferroni" in md and "## Smallest detectable difference" in md
    summary = pd.read_csv(paths["summary"])
    assert {"p_value", "p_holm", "significant", "seed_sd"} <= set(summary.columns)


# ------------------------------------------------------------------ one layer parser


def test_layers_last_in_a_spec_is_the_last_hidden_state_as_on_the_command_line(tmp_path):
    from xstilts.experiment.spec import check_spec_models
    from xstilts.layers import parse_layers, resolve_layers

    doc = spec_doc([])
    doc["evaluation"]["layers"] = "last"
    spec = load_spec(write_spec(tmp_path / "s.yaml", doc))
    evaluated = check_spec_models(spec)["builtin:tiny-random-xlmr"]
    cli = resolve_layers(parse_layers("last", option="--layer"), 3)
    assert evaluated == cli == [2]  # the tiny model's hidden states are 0..2
    doc["evaluation"]["layers"] = "1,last"
    spec = load_spec(write_spec(tmp_path / "s.yaml", doc))
    assert check_spec_models(spec)["builtin:tiny-random-xlmr"] == [1, 2]
