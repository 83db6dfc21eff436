"""Where encoders come from: a Hugging Face hub id, a local directory, or ``builtin:NAME``.

Every source ends up as a regular ``transformers`` model directory loaded with ``AutoModel`` /
``AutoTokenizer``; builtin models are converted once into the cache (see
:mod:`xstilts.models.builtin`). Remote code is refused unless the user opts in.

Resolving (:func:`resolve_model`) is cheap and separate from loading (:meth:`ModelRef.load`):
the weights' content hash and the config are known without building the network, so an
evaluation whose embeddings are all cached never loads the model at all.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import transformers
from huggingface_hub import snapshot_download

from xstilts.errors import ModelError
from xstilts.hashing import files_sha256
from xstilts.models.builtin import builtin_model_dir
from xstilts.models.runs import RUN_FILE, run_encoder_dir

BUILTIN_PREFIX = "builtin:"
_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth")
# Files that carry a vocabulary: a directory with none of them would load with a fallback
# vocabulary of a few special tokens (every word <unk>) and evaluate without complaint.
VOCAB_FILES = (
    "tokenizer.json",
    "sentencepiece.bpe.model",
    "spiece.model",
    "tokenizer.model",
    "vocab.txt",
    "vocab.json",
)
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "sentencepiece.bpe.model",
    "spiece.model",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_tokenizer_files(directory: Path) -> None:
    """Refuse a model directory without a vocabulary file (see :data:`VOCAB_FILES`)."""
    if not any((directory / name).is_file() for name in VOCAB_FILES):
        raise ModelError(
            f"{directory}: no tokenizer files (expected one of {', '.join(VOCAB_FILES)}); "
            "save the tokenizer next to the model (tokenizer.save_pretrained(DIR))"
        )


def weight_files(directory: Path) -> list[Path]:
    """The weight files of a model directory (safetensors preferred, as transformers does)."""
    for pattern in _WEIGHT_PATTERNS:
        files = sorted(directory.glob(pattern))
        if files:
            return files
    return []


@dataclass
class ModelRef:
    """A resolved model reference: where it lives and what it is, before loading weights."""

    spec: str  # what the user passed
    source: str  # "builtin", "local" or "hub"
    path: str  # local directory or hub id
    local_dir: Path | None  # the files on disk (a hub model only once downloaded)
    trust_remote_code: bool = False

    @cached_property
    def config(self) -> Any:
        """The model's ``transformers`` config (cheap: reads config.json only)."""

        try:
            return transformers.AutoConfig.from_pretrained(
                self.path, trust_remote_code=self.trust_remote_code
            )
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"cannot load model {self.spec!r}: {_first_line(exc)}") from None

    @property
    def num_hidden_states(self) -> int:
        """Number of hidden states: the embedding output plus one per transformer layer."""
        return int(self.config.num_hidden_layers) + 1

    @cached_property
    def weights_sha256(self) -> str | None:
        """Content hash of the weight files; None when they cannot be located."""

        files = weight_files(self.local_dir) if self.local_dir else []
        return files_sha256(files) if files else None

    @cached_property
    def tokenizer_sha256(self) -> str | None:
        """Content hash of the tokenizer files (they decide the token ids as much as weights)."""

        if self.local_dir is None:
            return None
        files = [self.local_dir / n for n in _TOKENIZER_FILES if (self.local_dir / n).is_file()]
        return files_sha256(files) if files else None

    @property
    def content_key(self) -> str | None:
        """Identity of (weights, tokenizer) for caches; None when either is unknown."""
        if not self.weights_sha256 or not self.tokenizer_sha256:
            return None
        return hashlib.sha256(f"{self.weights_sha256}:{self.tokenizer_sha256}".encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        """Provenance recorded in every results file."""
        cfg = self.config
        return {
            "spec": self.spec,
            "source": self.source,
            "path": self.path,
            "weights_sha256": self.weights_sha256,
            "tokenizer_sha256": self.tokenizer_sha256,
            "architecture": (getattr(cfg, "architectures", None) or [cfg.model_type])[0],
            "num_hidden_states": self.num_hidden_states,
            "hidden_size": int(getattr(cfg, "hidden_size", 0) or getattr(cfg, "d_model", 0)),
        }

    def _error(self, exc: BaseException) -> ModelError:
        hint = (
            " (the hub is not reachable: use a local directory or builtin:NAME)"
            if self.source == "hub"
            else ""
        )
        return ModelError(f"cannot load model {self.spec!r}: {_first_line(exc)}{hint}")

    def load_tokenizer(self) -> Any:
        """The tokenizer alone (counting tokens needs no weights)."""
        transformers.logging.set_verbosity_error()
        try:
            return transformers.AutoTokenizer.from_pretrained(
                self.path, trust_remote_code=self.trust_remote_code
            )
        except Exception as exc:
            raise self._error(exc) from None

    def load(self, device: str | None = None) -> LoadedModel:
        """Load tokenizer and encoder; one-line :class:`ModelError` on failure."""

        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        tokenizer = self.load_tokenizer()
        try:
            model = transformers.AutoModel.from_pretrained(
                self.path, trust_remote_code=self.trust_remote_code
            )
        except Exception as exc:  # junk or truncated weights raise safetensors/torch errors too
            raise self._error(exc) from None
        if getattr(model.config, "is_encoder_decoder", False) and hasattr(model, "get_encoder"):
            model = model.get_encoder()
        if device:
            model = model.to(device)
        model.eval()
        if self.local_dir is None and self.source == "hub":
            # now downloaded: the hash can be computed for the results file
            self.local_dir = _hub_snapshot(self.path)
            self.__dict__.pop("weights_sha256", None)
            self.__dict__.pop("tokenizer_sha256", None)
            if self.local_dir is not None:
                check_tokenizer_files(self.local_dir)
        return LoadedModel(self, model, tokenizer)


@dataclass
class LoadedModel:
    """An encoder ready for :class:`xstilts.embedding.encoder.Encoder`, with its provenance."""

    ref: ModelRef
    model: Any  # transformers.PreTrainedModel (encoder part)
    tokenizer: Any  # transformers.PreTrainedTokenizerBase

    @property
    def num_hidden_states(self) -> int:
        """Number of hidden states: the embedding output plus one per transformer layer."""
        return int(self.model.config.num_hidden_layers) + 1

    def describe(self) -> dict[str, Any]:
        """Provenance recorded in every results file."""
        return self.ref.describe()


def _hub_snapshot(repo_id: str) -> Path | None:
    """The local snapshot directory of a downloaded hub model, or None."""
    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:
        return None


def resolve_model(spec: str, *, trust_remote_code: bool = False) -> ModelRef:
    """Map a model spec to a :class:`ModelRef` without loading the network."""
    if spec.startswith(BUILTIN_PREFIX):
        directory = builtin_model_dir(spec[len(BUILTIN_PREFIX) :])
        check_tokenizer_files(directory)
        return ModelRef(spec, "builtin", str(directory), directory, trust_remote_code)
    path = Path(spec).expanduser()
    if path.is_dir() and (path / RUN_FILE).is_file():
        # a training run directory: evaluate its best (else last) checkpoint's encoder
        encoder = run_encoder_dir(path)
        if encoder is None:
            raise ModelError(f"{path}: training run has no checkpoint yet")
        check_tokenizer_files(encoder)
        return ModelRef(spec, "run", str(encoder), encoder, trust_remote_code)
    if path.exists():
        if not path.is_dir() or not (path / "config.json").is_file():
            raise ModelError(
                f"{path}: not a model directory (no config.json); expected a Hugging Face "
                "model directory, a hub id, or builtin:NAME (see `xstilts models list`)"
            )
        check_tokenizer_files(path)
        return ModelRef(spec, "local", str(path), path, trust_remote_code)
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1 or not spec.strip():
        raise ModelError(f"{spec}: no such model directory")
    snapshot = _hub_snapshot(spec)
    if snapshot is not None:
        check_tokenizer_files(snapshot)
    return ModelRef(spec, "hub", spec, snapshot, trust_remote_code)


def load_model(
    spec: str, *, trust_remote_code: bool = False, device: str | None = None
) -> LoadedModel:
    """Resolve and load ``spec`` in one step."""
    return resolve_model(spec, trust_remote_code=trust_remote_code).load(device)
