"""Shared fixtures: the real data directory and a tiny random encoder built in the test run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("XSTILTS_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real shared data. CI must have it: a missing directory fails instead of skipping."""
    assert (DATA / "tatoeba").is_dir(), f"shared data not found at {DATA} (set XSTILTS_DATA)"
    return DATA


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Each test session writes caches (hashes, embeddings) to a temp dir, never the user's.

    Converted builtin models are shared across the session (converting takes seconds).
    """
    root = tmp_path_factory.getbasetemp() / "xstilts-cache"
    monkeypatch.setenv("XSTILTS_CACHE", str(root))
    monkeypatch.setenv("XSTILTS_DATA", str(DATA))
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")


def evaluate_args(model, task: str, langs: str, data_dir) -> list[str]:
    """``xstilts evaluate`` arguments for one model, task, language list and data root."""
    return ["evaluate", "--model", str(model), "--task", task, "--langs", langs,
            "--data-dir", str(data_dir)]  # fmt: skip


def run_cli(args: list[str], capsys, monkeypatch) -> tuple[int, str, str]:
    """Run the real ``xstilts`` entry point in-process; return (exit code, stdout, stderr)."""
    import sys

    from xstilts.cli import main

    monkeypatch.setattr(sys, "argv", ["xstilts", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def build_tiny_model(directory: Path, sentences: list[str], *, seed: int = 0) -> Path:
    """A 2-layer, hidden-32 XLM-R-style encoder with a BPE tokenizer trained on ``sentences``.

    Random weights, but deterministic for a seed; written as a regular HF model directory.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(
        sentences, trainers.BpeTrainer(vocab_size=800, special_tokens=specials, show_progress=False)
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        cls_token="<s>",
        sep_token="</s>",
        model_max_length=512,
    )
    torch.manual_seed(seed)
    cfg = XLMRobertaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=514,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    model = XLMRobertaModel(cfg, add_pooling_layer=False)
    model.save_pretrained(directory, safe_serialization=True)
    fast.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a tiny random encoder (built once per session from real Tatoeba text)."""
    from xstilts.io import read_lines

    sents: list[str] = []
    for code in ("deu", "fra", "rus", "cmn"):
        sents += read_lines(DATA / "tatoeba" / f"tatoeba.{code}-eng.{code}")[:300]
        sents += read_lines(DATA / "tatoeba" / f"tatoeba.{code}-eng.eng")[:300]
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"), sents)


@pytest.fixture(autouse=True)
def _dtype_auto_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Fail a test that lets ``--dtype auto`` decide on the CPU without the
    ``dtype_sensitive`` marker: ``make test`` reruns the marked tests with native bf16
    reported the other way (``XSTILTS_CPU_BF16``), so an unmarked one would be checked on
    one kind of host only."""
    from xstilts import hardware

    calls: list[bool] = []
    real = hardware.cpu_supports_bf16

    def recording() -> bool:
        calls.append(True)
        return real()

    monkeypatch.setattr(hardware, "cpu_supports_bf16", recording)
    yield
    if calls and request.node.get_closest_marker("dtype_sensitive") is None:
        pytest.fail(
            f"{request.node.nodeid} resolves --dtype auto on the CPU: pin a dtype or mark it "
            "@pytest.mark.dtype_sensitive (make test runs those both ways)",
            pytrace=False,
        )
