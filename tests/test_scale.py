"""Scale: streaming/resumable embedding, search backends, `xstilts mine`, two processes."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from test_cli import assert_one_line_error, run_cli
from xstilts.embedding.encoder import Encoder
from xstilts.embedding.lines import scan_lines
from xstilts.embedding.settings import EmbedSettings
from xstilts.embedding.store import load_layer
from xstilts.embedding.stream import embed_file
from xstilts.errors import DataError
from xstilts.io import read_lines
from xstilts.models import load_model, resolve_model
from xstilts.retrieval.ann import ExactIndex, IndexedKnn, IndexSpec, recall_at_k
from xstilts.retrieval.knn import exact_knn, knn, normalize
from xstilts.retrieval.mining import mine, mine_with_index, unique_texts


def groups_of(rows: np.ndarray) -> list[list[int]]:
    """For each distinct row, the items it stands for (ascending)."""
    out: list[list[int]] = [[] for _ in range(int(rows.max()) + 1)]
    for i, r in enumerate(rows.tolist()):
        out[r].append(i)
    return out


# every test evaluates through the CLI with --dtype auto: run with native bf16 both ways
pytestmark = pytest.mark.dtype_sensitive

# --------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def encoder(tiny_model: Path) -> Encoder:
    loaded = load_model(str(tiny_model))
    return Encoder(loaded.model, loaded.tokenizer, device="cpu", dtype="fp32")


@pytest.fixture(scope="module")
def model_id(tiny_model: Path) -> dict:
    return {"spec": str(tiny_model), "key": resolve_model(str(tiny_model)).content_key}


@pytest.fixture(scope="module")
def sentences(data_dir: Path) -> list[str]:
    """60 German Tatoeba sentences with two repeated (duplicates matter for mining)."""
    de = read_lines(data_dir / "tatoeba" / "tatoeba.deu-eng.deu")[:58]
    return [*de, de[3], de[10]]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{ln}\n" for ln in lines), encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def files_bytes(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------------------------
# streaming embedding


def test_streaming_embed_equals_in_memory_encode(encoder, model_id, sentences, tmp_path):
    path = write(tmp_path / "de.txt", sentences)
    ref, _ = encoder.encode(sentences, layers=[0, 2])
    # one chunk: the same batches as Encoder.encode, so the same bits
    whole = embed_file(
        path,
        encoder,
        tmp_path / "one",
        EmbedSettings(layers=[0, 2], chunk_size=1000),
        model=model_id,
    )
    for j, layer in enumerate([0, 2]):
        assert np.array_equal(whole.array(layer), ref[j])
    # many chunks: other batch compositions, equal up to float rounding
    chunked = embed_file(
        path, encoder, tmp_path / "many", EmbedSettings(layers=[0, 2], chunk_size=7), model=model_id
    )
    assert chunked.manifest["job"]["n_chunks"] == 9 and chunked.manifest["complete"]
    for j, layer in enumerate([0, 2]):
        np.testing.assert_allclose(load_layer(tmp_path / "many", layer), ref[j], atol=1e-6)
    assert not (tmp_path / "many" / "chunks").exists()  # merged and cleaned up
    f16 = embed_file(
        path,
        encoder,
        tmp_path / "f16",
        EmbedSettings(layers=[2], store_dtype="float16"),
        model=model_id,
    )
    assert f16.array(2).dtype == np.float16
    np.testing.assert_allclose(f16.array(2), ref[1], atol=2e-3, rtol=2e-3)


def test_unique_rows_and_id_text_index(encoder, model_id, sentences, tmp_path):
    path = write(tmp_path / "ids.tsv", [f"s{i}\t{t}" for i, t in enumerate(sentences)])
    index = scan_lines(path)
    assert index.fmt == "id-text" and len(index) == len(sentences)
    first, line_rows = index.unique_rows()
    uniq, rows = unique_texts(sentences)
    assert [sentences[i] for i in first] == uniq
    assert np.array_equal(line_rows, rows)
    assert index.read_ids([0, 59]) == ["s0", "s59"]
    assert index.read_texts([3])[0] == [sentences[3]]
    res = embed_file(
        path, encoder, tmp_path / "u", EmbedSettings(layers=[2], unique=True), model=model_id
    )
    assert res.manifest["identity"]["rows"] == len(uniq) == len(sentences) - 2
    ref, _ = encoder.encode(uniq, layers=[2])
    assert np.array_equal(res.array(2), ref[0])
    assert np.array_equal(np.load(tmp_path / "u" / "line_rows.npy"), line_rows)


def test_interrupted_embedding_resumes_to_identical_files(encoder, model_id, sentences, tmp_path):
    path = write(tmp_path / "de.txt", sentences)
    settings = EmbedSettings(layers=[1, 2], chunk_size=8)
    full = embed_file(path, encoder, tmp_path / "full", settings, model=model_id)

    class Interrupt(Exception):
        pass

    def stop_after_three(chunk: int) -> None:
        if chunk == 2:
            raise Interrupt

    out = tmp_path / "resumed"
    with pytest.raises(Interrupt):
        embed_file(path, encoder, out, settings, model=model_id, on_chunk=stop_after_three)
    manifest = json.loads((out / "manifest.json").read_text())
    assert not manifest["complete"] and manifest["job"]["chunks_done"] == 3
    assert sorted(p.name for p in (out / "chunks").iterdir()) == [
        f"c00000{i}.npz" for i in range(3)
    ]
    res = embed_file(path, encoder, out, settings, model=model_id)
    assert res.chunks_encoded == full.manifest["job"]["n_chunks"] - 3
    assert files_bytes(out) == files_bytes(tmp_path / "full")  # manifest and arrays
    again = embed_file(path, encoder, out, settings, model=model_id)  # complete: a no-op
    assert again.chunks_encoded == 0 and again.notes


def test_mismatched_manifest_is_refused_and_nothing_overwritten(
    tiny_model, sentences, tmp_path, capsys, monkeypatch
):
    path = write(tmp_path / "de.txt", sentences)
    out = tmp_path / "emb"
    base = ["embed", str(path), "--model", str(tiny_model), "--out", str(out), "--dtype", "fp32"]
    code, _, stderr = run_cli([*base, "--layers", "1"], capsys, monkeypatch)
    assert code == 0, stderr
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir()}
    code, _, stderr = run_cli([*base, "--layers", "2"], capsys, monkeypatch)
    assert_one_line_error(code, stderr, "manifest.json", "layers", "nothing was changed")
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir()} == before
    write(path, [*sentences, "one more line"])  # the input changed under a finished run
    code, _, stderr = run_cli([*base, "--layers", "1"], capsys, monkeypatch)
    assert_one_line_error(code, stderr, "texts=", "nothing was changed")
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir()} == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    code, _, stderr = run_cli([*base[:4], "--out", str(tmp_path / "other")], capsys, monkeypatch)
    assert_one_line_error(code, stderr, "not empty")


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        (b"", ["file is empty"]),
        (b"a\tHallo\nb Welt\n", ["bad.txt:2", "id<TAB>sentence"]),
        (b"a\tHallo\nb\tWelt\na\tnoch\n", ["bad.txt:3", "duplicate id 'a'", "line 1"]),
        (b"ok\n\xff\xfe bad\n", ["bad.txt:2", "invalid UTF-8"]),
    ],
)
def test_bad_input_one_line_errors(tiny_model, tmp_path, capsys, monkeypatch, content, needles):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    code, _, stderr = run_cli(
        ["embed", str(bad), "--model", str(tiny_model), "--out", str(tmp_path / "o")],
        capsys,
        monkeypatch,
    )
    assert_one_line_error(code, stderr, *needles)
    assert not (tmp_path / "o").exists()


def test_overlong_line_is_truncated_with_a_warning_count(
    tiny_model, sentences, tmp_path, capsys, monkeypatch
):
    long = " ".join(sentences)  # several hundred tokens
    path = write(tmp_path / "long.txt", ["Ja.", long, "Nein.", long + " x"])
    out = tmp_path / "emb"
    code, _, stderr = run_cli(
        ["embed", str(path), "--model", str(tiny_model), "--out", str(out), "--max-length", "32",
         "--chunk-size", "2", "--dtype", "fp32"],
        capsys,
        monkeypatch,
    )  # fmt: skip
    assert code == 0, stderr
    assert "warning:" in stderr and "2 of 4 texts truncated to 32 tokens" in stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["totals"]["truncated"] == 2 and manifest["identity"]["max_length"] == 32


# --------------------------------------------------------------------------------------------
# search backends


def clustered(n: int, d: int, seed: int, centers: int = 40) -> np.ndarray:
    """Vectors around a few centres: the neighbourhood structure real embeddings have."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, d))
    return normalize(c[rng.integers(0, centers, n)] + 0.5 * rng.normal(size=(n, d)))


def test_exact_index_equals_knn():
    x, y = clustered(300, 24, 0), clustered(500, 24, 1)
    for backend in ("faiss", "numpy"):
        ref = knn(x, y, 5, backend)
        got = ExactIndex(y, IndexSpec(backend=backend), norm=False).search(x, 5)
        assert np.array_equal(got[1], ref[1]) and np.array_equal(got[0], ref[0])
    # many corpus and query blocks: top-k lists merged across blocks, same neighbours
    tiny_blocks = IndexSpec(block_bytes=24 * 4 * 64)
    got = ExactIndex(y, tiny_blocks, norm=False).search(x, 5)
    assert np.array_equal(got[1], ref[1])
    np.testing.assert_allclose(got[0], ref[0], atol=1e-6)
    assert recall_at_k(got[1], ref[1]) == 1.0
    assert recall_at_k(np.full_like(ref[1], -1), ref[1]) == 0.0


@pytest.mark.parametrize("kind", ["ivf", "ivfpq", "hnsw"])
def test_approximate_indexes_reach_high_recall(kind):
    x, y = clustered(1500, 32, 2), clustered(3000, 32, 3)
    knn_fn = IndexedKnn(IndexSpec(kind=kind, target_recall=0.95), recall_sample=500)
    scores, ids = knn_fn(x, y, 4)
    report = knn_fn.reports[0]
    assert report["recall@4"] >= 0.9, report
    assert report["recall_sample"] == 500 and "recall_sample_is_tuning_sample" not in report
    exact = knn(x, y, 4)
    assert recall_at_k(ids, exact[1]) >= 0.9
    # scores are true inner products of the returned ids (IVF-PQ re-scores its estimates)
    np.testing.assert_allclose(scores[:, 0], np.einsum("ij,ij->i", x, y[ids[:, 0]]), atol=1e-5)


def test_tuned_index_falls_back_to_exact_when_recall_is_out_of_reach(caplog):
    """Random vectors have no neighbourhoods for IVF to exploit: rather than return results
    below the target recall, the tuned search is done exactly (and says so)."""
    rng = np.random.default_rng(6)
    x, y = normalize(rng.normal(size=(400, 64))), normalize(rng.normal(size=(4000, 64)))
    knn_fn = IndexedKnn(IndexSpec(kind="ivf", target_recall=0.95))
    scores, ids = knn_fn(x, y, 4)
    report = knn_fn.reports[0]
    assert report["kind"] == "exact" and report["fallback"]["from"]["kind"] == "ivf"
    assert report["tuning_recall"] < 0.95
    assert "searching exactly instead" in caplog.text
    ref = knn(x, y, 4)
    assert np.array_equal(ids, ref[1])
    np.testing.assert_allclose(scores, ref[0], atol=1e-6)  # re-normalised: last-bit rounding
    # a given nprobe is used as asked, and its (low) recall is reported
    forced = IndexedKnn(IndexSpec(kind="ivf", knob=2))
    forced(x, y, 4)
    assert forced.reports[0]["kind"] == "ivf" and forced.reports[0]["recall@4"] < 0.95


def test_mine_with_exact_index_equals_in_memory_mine():
    x, y = clustered(200, 16, 4), clustered(260, 16, 5)
    ref = mine(x, y, exact_knn(), k=4)
    got, reports = mine_with_index(x, y, IndexSpec(), k=4, norm=False)
    assert np.array_equal(got.src, ref.src) and np.array_equal(got.tgt, ref.tgt)
    assert np.array_equal(got.score, ref.score)
    assert [r["direction"] for r in reports] == ["src->tgt", "tgt->src"]
    # raw (unnormalised, memory-mapped float16) rows are normalised block by block
    got16, _ = mine_with_index((3 * x).astype(np.float16), y, IndexSpec(), k=4)
    pairs16 = set(zip(got16.src.tolist(), got16.tgt.tolist(), strict=True))
    assert len(pairs16 & set(zip(ref.src.tolist(), ref.tgt.tolist(), strict=True))) > 0.9 * len(ref)


# --------------------------------------------------------------------------------------------
# xstilts mine


@pytest.fixture(scope="module")
def bitext(data_dir: Path, tmp_path_factory) -> dict:
    """Source with ids (two lines repeat a sentence), target as plain text, a gold sample."""
    root = tmp_path_factory.mktemp("bitext")
    tat = data_dir / "tatoeba"
    de = read_lines(tat / "tatoeba.deu-eng.deu")
    en = read_lines(tat / "tatoeba.deu-eng.eng")
    src_texts = [*de[:40], de[5]]
    write(root / "src.tsv", [f"d{i}\t{t}" for i, t in enumerate(src_texts)])
    write(root / "tgt.txt", [*en[:30], *en[200:215]])
    sample = root / "sample"
    sample.mkdir()
    write(sample / "de-en.sample.de", [f"de{i}\t{t}" for i, t in enumerate(de[100:140])])
    write(sample / "de-en.sample.en", [f"en{i}\t{t}" for i, t in enumerate(en[100:150])])
    write(sample / "de-en.sample.gold", [f"de{i}\ten{i}" for i in range(40)])
    return {
        "src": root / "src.tsv",
        "tgt": root / "tgt.txt",
        "sample": sample,
        "src_texts": src_texts,
        "tgt_texts": en[:30] + en[200:215],
    }


def read_pairs(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in read_lines(path, allow_empty=True)]


def test_mine_end_to_end_exact_matches_in_memory_mining(
    tiny_model, encoder, bitext, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "pairs.tsv"
    base = ["mine", str(bitext["src"]), str(bitext["tgt"]), "--model", str(tiny_model),
            "--dtype", "fp32", "--chunk-size", "16"]  # fmt: skip
    code, _, stderr = run_cli([*base, "--out", str(out)], capsys, monkeypatch)
    assert code == 0, stderr
    rows = read_pairs(out)
    assert all(len(r) == 5 for r in rows)  # target has no ids: both texts are added
    scores = [float(r[0]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    # the in-memory reference: unique texts, Encoder.encode, search.mine, expand duplicates
    ux, rx = unique_texts(bitext["src_texts"])
    uy, ry = unique_texts(bitext["tgt_texts"])
    gx, gy = groups_of(rx), groups_of(ry)
    (x,) = encoder.encode(ux, layers=[2])[0]
    (y,) = encoder.encode(uy, layers=[2])[0]
    ref = mine(normalize(x), normalize(y), exact_knn())
    expected = [
        (f"d{a}", str(b + 1))
        for u, v in zip(ref.src.tolist(), ref.tgt.tolist(), strict=True)
        for a in gx[u]
        for b in gy[v]
    ]
    assert [(r[1], r[2]) for r in rows] == expected
    assert all(r[3] == bitext["src_texts"][int(r[1][1:])] for r in rows)
    report = json.loads((tmp_path / "pairs.tsv.json").read_text())
    assert report["pairs_written"] == len(rows) and report["src"]["unique"] == len(ux)
    # threshold given: a subset, every score above it; reuses the embeddings (work dir)
    code, _, stderr = run_cli(
        [*base, "--out", str(out), "--threshold", "1.0", "--no-texts"], capsys, monkeypatch
    )
    assert code == 0, stderr
    kept = read_pairs(out)
    assert all(len(r) == 3 and float(r[0]) >= 1.0 for r in kept)
    assert kept == [r[:3] for r in rows if float(r[0]) >= 1.0]


def test_mine_with_gold_sample_and_approximate_index(
    tiny_model, bitext, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "pairs.tsv"
    code, _, stderr = run_cli(
        ["mine", str(bitext["src"]), str(bitext["tgt"]), "--model", str(tiny_model),
         "--out", str(out), "--gold-sample", str(bitext["sample"]), "--index", "hnsw",
         "--dtype", "fp32"],
        capsys,
        monkeypatch,
    )  # fmt: skip
    assert code == 0, stderr
    report = json.loads((tmp_path / "pairs.tsv.json").read_text())
    info = report["threshold_info"]
    assert info["source"] == "gold-sample" and info["gold_pairs"] == 40
    assert 0 <= info["sample_f1"] <= 1
    assert all("recall@4" in s and s["kind"] == "hnsw" for s in report["search"])
    assert "recall@4" in stderr
    assert all(float(r[0]) >= report["threshold"] for r in read_pairs(out))
    code, _, stderr = run_cli(
        ["mine", str(bitext["src"]), str(bitext["tgt"]), "--model", str(tiny_model),
         "--out", str(out), "--gold-sample", str(tmp_path)],
        capsys,
        monkeypatch,
    )  # fmt: skip
    assert_one_line_error(code, stderr, "--gold-sample", "gold")


def test_scan_rejects_directory(tmp_path):
    with pytest.raises(DataError, match="is a directory"):
        scan_lines(tmp_path)


# --------------------------------------------------------------------------------------------
# two processes


def test_two_process_embedding_equals_one_process(
    tiny_model, encoder, model_id, sentences, tmp_path
):
    """`accelerate launch` with 2 CPU processes (gloo) writes the same arrays as 1 process.

    On a machine without GPUs accelerate spawns several processes through its multi-process
    launcher (torchrun); ``--cpu`` alone would start one process (see docs/scale.md).
    """
    path = write(tmp_path / "de.txt", sentences)
    settings = EmbedSettings(layers=[1, 2], chunk_size=8)
    one = embed_file(path, encoder, tmp_path / "one", settings, model=model_id)
    launcher = Path(sys.executable).with_name("accelerate")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [
        str(launcher) if launcher.exists() else shutil.which("accelerate") or "accelerate",
        "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()),
        "-m", "xstilts", "embed", str(path), "--model", str(tiny_model),
        "--out", str(tmp_path / "two"), "--layers", "1,2", "--chunk-size", "8",
        "--dtype", "fp32",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "(2 process(es))" in proc.stdout
    two = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert two["complete"] and two["identity"] == one.manifest["identity"]
    for layer in (1, 2):
        a, b = one.array(layer), load_layer(tmp_path / "two", layer)
        np.testing.assert_allclose(b, a, atol=1e-6, rtol=0)
