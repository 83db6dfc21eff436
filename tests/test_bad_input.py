"""Bad input and faults found by a hostile run: each one is a clear line and exit code 2 (or a
warning where the work can go on), never a traceback, a silent wrong result or a damaged file.

The numbered comments refer to the list in docs/reliability.md.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import evaluate_args, run_cli
from test_cli import assert_one_line_error, write_bucc

# Most cases evaluate through the CLI with --dtype auto: run them with native bf16 both ways.
pytestmark = pytest.mark.dtype_sensitive


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_copy(tiny_model: Path, dest: Path) -> Path:
    shutil.copytree(tiny_model, dest)
    return dest


# ------------------------------------------------ 1. a model directory without a vocabulary


def test_model_without_tokenizer_files_is_refused(tiny_model, tmp_path, capsys, monkeypatch):
    model = model_copy(tiny_model, tmp_path / "m")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (model / name).unlink(missing_ok=True)
    code, _, err = run_cli(evaluate_args(model, "tatoeba", "de", tmp_path), capsys, monkeypatch)
    assert_one_line_error(code, err, str(model), "no tokenizer files", "tokenizer.json")


# ------------------------------------------------ 2. report never writes into its input


@pytest.mark.parametrize("kind", ["empty", "foreign", "text"])
def test_report_on_a_file_that_is_not_a_store_leaves_it_untouched(
    kind, tmp_path, capsys, monkeypatch
):
    path = tmp_path / "results.sqlite"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "foreign":
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE songs (title TEXT)")
        db.commit()
        db.close()
    else:
        path.write_text("just some text, not a database\n")
    before = sha(path), sorted(p.name for p in tmp_path.iterdir())
    code, _, err = run_cli(["report", str(path), "--out", str(tmp_path / "r")], capsys, monkeypatch)
    assert_one_line_error(code, err, str(path), "not a results store")
    assert (sha(path), sorted(p.name for p in tmp_path.iterdir() if p.name != "r")) == before
    if kind == "foreign":  # the journal mode is not switched to WAL either
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        db.close()


def test_store_with_damaged_spec_meta_is_one_line(tmp_path, capsys, monkeypatch):
    from xstilts.experiment.store import ResultStore

    path = tmp_path / "results.sqlite"
    store = ResultStore(path)
    store.write_eval("c1", "tatoeba/xtreme", "h", [])
    with store.db:
        store.db.execute("INSERT INTO meta VALUES ('spec', '{not json')")
    store.close()
    code, _, err = run_cli(["report", str(path), "--out", str(tmp_path / "r")], capsys, monkeypatch)
    assert_one_line_error(code, err, "meta 'spec' is not valid JSON")


# ------------------------------------------------ 3. option values checked


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--max-length", "0"], ["--max-length 0", "greater than or equal to 2"]),
        (["--max-length", "-3"], ["--max-length -3"]),
        (["--device", "tpu"], ["--device 'tpu'"]),
        (["--device", "cuda"], ["--device 'cuda'", "CUDA"]),
    ],
)
def test_bad_evaluate_options(args, needles, tiny_model, data_dir, capsys, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    cli = [*evaluate_args(tiny_model, "tatoeba", "de", data_dir), *args]
    assert_one_line_error(*run_cli(cli, capsys, monkeypatch)[::2], *needles)


def test_empty_language_list_is_not_the_default(tiny_model, data_dir, capsys, monkeypatch):
    code, _, err = run_cli(evaluate_args(tiny_model, "tatoeba", "", data_dir), capsys, monkeypatch)
    assert_one_line_error(code, err, "no languages given")
    code, _, err = run_cli(evaluate_args(tiny_model, "lareqa", " ", data_dir), capsys, monkeypatch)
    assert_one_line_error(code, err, "no LAReQA languages given")


@pytest.mark.parametrize(
    ("task", "langs", "needle"),
    [
        ("tatoeba", "xx", "unknown Tatoeba language 'xx'"),
        ("tatoeba", "", "no languages given"),
        ("bucc2018", "ja", "unknown BUCC 2018 language 'ja'"),
    ],
)
def test_fetch_with_unknown_languages_downloads_nothing(
    task, langs, needle, tmp_path, capsys, monkeypatch
):
    args = ["data", "fetch", task, "--langs", langs, "--data-dir", str(tmp_path / "d")]
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert_one_line_error(code, err, needle)
    assert not any((tmp_path / "d").rglob("*.*"))


def test_mine_threshold_must_be_finite(tiny_model, tmp_path, capsys, monkeypatch):
    src = tmp_path / "a.txt"
    src.write_text("Hallo Welt\nGuten Tag\n")
    args = ["mine", str(src), str(src), "--model", str(tiny_model), "--out", str(tmp_path / "p")]
    code, _, err = run_cli([*args, "--threshold", "nan"], capsys, monkeypatch)
    assert_one_line_error(code, err, "--threshold nan", "finite")


# ------------------------------------------------ 4. a failed embed blocks nothing


@pytest.mark.parametrize(
    ("bad", "needle"),
    [(["--pooling", "max"], "--pooling max"), (["--batch-size", "0"], "--batch-size 0")],
)
def test_failed_embed_leaves_nothing_that_blocks_the_rerun(
    bad, needle, tiny_model, tmp_path, capsys, monkeypatch
):
    text = tmp_path / "in.txt"
    text.write_text("Hallo Welt\nGuten Tag\nBonjour\n")
    out = tmp_path / "emb"
    args = ["embed", str(text), "--model", str(tiny_model), "--out", str(out), "--layers", "1"]
    code, _, err = run_cli([*args, *bad], capsys, monkeypatch)
    assert_one_line_error(code, err, needle)
    assert not (out / "manifest.json").exists()
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert code == 0, err
    assert np.load(out / "layer01.npy").shape == (3, 32)


# ------------------------------------------------ 5. line numbers print as numbers


@pytest.mark.parametrize("line", [100, 1234])
def test_line_numbers_are_not_emoji(line, tiny_model, tmp_path, capsys, monkeypatch):
    text = tmp_path / "ids.tsv"
    rows = [f"s{i}\tSentence number {i}." for i in range(1, line + 5)]
    rows[line - 1] = "a line without its id"
    text.write_text("\n".join(rows) + "\n")
    args = ["embed", str(text), "--model", str(tiny_model), "--out", str(tmp_path / "e")]
    code, _, err = run_cli([*args, "--format", "id-text"], capsys, monkeypatch)
    assert_one_line_error(code, err, f"ids.tsv:{line}: expected 'id<TAB>sentence'")


# ------------------------------------------------ 6. duplicate BUCC gold pairs


def test_duplicate_gold_pairs_are_counted_once(data_dir, tmp_path, caplog):
    from xstilts.data.bucc import load_bucc_split

    write_bucc(tmp_path, data_dir, n=40)
    gold = tmp_path / "bucc2018" / "de-en.dev.gold"
    lines = gold.read_text().splitlines()
    gold.write_text("\n".join([*lines, lines[3]]) + "\n")  # one pair twice: 21 lines, 20 pairs
    with caplog.at_level(logging.WARNING):
        split = load_bucc_split(tmp_path, "de", "dev")
    assert len(split.gold) == len(lines) == 20
    assert "de-en.dev.gold:21: duplicate gold pair" in caplog.text


# ------------------------------------------------ 7. the whole spec is checked before any work


def spec_doc(**evaluation) -> dict:
    return {
        "name": "t",
        "models": ["builtin:tiny-random-xlmr"],
        "training": {"max_steps": 1, "batch_size": 2, "max_examples": 4},
        "settings": [{"name": "baseline", "tasks": []}, {"name": "mnli", "tasks": ["mnli"]}],
        "evaluation": {"tasks": [{"task": "tatoeba", "langs": ["de"]}], **evaluation},
    }


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"layers": [1], "report_layer": 2}, "report_layer 2 is not among evaluation.layers [1]"),
        ({"tasks": [{"task": "tatoeba", "langs": ["xx"]}]}, "unknown Tatoeba language 'xx'"),
        ({"tasks": [{"task": "bucc2018", "langs": "ja"}]}, "unknown BUCC 2018 language 'ja'"),
        ({"layers": [1, 99]}, "layer 99 does not exist in builtin:tiny-random-xlmr"),
        ({"report_layer": 7}, "layer 7 does not exist"),
    ],
)
def test_spec_problems_stop_the_dry_run(change, needle, tmp_path, capsys, monkeypatch):
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(spec_doc(**change)))
    code, _, err = run_cli(["run", str(spec), "--dry-run"], capsys, monkeypatch)
    assert_one_line_error(code, err, needle)
    assert not (tmp_path / "runs").exists()


def test_unwritable_report_folder_stops_run_before_training(tmp_path, capsys, monkeypatch):
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(spec_doc(layers=[1])))
    (tmp_path / "afile").write_text("")
    args = ["run", str(spec), "--out", str(tmp_path / "afile")]
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert_one_line_error(code, err, "afile: is a file, expected a folder")
    assert not (tmp_path / "runs" / "t" / "train").exists()


@pytest.mark.parametrize("kind", ["latin1", "directory"])
def test_spec_that_is_not_utf8_text(kind, tmp_path, capsys, monkeypatch):
    spec = tmp_path / "s.yaml"
    if kind == "latin1":
        spec.write_bytes("name: caf\xe9\n".encode("latin-1"))
        needle = "not UTF-8"
    else:
        spec.mkdir()
        needle = "is a directory"
    code, _, err = run_cli(["run", str(spec), "--dry-run"], capsys, monkeypatch)
    assert_one_line_error(code, err, needle)


# ------------------------------------------------ 8. outputs that cannot be written


@pytest.mark.parametrize(
    ("where", "needle"),
    [
        ("dir", "is a directory, expected a file path"),
        ("under-file", "is a file, not a folder"),
        ("read-only", "/sys/"),
    ],
)
def test_evaluate_out_that_cannot_be_written_fails_first(
    where, needle, tiny_model, data_dir, tmp_path, capsys, monkeypatch
):
    (tmp_path / "afile").write_text("")
    out = {
        "dir": tmp_path,
        "under-file": tmp_path / "afile" / "res.json",
        "read-only": Path("/sys/xstilts-test/res.json"),  # sysfs refuses new files, even root's
    }[where]
    args = [*evaluate_args(tiny_model, "tatoeba", "de", data_dir), "--out", str(out)]
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert_one_line_error(code, err, needle)
    assert "encoded" not in err  # refused before any encoding


def test_full_disk_is_one_line_and_leaves_no_file(
    tiny_model, data_dir, tmp_path, capsys, monkeypatch
):
    import xstilts.io

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    out = tmp_path / "res.json"
    monkeypatch.setattr(xstilts.io.os, "replace", full)
    args = [*evaluate_args(tiny_model, "tatoeba", "de", data_dir), "--out", str(out)]
    args += ["--max-sentences", "20", "--no-cache"]
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert_one_line_error(code, err, "res.json: cannot write (No space left on device)")
    assert list(tmp_path.iterdir()) == []


def test_failed_report_leaves_no_partial_files(tmp_path, capsys, monkeypatch):
    from test_report import make_store
    from xstilts.report import plots

    db = make_store(tmp_path / "results.sqlite")
    out = tmp_path / "report"

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(plots, "_save", full)
    code, _, err = run_cli(["report", str(db), "--out", str(out)], capsys, monkeypatch)
    assert_one_line_error(code, err, "No space left on device")
    assert not out.exists() or not any(out.rglob("*"))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".report")] == []


def test_output_path_with_markup_characters(tiny_model, data_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "odd[/x]" / "[bold]res.json"
    args = [*evaluate_args(tiny_model, "tatoeba", "de", data_dir), "--out", str(out)]
    code, _, err = run_cli([*args, "--max-sentences", "20"], capsys, monkeypatch)
    assert code == 0, err
    assert f"results written to {out}" in err and out.is_file()


@pytest.mark.parametrize("damage", ["junk", "truncated"])
def test_damaged_weights_are_one_line(damage, tiny_model, data_dir, tmp_path, capsys, monkeypatch):
    model = model_copy(tiny_model, tmp_path / "m")
    weights = model / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(b"\x00junk" * 100 if damage == "junk" else data[: len(data) // 2])
    args = [*evaluate_args(model, "tatoeba", "de", data_dir), "--no-cache"]
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert_one_line_error(code, err, f"cannot load model {str(model)!r}")


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        (lambda d: d.update(schema_version="1"), "schema_version '1' is not a whole number"),
        (lambda d: d["metrics"][0].update(value="0.5"), "metrics[0]: value '0.5' is not a number"),
        (lambda d: d["metrics"][2].update(value=None), "metrics[2]: value None is not a number"),
        (lambda d: d["metrics"][1].pop("layer"), "metrics[1]: no layer"),
        (lambda d: d.update(metrics={"a": 1}), "metrics must be a list"),
    ],
)
def test_results_files_with_wrong_types(damage, needle, tmp_path, capsys, monkeypatch):
    from xstilts.tasks.results import build_results, metric_row

    rows = [
        metric_row("tatoeba", "de", 1, "accuracy", 0.5, direction=d)
        for d in ("en->x", "x->en", "mean")
    ]
    doc = build_results(
        task="tatoeba", model={}, languages=["de"], settings={}, sizes={}, timings={}, metrics=rows
    )
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(doc))
    damage(doc)
    bad.write_text(json.dumps(doc))
    for args in (["compare", str(good), str(bad)], ["export-mteb", str(bad), str(tmp_path / "m")]):
        code, _, err = run_cli(args, capsys, monkeypatch)
        assert_one_line_error(code, err, "bad.json", needle)


# ------------------------------------------------ the embedding cache under damage and races


def test_cache_manifest_with_wrong_structure_is_recomputed(
    tiny_model, data_dir, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("XSTILTS_CACHE", str(tmp_path / "cache"))
    args = [*evaluate_args(tiny_model, "tatoeba", "de", data_dir), "--max-sentences", "30"]
    first = tmp_path / "a.json"
    assert run_cli([*args, "--out", str(first)], capsys, monkeypatch)[0] == 0
    manifests = list((tmp_path / "cache" / "embeddings").rglob("manifest.json"))
    assert manifests
    for m in manifests:
        m.write_text(json.dumps({"layers": ["not", "a", "mapping"], "n": "x"}))
    second = tmp_path / "b.json"
    code, _, err = run_cli([*args, "--out", str(second)], capsys, monkeypatch)
    assert code == 0 and "is corrupt" in err, err
    a, b = (json.loads(p.read_text()) for p in (first, second))
    assert a["metrics"] == b["metrics"] and b["encoding"]["sentences_from_cache"] == 0


def test_cache_that_cannot_be_written_loses_no_work(
    tiny_model, data_dir, tmp_path, capsys, monkeypatch
):
    """`cache clear` (or another process) removing entries while an evaluation writes them:
    the vectors are used anyway and the cache write is skipped with a warning."""
    root = tmp_path / "cache"
    root.mkdir()
    (root / "embeddings").write_text("a file where the cache folder should be")
    monkeypatch.setenv("XSTILTS_CACHE", str(root))
    out = tmp_path / "res.json"
    args = [*evaluate_args(tiny_model, "tatoeba", "de", data_dir), "--max-sentences", "30"]
    code, _, err = run_cli([*args, "--out", str(out)], capsys, monkeypatch)
    assert code == 0, err
    assert "not written" in err and json.loads(out.read_text())["metrics"]


# ------------------------------------------------ 10. remote code needs the command line too


def test_spec_cannot_turn_on_remote_code_alone(tmp_path, capsys, monkeypatch):
    doc = spec_doc(layers=[1])
    doc["settings"][1]["training"] = {"trust_remote_code": True}
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(doc))
    code, _, err = run_cli(["run", str(spec), "--dry-run"], capsys, monkeypatch)
    assert_one_line_error(code, err, "settings mnli set trust_remote_code", "--trust-remote-code")
    code, out, err = run_cli(
        ["run", str(spec), "--dry-run", "--trust-remote-code", "--no-estimate"], capsys, monkeypatch
    )
    assert code == 0 and "mnli" in out, err


# ------------------------------------------------ the last line of defence


def test_unexpected_errors_are_one_line_exit_1(tiny_model, data_dir, capsys, monkeypatch):
    import xstilts.cli.evaluate

    def boom(*_a, **_k):
        raise RuntimeError("something nobody checked\nsecond line")

    monkeypatch.setattr(xstilts.cli.evaluate, "evaluate_model", boom)
    args = evaluate_args(tiny_model, "tatoeba", "de", data_dir)
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert code == 1 and "Traceback" not in err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert "xstilts evaluate: unexpected RuntimeError: something nobody checked" in line
    assert "--debug" in line and "second line" not in err
    with pytest.raises(RuntimeError, match="nobody checked"):
        run_cli(["--debug", *args], capsys, monkeypatch)
