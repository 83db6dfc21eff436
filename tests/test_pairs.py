"""Pair tasks: what they load, how they align, their bad rows, their features and batches."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from xstilts.embedding.encoder import Encoder
from xstilts.errors import DataError
from xstilts.experiment.leakage import EvalIndex, find_overlaps
from xstilts.intermediate import get_intermediate_task, parse_task_list
from xstilts.models import resolve_model
from xstilts.train.config import TrainConfig
from xstilts.train.data import plan_record, training_tasks
from xstilts.train.heads import MultiTaskModel, SentenceSettings
from xstilts.train.pairs import collate_pairs, dev_draw, featurize_pairs
from xstilts.train.sampling import PairDraw

XNLI_LANGS = 15


def test_xnli_parallel_items_are_entailments_in_every_language(data_dir):
    split = get_intermediate_task("xnli-parallel").load(data_dir, "dev")
    assert len(split.examples) == 830  # one entailment row per premise, 2,490 / 3
    ex = split.examples[0]
    assert ex.multiway and len(ex.languages) == XNLI_LANGS and not ex.identity
    # the English item: its premise, the entailed hypothesis, the contradiction of that premise
    en = next(e for e in get_intermediate_task("xnli").load(data_dir, "dev", ["en"]).examples)
    assert ex.query["en"] == en.text_a
    assert all(len(e.negative) == XNLI_LANGS for e in split.examples)
    # every text a model may read is there for the leakage guard: 3 sides x 15 languages
    assert len(ex.texts()) == 3 * XNLI_LANGS
    # English only: the same items, one language
    assert get_intermediate_task("xnli-parallel").load(data_dir, "dev", ["en"]).langs == ("mul",)


def test_translations_pair_a_sentence_with_itself_in_other_languages(data_dir):
    split = get_intermediate_task("xnli-translations").load(data_dir, "dev", ["de", "en"])
    ex = split.examples[0]
    assert ex.identity and ex.query == ex.doc and set(ex.query) == {"de", "en"}
    assert len({e.query["en"] for e in split.examples}) == len(split.examples)  # distinct


def test_paws_x_rows_count_only_when_every_language_agrees_on_the_label(data_dir):
    all_langs = get_intermediate_task("pawsx-parallel").load(data_dir, "dev").examples
    english = get_intermediate_task("pawsx-parallel").load(data_dir, "dev", ["en"]).examples
    # 32 dev rows are paraphrases in English but not in German (translation changed them)
    assert len(all_langs) < len(english)


def _xnli_copy(tmp_path: Path, data_dir: Path, rows: dict[str, int]) -> Path:
    root = tmp_path / "data"
    (root / "xnli").mkdir(parents=True)
    for lang, n in rows.items():
        lines = (data_dir / "xnli" / f"dev-{lang}.tsv").read_text(encoding="utf-8").splitlines()
        (root / "xnli" / f"dev-{lang}.tsv").write_text("\n".join(lines[:n]) + "\n")
    return root


def test_rows_that_cannot_be_aligned_are_an_error(tmp_path, data_dir):
    root = _xnli_copy(tmp_path, data_dir, {"de": 30, "fr": 29})
    with pytest.raises(DataError, match="cannot be aligned across languages: de 30, fr 29 rows"):
        get_intermediate_task("xnli-parallel").load(root, "dev", ["de", "fr"])


def test_bad_rows_of_the_base_task_name_file_and_line(tmp_path, data_dir):
    root = _xnli_copy(tmp_path, data_dir, {"de": 6, "fr": 6})
    path = root / "xnli" / "dev-fr.tsv"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].rsplit("\t", 1)[0] + "\tmaybe"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"dev-fr.tsv:4: label 'maybe' is not in the label set"):
        get_intermediate_task("xnli-parallel").load(root, "dev", ["de", "fr"])


# --------------------------------------------------------------------------- user files


def test_pairs_file_with_languages_and_optional_hard_negatives(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("Guten Morgen.\tGood morning.\nDanke.\tThanks.\tThank God.\n")
    task = get_intermediate_task(f"pairs:de-en:{path}")
    assert task.kind == "contrastive" and task.languages == ("de-en",)
    a, b = task.load(None, "train").examples
    assert (a.query, a.doc, a.negative) == ({"de": "Guten Morgen."}, {"en": "Good morning."}, {})
    assert b.negative == {"en": "Thank God."} and b.lang == "de-en" and not b.multiway
    assert get_intermediate_task(f"pairs:{path}").load(None, "train").examples[0].lang == "und"
    # a path that exists is a path, even when it looks like LANG:PATH
    assert parse_task_list(f"mnli,pairs:en:{path}")[1].name == f"pairs:en:{path}"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("only one field", "expected query<TAB>document[<TAB>hard negative], found 1 field"),
        ("a\tb\tc\td", "expected at most 3 tab-separated fields"),
        ("a\t \tc", "empty document"),
        ("a\tb\t", "empty hard negative"),
    ],
)
def test_bad_pair_rows_name_file_and_line(row, message, tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text(f"Hallo.\tHello.\n{row}\nTschüss.\tBye.\n")
    task = get_intermediate_task(f"pairs:de-en:{path}")
    with pytest.raises(DataError, match="pairs.tsv:2: " + re.escape(message)):
        task.load(None, "train")
    assert task.load(None, "train", skip_bad_rows=True).n_skipped == 1


# --------------------------------------------------------------------------- objective, record


def cfg(**kw) -> TrainConfig:
    return TrainConfig(model="m", out=Path("/tmp/unused"), **kw)


def test_objective_per_task_turns_a_classification_task_into_its_pairs():
    tasks = training_tasks(cfg(tasks="mnli,xnli", objective="xnli:contrastive"))
    assert [t.name for t in tasks] == ["mnli", "xnli-parallel"]
    assert [t.kind for t in training_tasks(cfg(tasks="mnli", objective="contrastive"))] == [
        "contrastive"
    ]
    assert training_tasks(cfg(tasks="xnli-parallel"))[0].name == "xnli-parallel"
    with pytest.raises(DataError, match="squad has no contrastive form"):
        training_tasks(cfg(tasks="squad", objective="contrastive"))
    with pytest.raises(Exception, match="not among the tasks"):
        training_tasks(cfg(tasks="mnli", objective="qqp:contrastive"))
    # a split given for the classification task applies to its pair form
    c = cfg(tasks="xnli", objective="contrastive", train_split={"xnli": "dev"})
    assert c.split_for("xnli-parallel", "train", "xnli") == "dev"


def test_pairs_are_grouped_by_their_languages(data_dir, tmp_path):
    path = tmp_path / "p.tsv"
    path.write_text("".join(f"Satz {i}.\tSentence {i}.\n" for i in range(20)))
    assert plan_record(cfg(tasks="mnli-pairs"), data_dir)["group"] == "english"
    en_only = cfg(tasks="xnli-parallel", langs=["en"], train_split="dev", hybrid_alpha=1.0)
    assert plan_record(en_only, data_dir)["group"] == "english"
    multi = cfg(tasks="xnli-parallel", langs=["en", "de"], train_split="dev")
    assert plan_record(multi, data_dir)["group"] == "multilingual"
    plan = plan_record(cfg(tasks=f"pairs:de-en:{path}"), data_dir)
    assert plan["group"] == "multilingual" and plan["tasks"][f"pairs:de-en:{path}"]["rows"] == {
        "de-en": 18  # 10% held out for dev
    }


def test_leakage_guard_reads_every_language_of_pair_items(data_dir, tmp_path):
    tatoeba = (data_dir / "tatoeba" / "tatoeba.deu-eng.deu").read_text().splitlines()[:50]
    path = tmp_path / "p.tsv"
    path.write_text(
        "".join(f"Irgendein anderer Satz Nummer {i}.\t{t}\n" for i, t in enumerate(tatoeba))
    )
    index = EvalIndex()
    index.add("tatoeba", "de", tatoeba)
    (overlap,) = find_overlaps(cfg(tasks=f"pairs:de:{path}"), index, data_dir)
    assert overlap.evaluation == "tatoeba" and overlap.n >= 40 and overlap.contaminating


# --------------------------------------------------------------------------- features, batches


def test_features_batches_and_the_sentence_vector_of_evaluation(tiny_model, data_dir):
    ref = resolve_model(str(tiny_model))
    loaded = ref.load()
    items = get_intermediate_task("xnli-parallel").load(data_dir, "dev", ["de", "en"]).examples[:6]
    feats = featurize_pairs(items, loaded.tokenizer, max_length=24, prefixes=("q: ", "d: "))
    enc = Encoder(loaded.model, loaded.tokenizer, device="cpu", dtype="fp32", max_length=24)
    ids, _ = enc.tokenize([items[0].query["de"]], prefix="q: ")
    assert feats[0]["query"]["de"] == ids[0]  # the evaluation's tokenization and truncation
    draw = PairDraw(np.arange(6), ("de",) * 6, ("en",) * 6, "cross-lingual")
    batch = collate_pairs(feats, draw, loaded.tokenizer.pad_token_id)
    assert batch["query_input_ids"].shape[0] == 6 and batch["negative_input_ids"].shape[0] == 6
    assert not batch["false_negatives"].any()
    # the same item twice in a batch: its copy is masked, not a negative
    dup = PairDraw(np.array([0, 1, 0]), ("de",) * 3, ("en",) * 3, "cross-lingual")
    mask = collate_pairs(feats, dup, loaded.tokenizer.pad_token_id)["false_negatives"]
    assert mask[0, 2] and mask[2, 0] and not mask[0, 1]
    # model.embed is the evaluation's sentence vector: same numbers as Encoder.encode
    settings = SentenceSettings(
        layer=1, pooling="mean-nospecial", special_ids=tuple(loaded.tokenizer.all_special_ids)
    )
    model = MultiTaskModel(loaded.model, [], sentence=settings).eval()
    with torch.no_grad():
        trained = model.embed(batch["query_input_ids"], batch["query_attention_mask"])
    evaluated, _ = enc.encode(
        [it.query["de"] for it in items], layers=[1], pooling="mean-nospecial", prefix="q: "
    )
    assert np.allclose(trained.numpy(), evaluated[0], atol=1e-5)


def test_dev_pairs_follow_the_regimes_training_draws(data_dir):
    items = get_intermediate_task("xnli-parallel").load(data_dir, "dev", ["de", "en"]).examples[:8]
    mono = dev_draw(items, alpha=1.0, pairing="any")
    assert all(q == d for q, d in zip(mono.query_langs, mono.doc_langs, strict=True))
    cross = dev_draw(items, alpha=0.0, pairing="any")
    assert all(q != d for q, d in zip(cross.query_langs, cross.doc_langs, strict=True))
    both = dev_draw(items, alpha=0.5, pairing="any")
    assert {q == d for q, d in zip(both.query_langs, both.doc_langs, strict=True)} == {True, False}


def test_plan_weights_a_multiway_task_by_its_items_as_the_sampler_does(data_dir):
    # the sampler draws an XNLI item (one row in each of 15 languages) as one example, so the
    # plan must weigh the task by items, not by rows summed over languages (15x too many)
    plan = plan_record(
        cfg(tasks="mnli,xnli-parallel", train_split={"xnli-parallel": "dev"}), data_dir
    )
    rows = {t: plan["tasks"][t]["rows"] for t in ("mnli", "xnli-parallel")}
    items = {"mnli": sum(rows["mnli"].values()), "xnli-parallel": rows["xnli-parallel"]["en"]}
    assert set(rows["xnli-parallel"].values()) == {items["xnli-parallel"]}  # aligned items
    expected = items["xnli-parallel"] / (items["mnli"] + items["xnli-parallel"])
    assert plan["tasks"]["xnli-parallel"]["probability"] == pytest.approx(expected, abs=1e-6)
    # 7% of the draws are non-English: mixed (weighed by rows, 55% of the draws would have
    # been XNLI's and the setting "multilingual")
    assert plan["group"] == "mixed"
