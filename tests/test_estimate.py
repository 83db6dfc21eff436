"""Run-time estimates of ``xstilts run --dry-run``: calibration cache, the arithmetic, and
finished work counted as done."""

from __future__ import annotations

import math

import numpy as np
import pytest

from test_experiment import base_doc, write_spec
from xstilts.experiment import estimate
from xstilts.experiment.estimate import Calibration, estimate_cells, training_tokens
from xstilts.experiment.grid import expand_grid
from xstilts.experiment.runner import pending_evaluations, run_experiment
from xstilts.experiment.spec import load_spec
from xstilts.models import resolve_model
from xstilts.paths import resolve_data_dir

pytestmark = pytest.mark.dtype_sensitive  # the estimate resolves "auto" as a run would

FIXED = Calibration(1000.0, 10_000.0, 2.0, "test machine", "now")


def small_doc() -> dict:
    doc = base_doc()
    doc["seeds"] = [0]
    doc["settings"] = doc["settings"][:2]  # baseline and mnli
    return doc


def test_calibration_is_measured_once_per_model_and_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("XSTILTS_CACHE", str(tmp_path))  # no calibration from earlier tests
    first, fresh = estimate.cached_calibration("builtin:tiny-random-xlmr", "fp32", "fp32")
    again, fresh_again = estimate.cached_calibration("builtin:tiny-random-xlmr", "fp32", "fp32")
    assert fresh and not fresh_again and first == again
    assert first.train_tokens_per_s > 0 and first.encode_tokens_per_s > first.train_tokens_per_s
    assert first.machine == estimate.machine_id()
    # another precision is another measurement
    assert estimate.calibration_file("m", "fp32", "fp32") != estimate.calibration_file(
        "m", "bf16", "fp32"
    )


def test_estimate_counts_steps_tokens_and_loads_and_finished_work_is_free(tmp_path, monkeypatch):
    monkeypatch.setattr(estimate, "cached_calibration", lambda *a, **k: (FIXED, False))
    monkeypatch.setattr(estimate, "time_search", lambda w, dim, seed=0: w.queries * 1e-4)
    spec = load_spec(write_spec(tmp_path / "s.yaml", small_doc()))
    cells = expand_grid(spec)
    baseline, mnli = estimate_cells(spec, cells, pending_evaluations(spec, cells))
    tok = resolve_model("builtin:tiny-random-xlmr").load_tokenizer()
    eval_tokens = sum(estimate.evaluation_tokens(spec, tok).values())
    assert eval_tokens > 1000
    # Tatoeba de (1000 pairs) and sw (390), both directions, 0.1 ms a query, layers 1 and 2
    search = 2 * 2 * (1000 + 390) * 1e-4
    assert baseline.search_s == pytest.approx(search)
    assert baseline.train_s == 0
    assert baseline.eval_s == pytest.approx(2.0 + eval_tokens / 1e4 + search)
    assert mnli.eval_s == pytest.approx(baseline.eval_s)
    cfg = cells[1].train
    per_example = training_tokens(cfg, cells[1].plan, tok, resolve_data_dir(None))
    assert 10 < per_example <= 32  # max_length 32
    # load + 3 steps x 4 examples x tokens / 1000 tok/s + one dev evaluation of 8 rows
    expected = 2.0 + 12 * per_example / 1000 + 8 * per_example / 10_000
    assert mnli.train_s == pytest.approx(expected)
    assert mnli.note == f"3 steps x 4, {per_example:.0f} tok/ex"

    summary = run_experiment(spec)
    assert not summary.failed
    done = estimate_cells(spec, cells, pending_evaluations(spec, cells))
    assert [e.total_s for e in done] == [0.0, 0.0] and done[1].note == "trained"


def test_budget_in_tokens_sets_the_steps():
    from xstilts.train.config import Budget, TrainConfig

    cfg = TrainConfig(model="m", tasks=["mnli"], out="x", batch_size=8, grad_accum=2)
    plan = {"tasks": {"mnli": {"rows": {"en": 1000}, "probability": 1.0}}}
    assert estimate.steps_of(cfg, plan, 40.0) == math.ceil(3 * 1000 / 16)  # 3 epochs
    tokens = cfg.model_copy(update={"budget": Budget(tokens=16_000)})
    assert estimate.steps_of(tokens, plan, 40.0) == 25  # 400 examples of 40 tokens / 16
    assert estimate.steps_of(cfg.model_copy(update={"max_steps": 7}), plan, 40.0) == 7


def test_dry_run_prints_the_estimate(tmp_path, capsys, monkeypatch):
    from conftest import run_cli

    spec = write_spec(tmp_path / "s.yaml", small_doc())
    code, out, err = run_cli(["run", str(spec), "--dry-run"], capsys, monkeypatch)
    assert code == 0, err  # (calibrated by the first test of this session, or now)
    assert "estimate on this machine" in out and "total" in out and "3 steps x 4" in out
    code, out, _ = run_cli(["run", str(spec), "--dry-run", "--no-estimate"], capsys, monkeypatch)
    assert code == 0 and "estimate on this machine" not in out


# --------------------------------------------------------------------------- search time


def _count_products(monkeypatch) -> list[int]:
    """Record query x corpus rows of every exact search (both backends of ``knn``)."""
    from xstilts.retrieval import knn as knn_module

    products: list[int] = []
    for name in ("knn_faiss", "knn_numpy"):
        real = getattr(knn_module, name)

        def counted(queries, corpus, k, *a, _real=real, **kw):
            products.append(len(queries) * len(corpus))
            return _real(queries, corpus, k, *a, **kw)

        monkeypatch.setattr(knn_module, name, counted)
    return products


@pytest.mark.parametrize(
    ("task", "langs", "protocol", "max_sentences"),
    [
        ("tatoeba", "de,sw", "xtreme", 40),
        ("tatoeba", "de", "mteb", 40),
        ("bucc2018", "zh", "xtreme", 300),
        ("bucc2018", "zh", "mteb", 300),
        ("lareqa", "de,en", "xtreme", 3),
        ("mewsli-x", "ar,en", "xtreme", None),
    ],
)
def test_declared_searches_are_the_searches_an_evaluation_runs(
    task, langs, protocol, max_sentences, tiny_model, data_dir, tmp_path, monkeypatch
):
    """What the estimate times (each task's ``searches``) is what ``evaluate`` computes: the
    same query x corpus products per layer, and each declared run searches those sizes."""
    from test_xtremer import write_mewsli
    from xstilts.tasks import check_request
    from xstilts.tasks.run import evaluate_model
    from xstilts.tasks.settings import EvalSettings, TaskRequest

    if task == "mewsli-x":
        write_mewsli(tmp_path, data_dir)
        data_dir = tmp_path
    settings = EvalSettings(layers=[1, 2], cache=False)
    request = TaskRequest(task=task, langs=langs, protocol=protocol, max_sentences=max_sentences)
    t, resolved = check_request(request)
    works = t.searches(data_dir, resolved, settings, protocol, max_sentences)
    declared = sum(w.queries * w.corpus for w in works)
    assert declared > 0

    products = _count_products(monkeypatch)
    evaluate_model(str(tiny_model), settings, request, data_dir)
    assert sum(products) == 2 * declared  # two layers

    rng = np.random.default_rng(0)
    for work in works:
        products.clear()
        work.run(rng.standard_normal((work.queries, 8)), rng.standard_normal((work.corpus, 8)))
        assert sum(products) == work.queries * work.corpus, work.label


def test_time_search_times_a_sample_of_the_queries_against_the_whole_corpus(monkeypatch):
    """A fake clock that a query advances by 10 ms: the timed sample is scaled exactly."""
    from types import SimpleNamespace

    from xstilts.tasks.base import SearchWork

    clock = [0.0]
    monkeypatch.setattr(estimate, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    monkeypatch.setattr(estimate, "SEARCH_SAMPLE", 10)
    seen = []

    def run(queries, corpus):
        seen.append((len(queries), len(corpus), queries.shape[1]))
        clock[0] += 0.01 * len(queries)

    seconds = estimate.time_search(SearchWork(40, 300, run, "fake"), dim=16)
    assert seen == [(8, 300, 16), (10, 300, 16)]  # a warm-up, then the timed sample
    assert seconds == pytest.approx(0.4)  # 10 queries timed (0.1 s), scaled to 40
    seen.clear()
    assert estimate.time_search(SearchWork(5, 300, run, "fake"), dim=16) == pytest.approx(0.05)
    assert seen[-1] == (5, 300, 16)  # fewer than the sample: all of them
    assert estimate.time_search(SearchWork(0, 300, run, "fake"), dim=16) == 0.0


def test_search_seconds_add_up_per_task_and_equal_searches_are_timed_once(tmp_path, monkeypatch):
    calls = []

    def fake(work, dim, seed=0):
        calls.append((work.queries, work.corpus, dim))
        return 1.0

    monkeypatch.setattr(estimate, "time_search", fake)
    spec = load_spec(write_spec(tmp_path / "s.yaml", small_doc()))
    seconds, unknown = estimate.search_seconds(spec, 32)
    # Tatoeba de (1000 pairs) and sw (390), both directions: 4 searches of 1 s, 2 sizes timed
    assert unknown == [] and seconds == {"tatoeba/xtreme": 4.0}
    assert sorted(calls) == [(390, 390, 32), (1000, 1000, 32)]
