"""XTREME-R retrieval: mAP@k, LAReQA (XQuAD-R) and Mewsli-X, from metric to command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from test_cli import assert_one_line_error
from xstilts.data.lareqa import LAREQA_LANGS, load_lareqa
from xstilts.data.mewsli import load_mewsli, mention_text
from xstilts.metrics import average_precision_at_k, average_precisions_at_k, map_at_k
from xstilts.retrieval.ranking import average_precisions

# every test evaluates through the CLI with --dtype auto: run with native bf16 both ways
pytestmark = pytest.mark.dtype_sensitive

# ---------------------------------------------------------------- mAP@k on hand-made rankings


def _ap_reference(targets: set[int], ranked: list[int], k: int | None = None) -> float:
    """AP@k written out as XTREME-R defines it: precision at each new hit in the top k,
    summed, divided by min(k, #targets) (by #targets without k)."""
    hits, score = 0, 0.0
    for i, cand in enumerate(ranked[:k] if k else ranked):
        if cand in targets:
            hits += 1
            score += hits / (i + 1)
    return score / (min(len(targets), k) if k else len(targets))


def test_average_precision_hand_computed():
    rel = np.array([1, 0, 1, 0, 0], dtype=bool)  # relevant at ranks 1 and 3
    assert average_precision_at_k(rel) == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert average_precision_at_k(rel, k=2) == pytest.approx(1 / 2)  # only rank 1, / min(2, 2)
    assert average_precision_at_k(rel, k=3) == pytest.approx((1 / 1 + 2 / 3) / 2)


def test_k_smaller_than_the_relevant_set_divides_by_k():
    # LAReQA: 11 relevant answers, but only the top 3 are scored. XTREME-R divides by
    # min(k, n_relevant) = 3, so a perfect top k scores 1; the full AP divides by 11.
    top3 = np.array([1, 1, 0], dtype=bool)
    assert average_precision_at_k(top3, n_relevant=11, k=3) == pytest.approx(2 / 3)
    assert average_precision_at_k(top3, n_relevant=11) == pytest.approx(2 / 11)
    perfect = np.ones(20, dtype=bool)
    assert average_precision_at_k(perfect, n_relevant=25, k=20) == pytest.approx(1.0)
    assert average_precision_at_k(perfect, n_relevant=25) == pytest.approx(20 / 25)


def test_single_relevant_item_gives_reciprocal_rank_within_k():
    rel = np.zeros(30, dtype=bool)
    rel[3] = True
    assert average_precision_at_k(rel, n_relevant=1, k=20) == pytest.approx(1 / 4)
    rel[:] = False
    rel[20] = True  # rank 21: outside the top 20
    assert average_precision_at_k(rel, n_relevant=1, k=20) == 0.0


def test_average_precisions_match_the_written_out_definition():
    rng = np.random.default_rng(0)
    n_cand = 40
    rankings = np.array([rng.permutation(n_cand) for _ in range(50)])
    targets = [
        set(rng.choice(n_cand, rng.integers(1, 15), replace=False).tolist()) for _ in range(50)
    ]
    rel = np.array([[c in t for c in row] for row, t in zip(rankings, targets, strict=True)])
    n_rel = np.array([len(t) for t in targets])
    for k in (None, 1, 5, 20):
        ours = average_precisions_at_k(rel, n_rel, k)
        ref = [_ap_reference(t, row.tolist(), k) for row, t in zip(rankings, targets, strict=True)]
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
        assert map_at_k(rel, n_rel, k) == pytest.approx(np.mean(ref))


@pytest.mark.parametrize(
    ("relevance", "n_relevant", "k"),
    [
        ([[1, 0]], 0, None),  # a query without relevant candidates
        ([[1, 1, 1]], 2, None),  # more relevant in the ranking than in the pool
        ([[1, 0]], 1, 0),
        ([1, 0], 1, None),  # not 2-D
    ],
)
def test_average_precision_rejects_bad_input(relevance, n_relevant, k):
    with pytest.raises(ValueError):
        average_precisions_at_k(np.array(relevance, dtype=bool), n_relevant, k)


@pytest.mark.parametrize("backend", ["numpy", "faiss"])
def test_ranking_ties_go_to_the_lower_candidate_index(backend):
    # Candidates 0 and 1 are identical: the query ranks 0 first, so relevant 1 sits at rank 2.
    cands = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    query = np.array([[1.0, 0.1], [1.0, 0.1]], dtype=np.float32)
    relevant = [np.array([1]), np.array([0, 2])]
    out = average_precisions(query, cands, relevant, k=20, full=True, backend=backend)
    np.testing.assert_allclose(out["map@20"], [1 / 2, (1 / 1 + 2 / 3) / 2])
    np.testing.assert_allclose(out["map"], out["map@20"])  # k covers the whole pool here
    at1 = average_precisions(query, cands, relevant, k=1, backend=backend)
    np.testing.assert_allclose(at1["map@1"], [0.0, 1.0])


# ---------------------------------------------------------------- LAReQA (XQuAD-R)


def write_xquad_r(root: Path, data_dir: Path, n_paragraphs: int = 2) -> Path:
    """The first paragraphs of the real XQuAD-R files (same ids in every language)."""
    out = root / "lareqa" / "xquad-r"
    out.mkdir(parents=True)
    for lang in LAREQA_LANGS:
        doc = json.loads((data_dir / "lareqa/xquad-r" / f"{lang}.json").read_text("utf-8"))
        first = doc["data"][0]
        doc["data"] = [{"title": first["title"], "paragraphs": first["paragraphs"][:n_paragraphs]}]
        (out / f"{lang}.json").write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    return out


def test_lareqa_pool_on_the_real_data(data_dir):
    d = load_lareqa(data_dir)
    assert len(d.questions) == 11 * 1190 and len(d.sentences) == 13014  # README's counts
    assert {len(r) for r in d.relevant} == {11}  # the answer sentence in every language
    first = d.relevant[0]
    assert sorted(d.candidate_langs[i] for i in first) == sorted(LAREQA_LANGS)
    en = d.question_langs.index("en")
    en_answer = next(i for i in d.relevant[en] if d.candidate_langs[i] == "en")
    assert d.question_ids[en] == d.question_ids[0]  # parallel ids across languages
    assert "308" in d.sentences[en_answer]  # "How many points did the Panthers defense surrender?"
    text = d.candidate_texts()[en_answer]
    assert text.startswith(d.sentences[en_answer] + " ") and "\n" not in text


def test_lareqa_subset_keeps_whole_articles_in_every_language(data_dir):
    full = load_lareqa(data_dir)
    sub = full.head(100)
    n_en = sub.question_langs.count("en")
    assert n_en >= 100 and n_en < 300  # whole articles: at least 100 questions, not many more
    assert {sub.question_langs.count(x) for x in LAREQA_LANGS} == {n_en}  # parallel
    kept = set(sub.question_articles)
    assert kept == set(sub.candidate_articles) and kept == set(full.question_articles[:100])
    assert len(sub.sentences) < len(full.sentences) / 3
    for i in (0, 57, len(sub.questions) - 1):  # relevant sets point at the same sentences
        j = full.question_ids.index(sub.question_ids[i])  # same id: the same 11 answers
        assert sorted(sub.sentences[c] for c in sub.relevant[i]) == sorted(
            full.sentences[c] for c in full.relevant[j]
        )
        assert len(sub.relevant[i]) == 11


def test_lareqa_end_to_end_on_a_tiny_model(tiny_model, data_dir, tmp_path, capsys, monkeypatch):
    write_xquad_r(tmp_path, data_dir)
    out, emb = tmp_path / "lareqa.json", tmp_path / "emb"
    code, stdout, stderr = run_cli(
        [
            "evaluate",
            "--model",
            str(tiny_model),
            "--task",
            "lareqa",
            "--layer",
            "all",
            "--query-prefix",
            "query: ",
            "--doc-prefix",
            "passage: ",
            "--data-dir",
            str(tmp_path),
            "--out",
            str(out),
            "--save-embeddings",
            str(emb),
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, stderr
    assert "LAReQA" in stdout and "map@20" in stdout
    res = json.loads(out.read_text())
    assert res["task"] == "lareqa" and res["languages"] == list(LAREQA_LANGS)
    assert res["settings"]["query_prefix"] == "query: "
    assert res["settings"]["doc_prefix"] == "passage: "
    df = pd.DataFrame(res["metrics"])
    assert len(df) == 11 * 3 * 2 and set(df.metric) == {"map@20", "map"}
    assert set(df.protocol) == {"xtreme"} and df.value.between(0, 1).all()
    data = load_lareqa(tmp_path)
    n_en = data.question_langs.count("en")
    assert res["sizes"]["en"]["questions"] == n_en
    assert res["sizes"]["pool"]["candidates"] == len(data.sentences)
    # Recompute layer 2 from the saved embeddings with a plain argsort and the written-out AP.
    q = np.load(emb / "lareqa.questions.layer02.npy")
    c = np.load(emb / "lareqa.candidates.layer02.npy")
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    ranked = np.argsort(-(q @ c.T), axis=1, kind="stable")
    langs = np.array(data.question_langs)
    for metric, k in (("map@20", 20), ("map", None)):
        ap = np.array(
            [
                _ap_reference(set(r.tolist()), row.tolist(), k)
                for r, row in zip(data.relevant, ranked, strict=True)
            ]
        )
        stored = df[(df.layer == 2) & (df.metric == metric)].set_index("lang").value
        for lang in LAREQA_LANGS:
            assert stored[lang] == pytest.approx(ap[langs == lang].mean(), abs=1e-6)


def test_lareqa_document_length_and_subset(tiny_model, data_dir, tmp_path, capsys, monkeypatch):
    """--doc-max-length cuts the candidates only (XTREME-R's 92-token candidates); the
    questions' embeddings do not change. --max-sentences is accepted for LAReQA (whole
    articles: tested on the real data above)."""
    write_xquad_r(tmp_path, data_dir)
    embs = {}
    for name, extra in {"full": [], "cut": ["--doc-max-length", "8"]}.items():
        out, emb = tmp_path / f"{name}.json", tmp_path / name
        args = ["evaluate", "--model", str(tiny_model), "--task", "lareqa", "--layer", "last",
                "--dtype", "fp32", "--data-dir", str(tmp_path), "--out", str(out),
                "--save-embeddings", str(emb), "--no-cache", *extra]  # fmt: skip
        code, _, stderr = run_cli(args, capsys, monkeypatch)
        assert code == 0, stderr
        embs[name] = {
            side: np.load(emb / f"lareqa.{side}.layer02.npy")
            for side in ("questions", "candidates")
        }
        embs[name]["settings"] = json.loads(out.read_text())["settings"]
    assert embs["cut"]["settings"]["doc_max_length"] == 8
    # equal up to batching (the full run encodes both sides in one call, the cut one in two)
    assert np.allclose(embs["full"]["questions"], embs["cut"]["questions"], atol=1e-5)
    assert not np.allclose(embs["full"]["candidates"], embs["cut"]["candidates"])
    out = tmp_path / "sub.json"
    args = ["evaluate", "--model", str(tiny_model), "--task", "lareqa", "--layer", "last",
            "--dtype", "fp32", "--data-dir", str(tmp_path), "--out", str(out),
            "--max-sentences", "3"]  # fmt: skip
    code, _, stderr = run_cli(args, capsys, monkeypatch)
    assert code == 0, stderr
    res = json.loads(out.read_text())
    # the fixture's paragraphs are all of one article, so the subset is that whole article
    assert res["settings"]["max_sentences"] == 3 and res["sizes"]["en"]["questions"] >= 3


@pytest.mark.parametrize(
    ("damage", "needles"),
    [
        ("answer", ["de.json", "question 56beb4343aeaaa14008c925b", "not among the candidates"]),
        ("missing", ["th.json: file not found"]),
        ("json", ["es.json:1: not valid JSON"]),
        ("nobreaks", ["ru.json: paragraph 1", "sentence_breaks"]),
        ("nullquestion", ["vi.json: question", "question is not text (None)"]),
        ("nullcontext", ["zh.json: paragraph 1", "no 'context'"]),
    ],
)
def test_lareqa_bad_input_is_one_line(
    damage, needles, tiny_model, data_dir, tmp_path, capsys, monkeypatch
):
    d = write_xquad_r(tmp_path, data_dir, n_paragraphs=1)
    if damage == "answer":  # the answer offset falls after the last sentence
        doc = json.loads((d / "de.json").read_text("utf-8"))
        para = doc["data"][0]["paragraphs"][0]
        para["qas"][0]["answers"][0]["answer_start"] = len(para["context"]) + 5
        (d / "de.json").write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    elif damage == "missing":
        (d / "th.json").unlink()
    elif damage == "json":
        (d / "es.json").write_text("{not json", "utf-8")
    elif damage.startswith("null"):
        lang, key = ("vi", "question") if damage == "nullquestion" else ("zh", "context")
        doc = json.loads((d / f"{lang}.json").read_text("utf-8"))
        para = doc["data"][0]["paragraphs"][0]
        (para["qas"][0] if key == "question" else para)[key] = None
        (d / f"{lang}.json").write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    else:
        doc = json.loads((d / "ru.json").read_text("utf-8"))
        del doc["data"][0]["paragraphs"][0]["sentence_breaks"]
        (d / "ru.json").write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    code, _, stderr = run_cli(
        ["evaluate", "--model", str(tiny_model), "--task", "lareqa", "--data-dir", str(tmp_path)],
        capsys,
        monkeypatch,
    )
    assert_one_line_error(code, stderr, *needles)


# ---------------------------------------------------------------- Mewsli-X

ENTITIES = {
    "Q1757": "Helsinki is the capital of Finland. It lies on the Gulf of Finland.",
    "Q167217": "Abu Musa is an island in the eastern Persian Gulf.",
    "Q3447452": "Lesser Tunb is a small island in the Persian Gulf.",
    "Q1754": "Stockholm is the capital of Sweden.",
    "Q33": "Finland is a Nordic country in Northern Europe.",
}


def write_mewsli(root: Path, data_dir: Path, drop: tuple[str, ...] = ()) -> Path:
    """The upstream example mentions plus a five-entity candidate set in Mewsli-X's schema."""
    d = root / "mewsli-x"
    d.mkdir(parents=True)
    shutil.copy(data_dir / "mewsli-x/example_mentions.jsonl", d)
    lines = []
    for eid, desc in ENTITIES.items():
        if eid in drop:
            continue
        cut = desc.index(".") + 1
        spans = [{"start": 0, "end": cut}] + (
            [{"start": cut + 1, "end": len(desc)}] if cut < len(desc) else []
        )
        entity = {
            "entity_id": eid,
            "title": desc.split(" is ")[0],
            "description": desc,
            "sentence_spans": spans,
            "description_language": "en",
            "description_url": f"https://en.wikipedia.org/wiki/{eid}",
        }
        lines.append(json.dumps(entity) + "\n")
    (d / "candidate_set_entities.jsonl").write_text("".join(lines), "utf-8")
    return d


def test_mention_text_follows_the_xtreme_r_baseline():
    text = "Title\n\nIn Helsinki, a strike. Then {quoted} Helsinki again."
    sentences = [(0, 5), (7, 29), (30, 59)]
    assert mention_text(text, sentences, 10, 18) == "Helsinki: In { Helsinki } , a strike."
    # braces already in the text become parentheses so the markers stay unambiguous
    assert mention_text(text, sentences, 44, 52) == "Helsinki: Then (quoted) { Helsinki } again."
    assert mention_text(text, sentences, 20, 32) is None  # crosses a sentence boundary


def test_mewsli_example_fixture_end_to_end(tiny_model, data_dir, tmp_path, capsys, monkeypatch):
    write_mewsli(tmp_path, data_dir)
    out, emb = tmp_path / "mewsli.json", tmp_path / "emb"
    code, stdout, stderr = run_cli(
        [
            "evaluate",
            "--model",
            str(tiny_model),
            "--task",
            "mewsli-x",
            "--langs",
            "ar,en",
            "--layer",
            "2",
            "--data-dir",
            str(tmp_path),
            "--out",
            str(out),
            "--save-embeddings",
            str(emb),
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, stderr
    assert "Mewsli-X (example mentions)" in stdout
    res = json.loads(out.read_text())
    assert res["sizes"]["ar"] == {"mentions": 2} and res["sizes"]["en"] == {"mentions": 1}
    assert res["sizes"]["candidates"]["entities"] == len(ENTITIES)
    df = pd.DataFrame(res["metrics"])
    assert set(df.metric) == {"map@20"} and set(df.split) == {"example"}
    # With one gold entity per mention, AP@20 is the reciprocal rank of the gold entity.
    data = load_mewsli(tmp_path, ["ar", "en"])
    m = np.load(emb / "mewsli-x.example.mentions.layer02.npy")
    e = np.load(emb / "mewsli-x.entities.layer02.npy")
    sims = (m / np.linalg.norm(m, axis=1, keepdims=True)) @ (
        e / np.linalg.norm(e, axis=1, keepdims=True)
    ).T
    rr = [1 / (1 + int((s > s[g]).sum())) for s, g in zip(sims, data.gold, strict=True)]
    stored = df.set_index("lang").value
    assert stored["en"] == pytest.approx(rr[0])
    assert stored["ar"] == pytest.approx((rr[1] + rr[2]) / 2)


@pytest.mark.parametrize(
    ("drop", "args", "needles"),
    [
        (("Q1757",), ["--langs", "en"], ["example_mentions.jsonl:1", "'Q1757'", "not in"]),
        ((), [], ["no mentions in de", "languages present: ar, en", "--langs"]),
        ((), ["--langs", "xx"], ["unknown Mewsli-X language 'xx'"]),
        (("all",), ["--langs", "en"], ["candidate set not found", "get-mewsli-x.sh"]),
    ],
)
def test_mewsli_bad_input_is_one_line(
    drop, args, needles, tiny_model, data_dir, tmp_path, capsys, monkeypatch
):
    d = write_mewsli(tmp_path, data_dir, drop=drop)
    if drop == ("all",):
        (d / "candidate_set_entities.jsonl").unlink()
    code, _, stderr = run_cli(
        ["evaluate", "-m", str(tiny_model), "-t", "mewsli-x", *args, "--data-dir", str(tmp_path)],
        capsys,
        monkeypatch,
    )
    assert_one_line_error(code, stderr, *needles)


def test_data_list_shows_the_xtreme_r_tasks(data_dir, capsys, monkeypatch):
    code, stdout, _ = run_cli(["data", "list", "--data-dir", str(data_dir)], capsys, monkeypatch)
    assert code == 0
    assert "lareqa" in stdout and "11/11" in stdout
    assert "mewsli-x" in stdout and "0/11" in stdout  # example mentions, no candidate set
