"""Experiment specs, grid expansion, the runner end to end (with a kill and a resume)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from xstilts.errors import DataError, UsageError
from xstilts.experiment.grid import expand_grid
from xstilts.experiment.spec import load_spec

REPO = Path(__file__).resolve().parents[1]


def write_spec(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def base_doc(model: str = "builtin:tiny-random-xlmr") -> dict:
    return {
        "name": "t",
        "models": [model],
        "seeds": [0, 1],
        "training": {
            "max_steps": 3,
            "batch_size": 4,
            "max_examples": 12,
            "max_length": 32,
            "eval_max_examples": 8,
            "lr": 1e-3,
        },
        "settings": [
            {"name": "baseline", "tasks": []},
            {"name": "mnli", "tasks": ["mnli"]},
            {
                "name": "xnli",
                "tasks": ["xnli"],
                "langs": ["de", "fr"],
                "training": {"train_split": "dev"},
            },
            {
                "name": "both",
                "tasks": ["mnli", "xnli"],
                "langs": ["de"],
                "training": {"train_split": {"xnli": "dev"}},
            },
        ],
        "evaluation": {
            "layers": [1, 2],
            "report_layer": 2,
            "tasks": [{"task": "tatoeba", "langs": ["de", "sw"]}],
        },
        "report": {"bootstrap": 200},
    }


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("models"), "models: Field required"),
        (lambda d: d["settings"].append({"name": "mnli", "tasks": ["qqp"]}), "unique: mnli"),
        (lambda d: d["training"].update(lr=-1), "settings[1].training.lr"),
        (lambda d: d["training"].update(seed=3), "training: seed come from the grid"),
        (lambda d: d["evaluation"].update(layers="some"), "evaluation.layers"),
        (lambda d: d["report"].update(baseline="none"), "report.baseline 'none'"),
        (lambda d: d["settings"][1].update(colour="red"), "settings[1].colour"),
        (lambda d: d["training"].update(sampling="random"), "sampling"),
        (
            lambda d: d["evaluation"]["tasks"].append({"task": "mewsli-x", "max_sentences": 9}),
            "evaluation.tasks[1]: --max-sentences applies to tatoeba, bucc2018 and lareqa only",
        ),
        (
            lambda d: d["evaluation"]["tasks"].append({"task": "tatoebaa"}),
            "evaluation.tasks[1]: unknown task 'tatoebaa'",
        ),
    ],
)
def test_spec_errors_name_the_key(tmp_path, mutate, message):
    doc = base_doc()
    mutate(doc)
    with pytest.raises(UsageError) as err:
        load_spec(write_spec(tmp_path / "s.yaml", doc))
    assert message in str(err.value) and "s.yaml" in str(err.value)
    assert "\n" not in str(err.value)


def test_invalid_yaml_names_the_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nmodels: [a\nseeds: 1\n")
    with pytest.raises(UsageError, match=r"bad.yaml:\d+: invalid YAML"):
        load_spec(p)


def test_grid_expansion(tmp_path):
    spec = load_spec(write_spec(tmp_path / "s.yaml", base_doc()))
    cells = expand_grid(spec)
    # baseline once (no training, seed-free) + 3 trained settings x 2 seeds
    assert [(c.setting.name, c.seed) for c in cells] == [
        ("baseline", None),
        ("mnli", 0),
        ("mnli", 1),
        ("xnli", 0),
        ("xnli", 1),
        ("both", 0),
        ("both", 1),
    ]
    groups = {c.setting.name: c.group for c in cells}
    assert groups == {
        "baseline": "baseline",
        "mnli": "english",
        "xnli": "multilingual",
        "both": "multilingual",  # 12 English + 12 German/French rows: half is non-English
    }
    both = next(c for c in cells if c.setting.name == "both")
    assert both.group_source == "data" and both.plan["english_share"] == 0.5
    assert len({c.key for c in cells}) == len(cells)
    again = expand_grid(load_spec(write_spec(tmp_path / "s.yaml", base_doc())))
    assert [c.key for c in again] == [c.key for c in cells]  # stable keys
    xnli = next(c for c in cells if c.setting.name == "xnli")
    assert xnli.train.train_split == "dev" and xnli.train.langs == ["de", "fr"]
    assert spec.output == tmp_path / "runs" / "t"


@pytest.mark.dtype_sensitive
def test_runner_end_to_end_with_report(tmp_path, data_dir):
    from xstilts.experiment.runner import run_experiment
    from xstilts.experiment.store import ResultStore
    from xstilts.report import make_report

    spec = load_spec(write_spec(tmp_path / "s.yaml", base_doc()))
    summary = run_experiment(spec)
    assert not summary.failed, summary.failed
    assert len(summary.done) == 7
    store = ResultStore(spec.output / "results.sqlite")
    df = store.metrics()
    # 7 cells x 2 languages x 2 layers x 3 directions
    assert len(df) == 7 * 2 * 2 * 3
    assert set(df.setting) == {"baseline", "mnli", "xnli", "both"}
    assert (store.cells().status == "done").all()
    # rerunning skips everything
    again = run_experiment(spec)
    assert len(again.skipped) == 7 and not again.done
    store.close()
    out = tmp_path / "report"
    make_report(spec.output / "results.sqlite", out)
    assert (out / "report.html").is_file() and (out / "results.csv").is_file()


@pytest.mark.dtype_sensitive
def test_missing_training_data_is_refused_before_anything_runs(tmp_path):
    doc = base_doc()
    doc["settings"].append({"name": "broken", "tasks": ["hellaswag"]})  # no train split here
    spec = load_spec(write_spec(tmp_path / "s.yaml", doc))
    with pytest.raises(DataError, match=r"setting broken: hellaswag train: no data file found"):
        expand_grid(spec)


@pytest.mark.dtype_sensitive
def test_a_failing_cell_is_recorded_and_the_rest_go_on(tmp_path, monkeypatch):
    from xstilts.experiment import runner
    from xstilts.experiment.runner import run_experiment
    from xstilts.experiment.store import ResultStore

    real_train = runner.train

    def train_or_fail(cfg, **kw):
        if cfg.tasks == ["sst2"]:
            raise RuntimeError("sst2 exploded mid-training")
        return real_train(cfg, **kw)

    monkeypatch.setattr(runner, "train", train_or_fail)
    doc = base_doc()
    doc["seeds"] = [0]
    doc["settings"].append({"name": "broken", "tasks": ["sst2"]})
    spec = load_spec(write_spec(tmp_path / "s.yaml", doc))
    summary = run_experiment(spec)
    assert list(summary.failed) == ["broken @ builtin:tiny-random-xlmr seed 0"]
    assert "sst2 exploded" in next(iter(summary.failed.values()))
    cells = ResultStore(spec.output / "results.sqlite").cells().set_index("setting")
    assert cells.loc["broken", "status"] == "failed" and cells.loc["mnli", "status"] == "done"


def test_killed_run_resumes_without_duplicate_or_lost_rows(tmp_path):
    """SIGKILL the runner mid-run, rerun it, and compare with an uninterrupted run."""
    doc = base_doc()
    doc["seeds"] = [0]
    spec_path = write_spec(tmp_path / "s.yaml", doc)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "xstilts", "run", str(spec_path), "--no-report"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = tmp_path / "runs" / "t" / "results.sqlite"
    deadline = time.time() + 300
    while time.time() < deadline:  # kill once the first cell's rows are in
        time.sleep(0.5)
        if db.exists():
            try:
                with sqlite3.connect(db) as con:
                    n = con.execute("SELECT COUNT(*) FROM evals WHERE status='done'").fetchone()[0]
            except sqlite3.OperationalError:
                continue
            if n >= 1:
                break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(db) as con:
        partial = con.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
    assert 0 < partial < 4 * 2 * 2 * 3
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=600)
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
        distinct = con.execute(
            "SELECT COUNT(*) FROM (SELECT DISTINCT cell_key, task, lang, layer, direction, "
            "metric, protocol, split FROM metrics)"
        ).fetchone()[0]
        statuses = {s for (s,) in con.execute("SELECT status FROM cells")}
    assert rows == distinct == 4 * 2 * 2 * 3
    assert statuses == {"done"}


def test_eval_hash_ignores_batching_but_not_protocol_settings(tmp_path):
    from xstilts.experiment.runner import eval_hash

    spec = load_spec(write_spec(tmp_path / "s.yaml", base_doc()))
    task = spec.evaluation.tasks[0]
    before = eval_hash(spec, task)
    spec.evaluation.batch_size, spec.evaluation.max_tokens_per_batch = 7, 0
    assert eval_hash(spec, task) == before  # speed settings do not change the numbers
    spec.evaluation.pooling = "cls"
    assert eval_hash(spec, task) != before


CONFIGS = Path(__file__).resolve().parents[1] / "src" / "xstilts" / "configs"

# The study's groups as the rows trained on decide them (not as the names suggest): the
# controls are what make the design readable (xnli-en: XNLI's items in English only; mnli+mlm:
# English task rows plus multilingual MLM text, a mixed group).
STUDY_GROUPS = {
    "baseline": "baseline", "mnli": "english", "qqp": "english", "sst2": "english",
    "anli": "english", "hellaswag": "english", "cosmosqa": "english",
    "commonsenseqa": "english", "tydiqa-en": "english", "english-mt": "english",
    "xnli": "multilingual", "pawsx": "multilingual", "tydiqa-multi": "multilingual",
    "multi-mt": "multilingual", "mnli-pairs": "english", "xnli-hybrid": "multilingual",
    "xnli-mono": "multilingual", "xnli-cross": "multilingual", "xnli-en": "english",
    "mnli+mlm": "mixed",
}  # fmt: skip


def test_study_specs_share_one_design_and_groups_come_out_as_designed(data_dir):
    full = load_spec(CONFIGS / "study-e5-small.yaml")
    cpu = load_spec(CONFIGS / "study-e5-small-cpu.yaml")
    xlmr = load_spec(CONFIGS / "study-xlmr.yaml")
    by_name = {s.name: s for s in full.settings}
    # the CPU variant keeps some settings of the full design, each defined exactly as there
    assert {s.name: s for s in cpu.settings}.items() <= by_name.items()
    assert {s.name: s for s in xlmr.settings} == by_name  # XLM-R: the very same design
    assert [t.task for t in xlmr.evaluation.tasks] == [t.task for t in full.evaluation.tasks]
    assert len(full.seeds) >= 3 and len(xlmr.seeds) >= 3
    assert full.training["budget"] == xlmr.training["budget"]
    one_seed = full.model_copy(update={"seeds": [0]})
    assert {c.setting.name: c.group for c in expand_grid(one_seed)} == STUDY_GROUPS
