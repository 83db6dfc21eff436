"""Where encoders come from: a Hugging Face hub id, a local directory, or ``builtin:NAME``.

Every source ends up as a regular ``transformers`` model directory loaded with ``AutoModel`` /
``AutoTokenizer``; builtin models are converted once into the cache (see
:mod:`xstilts.models.builtin`). Remote code is refused unless the user opts in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xstilts.errors import ModelError

BUILTIN_PREFIX = "builtin:"
_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth")


@dataclass
class LoadedModel:
    """An encoder ready for :class:`xstilts.encode.Encoder`, with provenance for results."""

    spec: str  # what the user passed
    source: str  # "builtin", "local" or "hub"
    path: str  # local directory or hub id
    model: Any  # transformers.PreTrainedModel (encoder part)
    tokenizer: Any  # transformers.PreTrainedTokenizerBase
    weights_sha256: str | None

    @property
    def num_hidden_states(self) -> int:
        """Number of hidden states: the embedding output plus one per transformer layer."""
        return int(self.model.config.num_hidden_layers) + 1

    def describe(self) -> dict[str, Any]:
        """Provenance recorded in every results file."""
        cfg = self.model.config
        return {
            "spec": self.spec,
            "source": self.source,
            "path": self.path,
            "weights_sha256": self.weights_sha256,
            "architecture": type(self.model).__name__,
            "num_hidden_states": self.num_hidden_states,
            "hidden_size": int(getattr(cfg, "hidden_size", 0) or getattr(cfg, "d_model", 0)),
        }


def resolve_model_path(spec: str) -> tuple[str, str]:
    """Map a model spec to ``(source, path_or_hub_id)`` without loading anything."""
    if spec.startswith(BUILTIN_PREFIX):
        from xstilts.models.builtin import builtin_model_dir

        return "builtin", str(builtin_model_dir(spec[len(BUILTIN_PREFIX) :]))
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir() or not (path / "config.json").is_file():
            raise ModelError(
                f"{path}: not a model directory (no config.json); expected a Hugging Face "
                "model directory, a hub id, or builtin:NAME (see `xstilts models list`)"
            )
        return "local", str(path)
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1 or not spec.strip():
        raise ModelError(f"{spec}: no such model directory")
    return "hub", spec


def weight_files(directory: Path) -> list[Path]:
    """The weight files of a model directory (safetensors preferred, as transformers does)."""
    for pattern in _WEIGHT_PATTERNS:
        files = sorted(directory.glob(pattern))
        if files:
            return files
    return []


def weights_hash(source: str, path: str) -> str | None:
    """Content hash of the weights; None when the files cannot be located (then said so)."""
    from xstilts.hashing import files_sha256

    directory: Path | None = Path(path) if source != "hub" else None
    if directory is None:
        try:
            from huggingface_hub import snapshot_download

            directory = Path(snapshot_download(path, local_files_only=True))
        except Exception:
            return None
    files = weight_files(directory)
    return files_sha256(files) if files else None


def load_model(
    spec: str, *, trust_remote_code: bool = False, device: str | None = None
) -> LoadedModel:
    """Load tokenizer and encoder for ``spec``; one-line :class:`ModelError` on failure."""
    import transformers

    source, path = resolve_model_path(spec)
    transformers.logging.set_verbosity_error()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            path, trust_remote_code=trust_remote_code
        )
        model = transformers.AutoModel.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = " (the hub is not reachable: use a local directory or builtin:NAME)" if (
            source == "hub"
        ) else ""
        raise ModelError(f"cannot load model {spec!r}: {first}{hint}") from None
    if getattr(model.config, "is_encoder_decoder", False) and hasattr(model, "get_encoder"):
        model = model.get_encoder()
    if device:
        model = model.to(device)
    model.eval()
    return LoadedModel(spec, source, path, model, tokenizer, weights_hash(source, path))
