"""Training: every head learns on real rows, resume is exact, bad input, the CPU smoke run."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import run_cli
from test_cli import assert_one_line_error
from xstilts.errors import DataError, UsageError
from xstilts.hardware import cpu_supports_bf16
from xstilts.models import resolve_model
from xstilts.models.runs import RUN_FILE, write_pointer
from xstilts.train.config import TrainConfig
from xstilts.train.loop import train

# training's mixed_precision "auto" follows the host's bf16 support: run both ways
pytestmark = pytest.mark.dtype_sensitive

CCG = (
    "Pierre\tN/N\nVinken\tN\nwill\t(S[dcl]\\NP)/(S[b]\\NP)\njoin\t(S[b]\\NP)/NP\nthe\tNP[nb]/N\n"
    "board\tN\n.\t.\n\nMr.\tN/N\nVinken\tN\nis\t(S[dcl]\\NP)/NP\nchairman\tN\n.\t.\n\n"
)


def losses(run_dir: Path) -> list[float]:
    rows = [json.loads(x) for x in (run_dir / "train_log.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


def small(tiny_model: Path, out: Path, tasks: str, **kw) -> TrainConfig:
    base = dict(
        model=str(tiny_model),
        tasks=tasks,
        out=out,
        max_examples=16,
        batch_size=8,
        max_steps=24,
        lr=1e-2,
        warmup_ratio=0.0,
        max_length=64,
        span_max_length=96,
        doc_stride=32,
        log_every=1,
        eval_max_examples=32,
        dropout=0.0,
    )
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize(
    ("tasks", "extra"),
    [
        ("mnli", {}),  # pair classification
        ("sst2", {"max_steps": 16}),  # single-sentence classification
        ("hellaswag", {"train_split": "dev"}),  # multiple choice (only dev exists here)
        ("tydiqa", {"langs": ["en"]}),  # extractive QA
    ],
)
def test_each_head_learns_on_real_rows(tasks, extra, tiny_model, tmp_path):
    result = train(small(tiny_model, tmp_path / "run", tasks, **extra))
    curve = losses(tmp_path / "run")
    first, last = sum(curve[:3]) / 3, sum(curve[-3:]) / 3
    assert last < 0.8 * first, curve
    assert result.final and "main" in next(iter(result.final.values()))


def test_tagging_head_learns_ccg(tiny_model, tmp_path):
    data = tmp_path / "data"
    (data / "ccg").mkdir(parents=True)
    (data / "ccg" / "train.tsv").write_text(CCG * 8)
    (data / "ccg" / "dev.tsv").write_text(CCG)
    train(small(tiny_model, tmp_path / "run", "ccg", data_dir=data, max_examples=16))
    curve = losses(tmp_path / "run")
    assert sum(curve[-3:]) < 0.6 * sum(curve[:3]), curve


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    ckpt = run_dir / "checkpoints" / "final"
    out = load_file(str(ckpt / "encoder" / "model.safetensors"))
    out.update(load_file(str(ckpt / "heads.safetensors")))
    return out


CONTRASTIVE = dict(
    tasks="xnli-parallel,mnli",  # the contrastive objective with a classification head
    langs=["de", "en", "fr"],
    train_split={"xnli-parallel": "dev"},
    hybrid_alpha=0.5,
    learn_temperature=True,
    prefix="query: ",
)


@pytest.mark.parametrize(
    "objective",
    [
        dict(tasks="mnli,sst2", sampling="uniform"),
        dict(**CONTRASTIVE, sampling="uniform", mlm_aux=True, mlm_data=["xnli"]),
        dict(tasks="xnli-parallel", langs=["de", "en"], train_split="dev", grad_cache=3),
    ],
    ids=["heads", "contrastive+head+mlm", "contrastive-gradcache"],
)
def test_resume_after_interrupt_gives_identical_weights(objective, tiny_model, tmp_path):
    kw = dict(max_steps=10, save_every=3, dropout=0.1, **objective)
    train(small(tiny_model, tmp_path / "a", **kw))

    class Interrupt(Exception):
        pass

    def stop_at_5(info):
        if info.step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(small(tiny_model, tmp_path / "b", **kw), on_step=stop_at_5)
    # the last complete checkpoint (step 3) is intact and nothing half-written is left
    ckpts = sorted(p.name for p in (tmp_path / "b" / "checkpoints").iterdir())
    assert ckpts == ["step-0000003"]
    with pytest.raises(UsageError, match="--resume"):
        train(small(tiny_model, tmp_path / "b", **kw))
    train(small(tiny_model, tmp_path / "b", resume=True, **kw))

    # the log holds every step once: steps 4 and 5 ran twice but are logged once
    def logged(run: str) -> list[int]:
        rows = map(json.loads, (tmp_path / run / "train_log.jsonl").open())
        return [r["step"] for r in rows if "loss" in r]

    assert logged("b") == logged("a") == list(range(1, 11))
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # and training really changed the weights (the comparison is not trivially true)
    base = load_file(str(tiny_model / "model.safetensors"))
    changed = [k for k in base if k in a and not torch.equal(base[k], a[k])]
    assert changed


def step_records(run_dir: Path) -> list[dict]:
    rows = [json.loads(x) for x in (run_dir / "train_log.jsonl").read_text().splitlines()]
    return [r for r in rows if "loss" in r]


@pytest.mark.parametrize(
    ("tasks", "extra"),
    [
        ("xnli-parallel", {"langs": ["de", "en", "fr"], "train_split": "dev", "hybrid_alpha": 0.5}),
        ("mnli-pairs", {}),
        ("mnli", {"objective": "contrastive"}),
    ],
)
def test_contrastive_objective_learns_on_real_rows(tasks, extra, tiny_model, tmp_path):
    result = train(small(tiny_model, tmp_path / "run", tasks, **extra))
    curve = losses(tmp_path / "run")
    assert sum(curve[-3:]) < 0.8 * sum(curve[:3]), curve
    (name,) = result.final
    assert name.endswith(("-pairs", "-parallel")) and 0 <= result.final[name]["main"] <= 1
    record = json.loads((tmp_path / "run" / "training_record.json").read_text())
    drawn = record["tasks"][name]
    assert sum(drawn["batches"].values()) == 24 and record["examples"] == 24 * 8
    if "hybrid_alpha" in extra:  # pairs by language pair; both regimes drawn
        assert set(drawn["batches"]) == {"monolingual", "cross-lingual"}
        assert "de-en" in drawn["examples"] or "de-fr" in drawn["examples"]
        assert record["group"] == "multilingual"
    else:
        assert drawn["batches"] == {"fixed": 24} and record["group"] == "english"


def test_contrastive_task_trains_with_a_head_and_the_mlm_loss(tiny_model, tmp_path):
    kw = {**CONTRASTIVE, "mlm_aux": True, "mlm_data": ["xnli"], "sampling": "uniform"}
    result = train(small(tiny_model, tmp_path / "run", max_steps=8, **kw))
    rows = step_records(tmp_path / "run")
    assert all(r["mlm_loss"] > 1.0 for r in rows)
    assert set(rows[-1]["drawn"]) == {"xnli-parallel", "mnli"} and all(rows[-1]["drawn"].values())
    assert set(result.final) == {"xnli-parallel", "mnli"}
    heads = load_file(str(tmp_path / "run" / "checkpoints" / "final" / "heads.safetensors"))
    assert "heads.xnli-parallel.log_scale" in heads  # the learned temperature is saved
    assert heads["heads.xnli-parallel.log_scale"].item() != pytest.approx(math.log(20.0))


def test_mlm_auxiliary_loss_is_added_logged_and_trains_the_encoder(tiny_model, tmp_path):
    text = tmp_path / "mlm.txt"
    text.write_text("Das ist ein Satz.\nCeci est une phrase.\nЭто предложение.\n" * 20)

    def run(name: str, **kw) -> list[dict]:
        train(small(tiny_model, tmp_path / name, "mnli", max_steps=4, **kw))
        return step_records(tmp_path / name)

    plain = run("plain")
    half = run("half", mlm_aux=True, mlm_data=[str(text)], mlm_weight=0.5)
    full = run("full", mlm_aux=True, mlm_data=[str(text)], mlm_weight=1.0)
    assert not any("mlm_loss" in r for r in plain)
    assert [r["step"] for r in half] == [1, 2, 3, 4]
    assert all(r["mlm_loss"] > 1.0 for r in half + full)  # an untrained MLM head: ~ln(vocab)
    # Step 1 of both MLM runs starts from the same weights with the same batches and dropout
    # masks; only the MLM weight differs, so the logged losses differ by 0.5 * the MLM loss.
    assert full[0]["mlm_loss"] == pytest.approx(half[0]["mlm_loss"], rel=1e-6)
    assert full[0]["loss"] - half[0]["loss"] == pytest.approx(0.5 * half[0]["mlm_loss"], rel=1e-4)
    # and the weighted MLM loss is backpropagated: the encoder ends up different
    a, b = weights(tmp_path / "half"), weights(tmp_path / "full")
    assert any(k.startswith("mlm_head.") for k in a)
    encoder = [k for k in a if not k.startswith(("heads.", "mlm_head."))]
    assert encoder and any(not torch.equal(a[k], b[k]) for k in encoder)


def test_run_directory_resolves_as_a_model_without_importing_training(tiny_model, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_model, run / "checkpoints" / "best" / "encoder")
    (run / RUN_FILE).write_text("{}")
    write_pointer(run, "best", run / "checkpoints" / "best")
    ref = resolve_model(str(run))
    assert (ref.source, ref.local_dir) == ("run", run / "checkpoints" / "best" / "encoder")
    code = (
        "import sys, xstilts.models; print(any(m.startswith('xstilts.train') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_task_and_bad_rows(tiny_model, tmp_path):
    with pytest.raises(DataError, match="did you mean mnli"):
        train(small(tiny_model, tmp_path / "r1", "mnlii"))
    data = tmp_path / "data"
    (data / "ccg").mkdir(parents=True)
    (data / "ccg" / "train.tsv").write_text(CCG + "broken-line-without-tag\n\n")
    (data / "ccg" / "dev.tsv").write_text(CCG)
    with pytest.raises(DataError, match=r"train.tsv:15: missing tag"):
        train(small(tiny_model, tmp_path / "r2", "ccg", data_dir=data))
    result = train(
        small(tiny_model, tmp_path / "r3", "ccg", data_dir=data, skip_bad_rows=True, max_steps=2)
    )
    assert result.n_skipped["ccg"] == 1


def test_train_cli_bad_options_are_one_line(tiny_model, tmp_path, capsys, monkeypatch):
    code, _, err = run_cli(
        [
            "train",
            "--model",
            str(tiny_model),
            "--tasks",
            "mnli",
            "--out",
            str(tmp_path / "r"),
            "--sampling",
            "random",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 2 and err.startswith("error: --sampling") and "Traceback" not in err
    code, _, err = run_cli(
        [
            "train",
            "--model",
            str(tiny_model),
            "--tasks",
            "mnli",
            "--out",
            str(tmp_path / "r"),
            "--lr",
            "-1",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 2 and "--lr" in err


def test_train_cli_contrastive_options(tiny_model, tmp_path, capsys, monkeypatch):
    base = ["train", "--model", str(tiny_model), "--out", str(tmp_path / "r"), "--max-steps", "2",
            "--batch-size", "4", "--max-examples", "12", "--max-length", "32",
            "--mixed-precision", "no"]  # fmt: skip
    code, out, err = run_cli(
        [*base, "--tasks", "xnli", "--objective", "contrastive", "--hybrid-alpha", "0.5",
         "--langs", "de,en", "--train-split", "dev", "--pairing", "en-x", "--prefix", "query: "],
        capsys, monkeypatch,
    )  # fmt: skip
    assert code == 0, err
    assert "xnli-parallel: accuracy" in out
    saved = json.loads((tmp_path / "r" / RUN_FILE).read_text())["config"]
    assert (saved["objective"], saved["hybrid_alpha"], saved["pairing"]) == (
        "contrastive", 0.5, "en-x",
    )  # fmt: skip
    for args, needle in [
        (["--tasks", "mnli", "--objective", "ranking"], "--objective ranking"),
        (["--tasks", "xnli-parallel", "--pairing", "x-y"], "--pairing x-y"),
        (["--tasks", "xnli-parallel", "--hybrid-alpha", "1.5"], "--hybrid-alpha 1.5"),
        (["--tasks", "mnli-pairs", "--hybrid-alpha", "0.5"], "keep their pairs' own languages"),
        (["--tasks", "xnli-parallel", "--langs", "en", "--hybrid-alpha", "0.5",
          "--train-split", "dev"], "need two languages"),
        (["--tasks", "xnli-parallel", "--layer", "7", "--train-split", "dev"], "7"),
        (["--tasks", "mnli", "--objective", "xnli:contrastive"], "not among the tasks"),
    ]:  # fmt: skip
        out_dir = ["--out", str(tmp_path / f"bad{len(needle)}")]
        code, _, err = run_cli([*base, *args, *out_dir], capsys, monkeypatch)
        assert_one_line_error(code, err, needle)


@pytest.mark.slow
def test_cpu_smoke_run_builtin_e5_then_evaluate(tmp_path, capsys, monkeypatch):
    """The issue's smoke run: builtin multilingual-e5-small, 200 MNLI examples, then evaluate."""
    run = tmp_path / "e5-mnli"
    code, out, err = run_cli(
        [
            "train",
            "--model",
            "builtin:multilingual-e5-small",
            "--tasks",
            "mnli",
            "--max-examples",
            "200",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--max-length",
            "64",
            "--out",
            str(run),
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    assert "mnli: accuracy" in out
    meta = json.loads((run / "xstilts_run.json").read_text())
    assert meta["tasks"]["mnli"]["train_examples"] == 200
    code, out, err = run_cli(
        [
            "evaluate",
            "--model",
            str(run),
            "--task",
            "tatoeba",
            "--langs",
            "de",
            "--layer",
            "last",
            "--prefix",
            "query: ",
            "--out",
            str(tmp_path / "res.json"),
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    res = json.loads((tmp_path / "res.json").read_text())
    assert res["model"]["source"] == "run"
    acc = next(m["value"] for m in res["metrics"] if m["direction"] == "en->x")
    assert acc > 0.8  # 13 steps on 200 examples must not wreck a good retrieval model


@pytest.mark.dtype_sensitive
def test_runs_of_different_precision_train_one_after_another_in_one_process(tiny_model, tmp_path):
    # accelerate's process-wide state refused the second precision: on a host with native
    # bf16 (auto = bf16) every later run asking for fp32 failed (found by make test's bf16 pass)
    for i, precision in enumerate(["bf16", "no", "auto", "no"]):
        out = tmp_path / f"r{i}"
        train(small(tiny_model, out, "sst2", max_steps=2, mixed_precision=precision))
        assert (out / "checkpoints" / "final").is_dir()
        # the run records what "auto" resolved to on this host (and the forced-bf16 pass)
        resolved = {"auto": "bf16" if cpu_supports_bf16() else "no"}.get(precision, precision)
        assert json.loads((out / RUN_FILE).read_text())["mixed_precision"] == resolved


def test_a_short_run_featurizes_only_what_it_draws(tiny_model, tmp_path):
    """3 steps of 8 on all of SST-2 (67k rows): the log's first-step record shows the time to
    the first optimizer step and that only the drawn windows were featurized."""
    cfg = small(tiny_model, tmp_path / "r", "sst2", max_examples=None, max_steps=3)
    train(cfg)
    rows = [json.loads(x) for x in (tmp_path / "r" / "train_log.jsonl").read_text().splitlines()]
    first = next(r for r in rows if "first_step_s" in r)
    assert first["step"] == 1 and 0 < first["setup_s"] <= first["first_step_s"]
    built, total = map(int, first["featurized"]["sst2"].split("/"))
    assert total > 60_000
    assert 0 < built <= 8 * 50  # the first batch's window (batch 8 x 50 batches), no more
    record = json.loads((tmp_path / "r" / "training_record.json").read_text())
    assert sum(record["tasks"]["sst2"]["examples"].values()) == 24
