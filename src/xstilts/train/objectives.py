"""Auxiliary objectives: losses added, weighted, to every micro-batch's task loss.

The task loss comes from the task's head (:class:`~xstilts.train.heads.MultiTaskModel`). An
auxiliary objective brings its own data and computes one more loss on the shared encoder at
every micro-batch; the training step adds ``weight * loss`` to the task loss and logs the
unweighted value as ``{name}_loss``. The masked-LM loss (``--mlm-aux``, Phang et al.'s
"continued multilingual MLM") is the one built in: a new objective is a class with ``name``,
``weight`` and ``loss`` plus a line in :func:`build_objectives`.

Each objective's batches are a pure function of the seed, the step and the micro-batch index,
so a resumed run draws the same ones as an uninterrupted run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from xstilts.errors import XstiltsError
from xstilts.intermediate import get_intermediate_task
from xstilts.io import read_lines
from xstilts.train.config import TrainConfig
from xstilts.train.features import collate, to_device
from xstilts.train.heads import MultiTaskModel, mask_tokens
from xstilts.train.record import UNKNOWN


class Objective(Protocol):
    """A loss computed at every micro-batch besides the task's own."""

    name: str  # logged as f"{name}_loss"
    weight: float

    def loss(
        self, model: MultiTaskModel, step: int, micro: int, device: torch.device
    ) -> torch.Tensor:
        """The unweighted loss of micro-batch ``micro`` of optimizer step ``step``."""
        ...


_LANG_PREFIX = re.compile(r"^([a-z]{2,3}):(.+)$")


def mlm_source(src: str) -> tuple[str, Path]:
    """``LANG:PATH`` -> (LANG, PATH); a bare path has an unknown language (``und``)."""
    match = _LANG_PREFIX.match(src)
    if match and not Path(src).exists():
        return match.group(1), Path(match.group(2))
    return UNKNOWN, Path(src)


def mlm_texts(sources: list[str], data_dir: Path) -> list[tuple[str, str]]:
    """``(text, language)`` for the auxiliary MLM loss: ``xnli`` (its 15 languages, labelled by
    XNLI) or text files, one sentence per line (``LANG:PATH`` says which language; the leakage
    guard keeps evaluation text out)."""
    texts: list[tuple[str, str]] = []
    for src in sources:
        if src == "xnli":
            task = get_intermediate_task("xnli")
            split = task.load(data_dir, task.dev_split, None)
            for ex in split.examples:
                texts.append((ex.text_a, ex.lang))
                if ex.text_b:
                    texts.append((ex.text_b, ex.lang))
        else:
            lang, path = mlm_source(src)
            texts.extend((t, lang) for t in read_lines(path) if t.strip())
    return texts


class MLMStream:
    """Masked-LM batches from multilingual text, deterministic per step (for resume)."""

    def __init__(self, texts: list[tuple[str, str]], tokenizer: Any, cfg: TrainConfig) -> None:
        enc = tokenizer([t for t, _ in texts], truncation=True, max_length=cfg.max_length)
        usable = [(x, lang) for x, (_, lang) in zip(enc["input_ids"], texts, strict=True)]
        usable = [(x, lang) for x, lang in usable if len(x) > 2]
        self.ids = [x for x, _ in usable]
        self.langs = [lang for _, lang in usable]
        if not self.ids:
            raise XstiltsError("--mlm-aux: no usable text in the MLM data")
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.special = torch.tensor(sorted(set(tokenizer.all_special_ids)))
        if tokenizer.mask_token_id is None:
            raise XstiltsError("--mlm-aux: the tokenizer has no mask token")

    def _generator(self, step: int, micro: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + step * 131 + micro)

    def indices(self, step: int, micro: int) -> list[int]:
        """The texts one micro-batch draws (recomputable: the training record counts them)."""
        gen = self._generator(step, micro)
        return torch.randint(len(self.ids), (self.cfg.batch_size,), generator=gen).tolist()

    def batch(self, step: int, micro: int) -> dict[str, torch.Tensor]:
        """The masked batch of one micro-batch (its own generator: no global RNG is used)."""
        gen = self._generator(step, micro)
        idx = torch.randint(len(self.ids), (self.cfg.batch_size,), generator=gen).tolist()
        feats = [{"input_ids": self.ids[i], "attention_mask": [1] * len(self.ids[i])} for i in idx]
        batch = collate(feats, self.tokenizer.pad_token_id)
        special = torch.isin(batch["input_ids"], self.special) | (batch["attention_mask"] == 0)
        ids, labels = mask_tokens(
            batch["input_ids"],
            special,
            mask_id=self.tokenizer.mask_token_id,
            vocab_size=len(self.tokenizer),
            generator=gen,
            probability=self.cfg.mlm_probability,
        )
        return {"input_ids": ids, "attention_mask": batch["attention_mask"], "labels": labels}


@dataclass
class MLMObjective:
    """The auxiliary masked-LM loss on the model's MLM head."""

    stream: MLMStream
    weight: float
    name: str = "mlm"

    def loss(
        self, model: MultiTaskModel, step: int, micro: int, device: torch.device
    ) -> torch.Tensor:
        """Masked-LM loss of this micro-batch's masked text."""
        return model.mlm_loss(to_device(self.stream.batch(step, micro), device))


def build_objectives(
    cfg: TrainConfig, tokenizer: Any, data_dir: Path, model: MultiTaskModel
) -> tuple[Objective, ...]:
    """The auxiliary objectives the configuration asks for; adds the heads they need."""
    objectives: list[Objective] = []
    if cfg.mlm_aux:
        stream = MLMStream(mlm_texts(cfg.mlm_data, data_dir), tokenizer, cfg)
        model.enable_mlm()
        objectives.append(MLMObjective(stream, cfg.mlm_weight))
    return tuple(objectives)
