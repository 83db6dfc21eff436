"""A retrieval task defined here, in the test file alone (one object, registered), goes through
``xstilts evaluate``, the experiment runner, the report and the MTEB export with no change
anywhere else: what "adding a task is one module" means."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import yaml

from conftest import run_cli
from xstilts.experiment.estimate import search_seconds
from xstilts.experiment.runner import run_experiment
from xstilts.experiment.spec import load_spec
from xstilts.io import read_lines
from xstilts.report import make_report
from xstilts.tasks import (
    ConsoleTable,
    EvalContext,
    Headline,
    MtebTask,
    RetrievalTask,
    register,
)
from xstilts.tasks.base import fixed_langs
from xstilts.tasks.mteb import MTEB_DIRECTION, mteb_rows, scores_of, top1
from xstilts.tasks.registry import unregister
from xstilts.tasks.results import metric_row
from xstilts.tasks.views import per_language

# Every test evaluates through --dtype auto: run with native bf16 both ways.
pytestmark = pytest.mark.dtype_sensitive

LANGS = ("de", "fr")


class ToyBitext(RetrievalTask):
    """Sentence pairs ``<lang><TAB>en`` per line in ``toy/<lang>.tsv``; x->en cosine top-1."""

    name = "toy-bitext"
    description = "A bitext retrieval task declared in a test file"
    languages = LANGS
    metric = "accuracy"
    reference = "tests/test_plugin_task.py"
    protocols = ("xtreme", "mteb")
    headlines = (
        Headline("toy-bitext", "accuracy", "x->en", "Toy accuracy x->en"),
        Headline("toy-bitext", "accuracy", "x->en", "Toy (MTEB) accuracy", "mteb"),
    )
    mteb_tasks: ClassVar[dict[str, MtebTask]] = {"mteb": MtebTask("ToyBitext", "rev-1")}

    def parse_langs(self, spec: str) -> list[str]:
        return fixed_langs("toy", LANGS)(spec)

    def files(self, data_dir: Path, lang: str) -> list[Path]:
        return [data_dir / "toy" / f"{lang}.tsv"]

    def texts(
        self, data_dir: Path, langs: list[str], max_sentences: int | None = None
    ) -> Iterator[str]:
        for lang in langs:
            for line in read_lines(self.files(data_dir, lang)[0]):
                yield from line.split("\t")

    def evaluate(self, ctx: EvalContext) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        sizes: dict[str, Any] = {}
        for lang in ctx.langs:
            pairs = [line.split("\t") for line in read_lines(self.files(ctx.data_dir, lang)[0])]
            x, en = [p[0] for p in pairs], [p[1] for p in pairs]
            (xe,), (ene,) = ctx.encode_roles([x], [en])
            gold = np.arange(len(pairs))
            for j, layer in enumerate(ctx.layers):
                predicted = top1(xe[j], ene[j], ctx.settings.search)
                if ctx.protocol == "mteb":
                    rows += mteb_rows(self.name, lang, layer, scores_of(predicted, gold))
                else:
                    acc = float((predicted == gold).mean())
                    rows.append(
                        metric_row(self.name, lang, layer, "accuracy", acc, direction="x->en")
                    )
                ctx.add_items(
                    self.name, lang, layer, "correct", predicted == gold,
                    direction=MTEB_DIRECTION, protocol=ctx.protocol,
                )  # fmt: skip
            sizes[lang] = {"x": len(pairs)}
        return rows, sizes

    def console_tables(self, results: dict[str, Any]) -> list[ConsoleTable]:
        return per_language(results, "Toy bitext", ("accuracy",), "x")

    def mteb_subset(self, lang: str) -> tuple[str, list[str]]:
        return f"{lang}-en", [f"{lang}-Latn", "eng-Latn"]


@pytest.fixture
def toy(data_dir: Path, tmp_path: Path):
    """The task registered, and its data (real Tatoeba pairs) under a data root."""
    root = tmp_path / "data"
    (root / "toy").mkdir(parents=True)
    for lang, laser in (("de", "deu"), ("fr", "fra")):
        x = read_lines(data_dir / "tatoeba" / f"tatoeba.{laser}-eng.{laser}")[:40]
        en = read_lines(data_dir / "tatoeba" / f"tatoeba.{laser}-eng.eng")[:40]
        pairs = "".join(f"{a}\t{b}\n" for a, b in zip(x, en, strict=True))
        (root / "toy" / f"{lang}.tsv").write_text(pairs)
    (root / "mnli").symlink_to(data_dir / "mnli")  # the training data of the runner test
    register(ToyBitext())
    yield root
    unregister("toy-bitext")


def test_evaluate_and_mteb_export(toy, tiny_model, tmp_path, capsys, monkeypatch):
    args = ["evaluate", "-m", str(tiny_model), "-t", "toy-bitext", "--data-dir", str(toy)]
    code, out, err = run_cli([*args, "--out", str(tmp_path / "r.json")], capsys, monkeypatch)
    assert code == 0, err
    assert "Toy bitext" in out and "de" in out
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["task"] == "toy-bitext" and {r["lang"] for r in res["metrics"]} == {"de", "fr"}
    code, _, err = run_cli(
        [*args, "--protocol", "mteb", "--layer", "last", "--out", str(tmp_path / "m.json")],
        capsys, monkeypatch,
    )  # fmt: skip
    assert code == 0, err
    code, _, err = run_cli(
        ["export-mteb", str(tmp_path / "m.json"), str(tmp_path / "mteb")], capsys, monkeypatch
    )
    assert code == 0, err
    doc = json.loads((tmp_path / "mteb" / "ToyBitext.json").read_text())
    assert doc["dataset_revision"] == "rev-1"
    assert {e["hf_subset"] for e in doc["scores"]["test"]} == {"de-en", "fr-en"}
    code, out, _ = run_cli(["data", "list", "--data-dir", str(toy)], capsys, monkeypatch)
    assert code == 0 and "toy-bitext" in out


def test_runner_and_report(toy, tmp_path):
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(
        yaml.safe_dump(
            {
                "name": "toy",
                "models": ["builtin:tiny-random-xlmr"],
                "data_dir": str(toy),
                "training": {"max_steps": 2, "batch_size": 4, "max_examples": 8},
                "settings": [
                    {"name": "baseline", "tasks": []},
                    {"name": "mnli", "tasks": ["mnli"]},
                ],
                "evaluation": {"layers": [1, 2], "tasks": [{"task": "toy-bitext"}]},
                "report": {"bootstrap": 200},
            }
        )
    )
    spec = load_spec(spec_path)
    # the task declares no searches: run-time estimates name it instead of guessing
    assert search_seconds(spec, 32) == ({}, ["toy-bitext/xtreme"])
    summary = run_experiment(spec)
    assert not summary.failed and len(summary.done) == 2
    report, paths = make_report(spec_path, tmp_path / "report")
    (result,) = report.results
    assert result.headline.label == "Toy accuracy x->en" and result.languages == ["de", "fr"]
    assert result.settings[0].ci is not None  # per-sentence items gave a paired bootstrap CI
    assert "Toy accuracy x->en" in paths["markdown"].read_text()
