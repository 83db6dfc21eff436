"""XQuAD-R, the LAReQA retrieval set (Roy et al. 2020) used by XTREME-R.

Files: ``<data>/lareqa/xquad-r/<lang>.json`` for the 11 languages, SQuAD v1.1 JSON with an extra
``sentence_breaks`` list of ``[start, end)`` character offsets per paragraph (as released in
google-research-datasets/lareqa). The conversion to a retrieval task follows XTREME-R's
``third_party/utils_lareqa.py``:

* every sentence of every paragraph in every language is one candidate (the pool is the same
  for all questions, whatever their language);
* a question's answer sentence is the sentence whose span holds the answer's start offset;
* the relevant candidates of a question are the answer sentences of the questions with the same
  id (XQuAD ids are shared across the 11 parallel languages), i.e. one per language.

A candidate is embedded from its sentence followed by its paragraph (XTREME-R encodes
``sentence + context``); see docs/protocols.md for the exact text.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xstilts.errors import DataError

LAREQA_LANGS: tuple[str, ...] = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")


@dataclass(frozen=True)
class LareqaData:
    """Questions of all languages, the pooled candidates, and each question's relevant set."""

    question_ids: list[str]  # shared across languages (XQuAD id)
    question_langs: list[str]
    questions: list[str]
    candidate_langs: list[str]
    sentences: list[str]
    contexts: list[str]
    relevant: list[np.ndarray]  # per question: indices into the candidates
    paths: dict[str, Path]
    # per question: its article's index in the file (parallel across the 11 languages), so a
    # held-out selection split can keep an article's questions together
    question_articles: list[int] = field(default_factory=list)
    candidate_articles: list[int] = field(default_factory=list)

    def head(self, max_questions: int) -> LareqaData:
        """A quick subset: the first articles, enough to hold ``max_questions`` questions of
        the first language, with their questions in every language and a pool made of their
        sentences in every language (XQuAD is parallel, so every language keeps the same
        articles). A smaller pool is an easier task: numbers are not comparable with the full
        set's."""
        first = self.question_langs[0]
        own = [a for a, lang in zip(self.question_articles, self.question_langs, strict=True)
               if lang == first][:max_questions]  # fmt: skip
        keep = set(own)
        cands = [i for i, a in enumerate(self.candidate_articles) if a in keep]
        new_index = {old: new for new, old in enumerate(cands)}
        qs = [i for i, a in enumerate(self.question_articles) if a in keep]
        return LareqaData(
            [self.question_ids[i] for i in qs],
            [self.question_langs[i] for i in qs],
            [self.questions[i] for i in qs],
            [self.candidate_langs[i] for i in cands],
            [self.sentences[i] for i in cands],
            [self.contexts[i] for i in cands],
            [np.array([new_index[c] for c in self.relevant[i]], dtype=np.int64) for i in qs],
            self.paths,
            [self.question_articles[i] for i in qs],
            [self.candidate_articles[i] for i in cands],
        )

    def candidate_texts(self) -> list[str]:
        """What is embedded for each candidate: the sentence, a space, then its paragraph."""
        return [
            " ".join(f"{s} {c}".split("\n"))
            for s, c in zip(self.sentences, self.contexts, strict=True)
        ]


def lareqa_dir(data_dir: Path) -> Path:
    """Where the XQuAD-R files are expected: ``<data>/lareqa/xquad-r``."""
    return data_dir / "lareqa" / "xquad-r"


def lareqa_path(data_dir: Path, lang: str) -> Path:
    """The XQuAD-R file of one language."""
    return lareqa_dir(data_dir) / f"{lang}.json"


def _read_json(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(
            f"{path}: file not found (XQuAD-R: github.com/google-research-datasets/lareqa, "
            "folder xquad-r)"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: invalid UTF-8 (offset {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None


def _paragraphs(path: Path, doc: Any) -> list[tuple[int, dict[str, Any]]]:
    """``(article index, paragraph)`` in file order."""
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DataError(f"{path}: not SQuAD-format JSON (no top-level 'data' list)")
    try:
        return [(a, p) for a, article in enumerate(doc["data"]) for p in article["paragraphs"]]
    except (KeyError, TypeError):
        raise DataError(f"{path}: not SQuAD-format JSON (an article has no 'paragraphs')") from None


def _sentence_spans(path: Path, where: str, para: dict[str, Any]) -> list[tuple[int, int]]:
    context = para.get("context")
    breaks = para.get("sentence_breaks")
    if not isinstance(context, str) or not isinstance(breaks, list) or not breaks:
        raise DataError(
            f"{path}: {where} has no 'context'/'sentence_breaks' (XQuAD-R files carry sentence "
            "breaks; plain XQuAD does not)"
        )
    spans: list[tuple[int, int]] = []
    for item in breaks:
        ok = isinstance(item, list) and len(item) == 2 and all(isinstance(v, int) for v in item)
        if not ok or not 0 <= item[0] < item[1] <= len(context):
            raise DataError(f"{path}: {where}: bad sentence break {item!r}")
        spans.append((item[0], item[1]))
    return spans


def load_lareqa(data_dir: Path) -> LareqaData:
    """Load all 11 languages (the candidate pool needs every one) and check every question.

    A question whose answer offset lies in no sentence has no answer sentence among the
    candidates: that is an error naming the file and the question id (XTREME-R's script skips
    such questions with a printed warning; the released files have none).
    """
    qids: list[str] = []
    qlangs: list[str] = []
    questions: list[str] = []
    clangs: list[str] = []
    sentences: list[str] = []
    contexts: list[str] = []
    answer_of: list[tuple[str, int]] = []  # per question: (xling id, candidate index)
    articles: list[int] = []
    cand_articles: list[int] = []
    paths: dict[str, Path] = {}
    for lang in LAREQA_LANGS:
        path = paths[lang] = lareqa_path(data_dir, lang)
        seen: set[str] = set()
        for n_para, (article, para) in enumerate(_paragraphs(path, _read_json(path)), start=1):
            where = f"paragraph {n_para}"
            spans = _sentence_spans(path, where, para)
            first = len(sentences)
            context = para["context"]
            for start, end in spans:
                cand_articles.append(article)
                clangs.append(lang)
                sentences.append(context[start:end])
                contexts.append(context)
            for qa in para.get("qas", []):
                try:
                    qid, question = str(qa["id"]), qa["question"]
                    answer_start = int(qa["answers"][0]["answer_start"])
                except (KeyError, IndexError, TypeError, ValueError):
                    raise DataError(
                        f"{path}: {where}: a question lacks id/question/answers[0].answer_start"
                    ) from None
                if not isinstance(question, str) or not question.strip():
                    raise DataError(f"{path}: question {qid}: question is not text ({question!r})")
                if qid in seen:
                    raise DataError(f"{path}: question {qid}: duplicate question id")
                seen.add(qid)
                pos = next((i for i, (s, e) in enumerate(spans) if s <= answer_start < e), None)
                if pos is None:
                    raise DataError(
                        f"{path}: question {qid}: answer offset {answer_start} is in no sentence "
                        f"of its paragraph, so its answer sentence is not among the candidates"
                    )
                qids.append(qid)
                qlangs.append(lang)
                questions.append(question)
                answer_of.append((qid, first + pos))
                articles.append(article)
        if not seen:
            raise DataError(f"{path}: no questions")
    by_id: dict[str, set[int]] = defaultdict(set)
    for qid, cand in answer_of:
        by_id[qid].add(cand)
    relevant = [np.array(sorted(by_id[qid]), dtype=np.int64) for qid in qids]
    return LareqaData(
        qids, qlangs, questions, clangs, sentences, contexts, relevant, paths, articles,
        cand_articles,
    )  # fmt: skip
