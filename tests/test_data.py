"""Loaders on the real shared data, language sets, and bad-input errors."""

from __future__ import annotations

import http.server
import shutil
import threading
from pathlib import Path

import pytest

from xstilts.data.bucc import load_bucc_split, subsample_bucc, tuning_and_test_splits
from xstilts.data.fetch import fetch, recorded_checksums
from xstilts.data.languages import (
    ALL_TATOEBA,
    LASER_TO_ISO1,
    XTREME_R_TATOEBA,
    XTREME_TATOEBA,
    parse_tatoeba_langs,
    to_laser,
)
from xstilts.data.tatoeba import load_tatoeba
from xstilts.errors import DataError
from xstilts.hashing import sha256_file
from xstilts.io import read_lines
from xstilts.tasks import get_task


def test_language_sets_have_the_documented_sizes():
    assert len(XTREME_TATOEBA) == 36
    assert len(XTREME_R_TATOEBA) == 41
    assert set(XTREME_R_TATOEBA) - set(XTREME_TATOEBA) == {"az", "lt", "pl", "uk", "ro"}
    assert len(ALL_TATOEBA) == len(set(ALL_TATOEBA)) == 112
    assert set(XTREME_R_TATOEBA) <= set(ALL_TATOEBA)


def test_iso_laser_mapping_is_one_to_one_and_has_the_tricky_codes():
    isos = [v for v in LASER_TO_ISO1.values() if v]
    assert len(isos) == len(set(isos))
    assert parse_tatoeba_langs("zh,fa,sw,ms,lv") == ["zh", "fa", "sw", "ms", "lv"]
    assert parse_tatoeba_langs("cmn,pes,swh") == ["zh", "fa", "sw"]
    assert parse_tatoeba_langs("yue,wuu") == ["yue", "wuu"]  # no ISO 639-1 code
    assert parse_tatoeba_langs("de, deu ,DE") == ["de"]


def test_unknown_language_lists_valid_codes():
    with pytest.raises(DataError, match=r"unknown Tatoeba language 'xx'.*xtreme-r"):
        parse_tatoeba_langs("de,xx")
    with pytest.raises(DataError, match="did you mean xtreme"):
        parse_tatoeba_langs("xtrem")


def test_all_112_tatoeba_languages_load_with_readme_sizes(data_dir: Path):
    sizes = {}
    for lang in ALL_TATOEBA:
        pair = load_tatoeba(data_dir, lang)
        assert len(pair.x) == len(pair.en) > 0
        sizes[lang] = len(pair)
    # shared/data/README.md: 72 languages have 1000 pairs, 40 fewer
    assert sum(n == 1000 for n in sizes.values()) == 72
    assert sum(n < 1000 for n in sizes.values()) == 40
    assert sizes["de"] == 1000 and sizes["am"] == 168 and sizes["tzl"] == 104


def test_bucc_sample_split_loads_with_readme_sizes(data_dir: Path):
    tune, test = tuning_and_test_splits(data_dir, "zh")
    assert (tune, test) == ("dev", None)
    split = load_bucc_split(data_dir, "zh", "dev")
    assert (len(split.x), len(split.en), len(split.gold or [])) == (8624, 13589, 257)
    assert split.x_ids[0] == "zh-000000001"


def test_bucc_subsample_keeps_every_gold_pair_and_file_order(data_dir: Path):
    split = load_bucc_split(data_dir, "zh", "dev")
    sub = subsample_bucc(split, 2000)
    assert (len(sub.x), len(sub.en)) == (2000, 2000)
    assert sub.gold == split.gold
    gold_x, gold_en = {a for a, _ in split.gold}, {b for _, b in split.gold}
    assert gold_x <= set(sub.x_ids) and gold_en <= set(sub.en_ids)
    assert sub.x_ids == sorted(sub.x_ids)  # ids are numbered in file order
    text = dict(zip(split.x_ids, split.x, strict=True))
    assert all(text[i] == t for i, t in zip(sub.x_ids, sub.x, strict=True))
    # seeded: the same subset every time; a different seed draws other distractors
    assert subsample_bucc(split, 2000).en_ids == sub.en_ids
    assert subsample_bucc(split, 2000, seed=1).en_ids != sub.en_ids
    # fewer lines than n: unchanged; n below the gold count: exactly the gold sentences
    assert subsample_bucc(split, 20000) is split
    assert set(subsample_bucc(split, 10).x_ids) == gold_x


def test_tatoeba_head_is_the_first_n_aligned_pairs(data_dir: Path):
    pair = load_tatoeba(data_dir, "de")
    head = pair.head(10)
    assert (head.x, head.en) == (pair.x[:10], pair.en[:10])
    assert pair.head(None) is pair and pair.head(5000) is pair


def write(p: Path, text: str | bytes) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    (p.write_bytes if isinstance(text, bytes) else p.write_text)(text)
    return p


def test_misaligned_tatoeba_names_both_files_and_counts(tmp_path: Path):
    write(tmp_path / "tatoeba/tatoeba.deu-eng.deu", "a\nb\nc\n")
    write(tmp_path / "tatoeba/tatoeba.deu-eng.eng", "a\nb\n")
    with pytest.raises(
        DataError, match=r"tatoeba.deu-eng.deu has 3 lines but .*tatoeba.deu-eng.eng has 2"
    ):
        load_tatoeba(tmp_path, "de")


def test_empty_and_invalid_utf8_files(tmp_path: Path):
    write(tmp_path / "tatoeba/tatoeba.deu-eng.deu", "")
    write(tmp_path / "tatoeba/tatoeba.deu-eng.eng", "x\n")
    with pytest.raises(DataError, match=r"tatoeba.deu-eng.deu: file is empty"):
        load_tatoeba(tmp_path, "de")
    write(tmp_path / "tatoeba/tatoeba.deu-eng.deu", b"ok\nbad \xff byte\n")
    with pytest.raises(DataError, match=r"tatoeba.deu-eng.deu:2: invalid UTF-8"):
        load_tatoeba(tmp_path, "de")


def test_missing_data_dir_says_how_to_fetch(tmp_path: Path):
    with pytest.raises(DataError, match="xstilts data fetch tatoeba"):
        load_tatoeba(tmp_path, "de")
    with pytest.raises(DataError, match="xstilts data fetch bucc2018"):
        tuning_and_test_splits(tmp_path, "zh")


def make_bucc(root: Path, gold: str = "zh-1\ten-2\n") -> Path:
    d = root / "bucc2018"
    write(d / "zh-en.dev.zh", "zh-1\t你好\nzh-2\t再见\n")
    write(d / "zh-en.dev.en", "en-1\tbye\nen-2\thello\n")
    write(d / "zh-en.dev.gold", gold)
    return d


def test_bucc_gold_with_unknown_id_is_an_error(tmp_path: Path):
    make_bucc(tmp_path, "zh-1\ten-2\nzh-9\ten-1\n")
    with pytest.raises(
        DataError, match=r"zh-en.dev.gold:2: gold id 'zh-9' is not in .*zh-en.dev.zh"
    ):
        load_bucc_split(tmp_path, "zh", "dev")


def test_bucc_line_without_tab_and_duplicate_ids(tmp_path: Path):
    d = make_bucc(tmp_path)
    write(d / "zh-en.dev.en", "en-1\tbye\nen-2 hello\n")
    with pytest.raises(DataError, match=r"zh-en.dev.en:2: expected 'id<TAB>sentence'"):
        load_bucc_split(tmp_path, "zh", "dev")
    write(d / "zh-en.dev.en", "en-1\tbye\nen-1\thello\n")
    with pytest.raises(DataError, match=r"zh-en.dev.en:2: duplicate id 'en-1' \(first on line 1\)"):
        load_bucc_split(tmp_path, "zh", "dev")


def test_bucc_original_shared_task_naming_in_subdirectory(tmp_path: Path):
    d = tmp_path / "bucc2018" / "de-en"
    write(d / "de-en.sample.de", "de-1\tHallo\n")
    write(d / "de-en.sample.en", "en-1\tHello\n")
    write(d / "de-en.sample.gold", "de-1\ten-1\n")
    write(d / "de-en.training.de", "de-7\tWelt\n")
    write(d / "de-en.training.en", "en-7\tWorld\n")
    write(d / "de-en.training.gold", "de-7\ten-7\n")
    write(d / "de-en.test.de", "de-2\tTschüss\n")
    write(d / "de-en.test.en", "en-2\tBye\n")
    assert tuning_and_test_splits(tmp_path, "de") == ("sample", "test")
    assert tuning_and_test_splits(tmp_path, "de", "training") == ("training", "test")
    assert load_bucc_split(tmp_path, "de", "test").gold is None
    with pytest.raises(DataError, match="no gold file for the de-en test split"):
        tuning_and_test_splits(tmp_path, "de", "test")


def test_unknown_task_suggests_closest():
    with pytest.raises(DataError, match="did you mean tatoeba"):
        get_task("tatoba")
    assert get_task("bucc").name == "bucc2018"


def test_read_lines_handles_crlf_and_bom(tmp_path: Path):
    p = write(tmp_path / "f.txt", "\ufeffa\r\nb\r\n".encode())
    assert read_lines(p) == ["a", "b"]


@pytest.fixture
def file_server(tmp_path: Path):
    """A local HTTP server standing in for the public source (tests never use the network)."""
    root = tmp_path / "served"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_fetch_tatoeba_verifies_checksums_and_resumes(file_server, tmp_path: Path, data_dir: Path):
    served, url = file_server
    for name in ("tatoeba.deu-eng.deu", "tatoeba.deu-eng.eng"):
        shutil.copy(data_dir / "tatoeba" / name, served / name)
    dest = tmp_path / "data"
    statuses: list[str] = []
    paths = fetch(plan("tatoeba", url, ["de"]), dest, on_file=lambda d, s: statuses.append(s))
    assert statuses == ["downloaded", "downloaded"]
    assert [p.name for p in paths] == ["tatoeba.deu-eng.deu", "tatoeba.deu-eng.eng"]
    assert len(load_tatoeba(dest, "de")) == 1000
    statuses.clear()
    fetch(plan("tatoeba", url, ["de"]), dest, on_file=lambda d, s: statuses.append(s))
    assert statuses == ["ok", "ok"]  # already present and verified: nothing downloaded again


def test_fetch_rejects_a_tampered_file_and_keeps_nothing(file_server, tmp_path: Path):
    served, url = file_server
    (served / "tatoeba.deu-eng.deu").write_text("tampered\n")
    dest = tmp_path / "data"
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch(
            plan("tatoeba", url, ["de"]),
            dest,
        )
    assert not (dest / "tatoeba" / "tatoeba.deu-eng.deu").exists()
    assert not any(p.name.endswith(".tmp") for p in dest.rglob("*"))


def test_fetch_missing_file_is_a_one_line_error(file_server, tmp_path: Path):
    _, url = file_server
    with pytest.raises(DataError, match=r"tatoeba.deu-eng.deu: HTTP 404"):
        fetch(
            plan("tatoeba", url, ["de"]),
            tmp_path,
        )


def test_fetch_bucc_needs_allow_unverified_then_extracts(file_server, tmp_path: Path):
    import tarfile

    served, url = file_server
    staging = tmp_path / "staging" / "bucc2018" / "zh-en"
    write(staging / "zh-en.sample.zh", "zh-1\t你好\n")
    write(staging / "zh-en.sample.en", "en-1\thello\n")
    write(staging / "zh-en.sample.gold", "zh-1\ten-1\n")
    for part in ("sample-gold", "training-gold", "test"):
        with tarfile.open(served / f"bucc2018-zh-en.{part}.tar.bz2", "w:bz2") as tar:
            if part == "sample-gold":
                tar.add(tmp_path / "staging" / "bucc2018", arcname="bucc2018")
    with pytest.raises(DataError, match="--allow-unverified"):
        fetch(
            plan("bucc2018", url, ["zh"]),
            tmp_path / "d",
        )
    statuses: list[str] = []
    fetch(
        plan("bucc2018", url, ["zh"]),
        tmp_path / "d",
        allow_unverified=True,
        on_file=lambda d, s: statuses.append(s),
    )
    assert all(s.startswith("unverified sha256=") for s in statuses)
    assert load_bucc_split(tmp_path / "d", "zh", "sample").gold == [("zh-1", "en-1")]


def plan(task: str, url: str, langs: list[str]):
    """What ``xstilts data fetch TASK --base-url URL --langs ...`` downloads."""
    return get_task(task).downloads(url, langs)


def test_recorded_checksums_cover_every_tatoeba_file_and_match_the_data(data_dir: Path):
    """Both files of every one of the 112 languages have a recorded SHA-256, and it is the
    digest of the real file (a wrong or missing entry would refuse a good download)."""
    sums = recorded_checksums()["tatoeba"]
    expected = set()
    for lang in ALL_TATOEBA:
        laser = to_laser(lang)
        expected |= {f"tatoeba.{laser}-eng.{laser}", f"tatoeba.{laser}-eng.eng"}
    assert set(sums) == expected
    wrong = [n for n, digest in sums.items() if sha256_file(data_dir / "tatoeba" / n) != digest]
    assert not wrong, wrong
