"""The experiment spec: one YAML file describing the whole comparison, validated with pydantic.

Example (see ``configs/`` for complete ones)::

    name: english-vs-multilingual
    models: [builtin:multilingual-e5-small]
    seeds: [0, 1]
    training: {epochs: 1, max_examples: 2000, batch_size: 16}   # defaults for every setting
    settings:
      - {name: baseline, tasks: []}                 # no intermediate training
      - {name: mnli, tasks: [mnli]}                 # English
      - {name: xnli, tasks: [xnli], langs: [de, fr, ru, zh]}   # multilingual
      - {name: english-all, tasks: [english-all]}   # multi-task
      - {name: mnli+mlm, tasks: [mnli], training: {mlm_aux: true}}
    evaluation:                                     # the options of `xstilts evaluate`
      layers: [8, 12]                               # or "all", or "last" (the last one)
      prefix: "query: "
      tasks:
        - {task: tatoeba, langs: xtreme}
        - {task: bucc2018, langs: zh}

Errors name the offending key (``settings[2].training.lr: ...``) and the file.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from xstilts.errors import UsageError, XstiltsError
from xstilts.layers import resolve_layers
from xstilts.models import resolve_model
from xstilts.tasks import EvalSettings, TaskRequest, check_request
from xstilts.train.config import TrainConfig
from xstilts.train.data import training_tasks

Group = Literal["baseline", "english", "multilingual", "mixed"]
# TrainConfig fields a spec may set in `training:` (the rest come from the grid).
_GRID_FIELDS = {"model", "tasks", "langs", "out", "data_dir", "seed", "resume"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Setting(_Strict):
    """One intermediate-training setting (a row of the comparison)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
    tasks: list[str] = Field(default_factory=list, description="Empty: the baseline.")
    langs: list[str] | None = None
    # decided by the training data (xstilts.train.record); a group given here must agree, or
    # say group_override: true (shown as an override in the report)
    group: Group | None = None
    group_override: bool = False
    training: dict[str, Any] = Field(default_factory=dict)

    @field_validator("tasks", "langs", mode="before")
    @classmethod
    def _split(cls, v):
        if isinstance(v, str):
            return [] if v.strip().lower() in ("", "none") else [s.strip() for s in v.split(",")]
        return v


class Evaluation(EvalSettings):
    """How every cell is evaluated: the evaluation settings (the same model as ``xstilts
    evaluate``'s options), the retrieval tasks, and the layer the report headlines."""

    tasks: list[TaskRequest] = Field(min_length=1)
    # "best": chosen per model on the selection split, every number then from the test split
    report_layer: int | Literal["last", "best"] = "last"

    def settings(self) -> EvalSettings:
        """The evaluation settings alone (what ``xstilts evaluate`` would be given)."""
        return EvalSettings(**self.model_dump(exclude={"tasks", "report_layer"}))


class ReportOptions(_Strict):
    """Statistics of the report (docs/report.md)."""

    baseline: str = "baseline"
    bootstrap: int = Field(1000, ge=100)
    confidence: float = Field(0.95, gt=0.5, lt=1)  # alpha = 1 - confidence
    seed: int = 0
    # share of each language's items in the selection split (every "best" is picked there and
    # reported on the rest); LAReQA/Mewsli-X split by article/document
    selection_fraction: float = Field(1 / 3, gt=0, lt=1)
    # two settings' training budgets (examples or tokens) differing by more than this are noted
    budget_tolerance: float = Field(0.10, ge=0)


class ExperimentSpec(_Strict):
    """A whole experiment."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    models: list[str] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    output: Path | None = None  # default: runs/<name> next to the spec
    data_dir: Path | None = None
    training: dict[str, Any] = Field(default_factory=dict)
    settings: list[Setting] = Field(min_length=1)
    evaluation: Evaluation
    report: ReportOptions = Field(default_factory=ReportOptions)

    @model_validator(mode="after")
    def _check(self) -> ExperimentSpec:
        names = [s.name for s in self.settings]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"setting names must be unique: {', '.join(dupes)}")
        if self.report.baseline not in names:
            raise ValueError(f"report.baseline {self.report.baseline!r} is not a setting name")
        for where, block in [("training", self.training)] + [
            (f"settings[{i}].training", s.training) for i, s in enumerate(self.settings)
        ]:
            bad = sorted(set(block) & _GRID_FIELDS)
            if bad:
                raise ValueError(f"{where}: {', '.join(bad)} come from the grid, not from training")
        return self

    def train_config(self, setting: Setting, model: str, seed: int, out: Path) -> TrainConfig:
        """The training configuration of one cell (spec defaults < setting overrides). A
        setting that trains contrastively makes its sentence vectors as ``evaluation`` does
        (pooling, prefixes, the report layer; ``best``: the last), unless its training block
        says otherwise."""
        block = {**self.training, **setting.training}
        cfg = TrainConfig(
            **block,
            model=model,
            tasks=setting.tasks,
            langs=setting.langs,
            seed=seed,
            out=out,
            data_dir=self.data_dir,
        )
        if not any(t.kind == "contrastive" for t in training_tasks(cfg)):
            return cfg
        ev = self.evaluation
        layer = ev.report_layer if isinstance(ev.report_layer, int) else "last"
        same = {
            "pooling": ev.pooling,
            "layer": layer,
            "prefix": ev.prefix,
            "query_prefix": ev.query_prefix,
            "doc_prefix": ev.doc_prefix,
        }
        return cfg.model_copy(update={k: v for k, v in same.items() if k not in block})


def _location(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_spec(path: str | Path) -> ExperimentSpec:
    """Read and validate a spec; every problem is one line naming the file and the key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, expected a spec YAML file") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte offset {exc.start})") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{path}{where}: invalid YAML ({problem})") from None
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: expected a mapping of spec keys at the top level")
    try:
        spec = ExperimentSpec.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = _location(err["loc"]) or "spec"
        msg = re.sub(r"^Value error, ", "", err["msg"])
        raise UsageError(f"{path}: {key}: {msg}") from None
    if spec.output is None:
        spec.output = path.parent / "runs" / spec.name
    elif not spec.output.is_absolute():
        spec.output = path.parent / spec.output
    if spec.data_dir is not None and not spec.data_dir.is_absolute():
        spec.data_dir = path.parent / spec.data_dir
    # validate every retrieval task and every cell's training block now, not hours into the run
    for i, task in enumerate(spec.evaluation.tasks):
        try:
            check_request(task)
        except XstiltsError as exc:
            raise UsageError(f"{path}: evaluation.tasks[{i}]: {exc}") from None
    ev = spec.evaluation
    listed = isinstance(ev.layers, list) and all(i >= 0 for i in ev.layers)
    if listed and ev.report_layer not in ("last", "best", *ev.layers):
        raise UsageError(
            f"{path}: evaluation.report_layer {ev.report_layer} is not among "
            f"evaluation.layers {ev.layers}"
        )
    for i, setting in enumerate(spec.settings):
        if setting.tasks:
            try:
                spec.train_config(setting, spec.models[0], spec.seeds[0], spec.output)
            except ValidationError as exc:
                err = exc.errors()[0]
                raise UsageError(
                    f"{path}: settings[{i}].training.{_location(err['loc'])}: {err['msg']}"
                ) from None
            except XstiltsError as exc:  # an unknown task, an objective naming no task
                raise UsageError(f"{path}: settings[{i}] ({setting.name}): {exc}") from None
    return spec


def check_spec_models(
    spec: ExperimentSpec, *, trust_remote_code: bool = False
) -> dict[str, list[int]]:
    """Checks that need the models (their configs only, no weights), before any work; returns
    the hidden-state indices each model will be evaluated at.

    Every evaluated layer and the report layer must exist in every model; remote code must be
    allowed on the command line as well as in the spec (a shared spec file alone must not be
    able to run a model repository's code).
    """
    wants_remote = [
        s.name
        for s in spec.settings
        if s.tasks and {**spec.training, **s.training}.get("trust_remote_code")
    ]
    if wants_remote and not trust_remote_code:
        raise UsageError(
            f"spec {spec.name}: settings {', '.join(wants_remote)} set trust_remote_code; "
            "running a model repository's own code also needs --trust-remote-code on the "
            "command line"
        )
    ev = spec.evaluation
    wanted = list(ev.layers) if isinstance(ev.layers, list) else []
    if isinstance(ev.report_layer, int):
        wanted.append(ev.report_layer)
    layers: dict[str, list[int]] = {}
    for model in spec.models:
        n = resolve_model(model, trust_remote_code=trust_remote_code).num_hidden_states
        bad = [i for i in wanted if not -n <= i < n]
        if bad:
            raise UsageError(
                f"spec {spec.name}: layer {bad[0]} does not exist in {model} "
                f"(hidden states 0..{n - 1})"
            )
        evaluated = resolve_layers(ev.layers, n)
        if isinstance(ev.report_layer, int) and ev.report_layer % n not in evaluated:
            raise UsageError(
                f"spec {spec.name}: evaluation.report_layer {ev.report_layer} is not among the "
                f"evaluated layers of {model} ({', '.join(map(str, evaluated))})"
            )
        layers[model] = evaluated
    return layers


def slug(text: str) -> str:
    """A file-name-safe version of a model spec."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:80]


def config_hash(doc: dict[str, Any]) -> str:
    """Stable hash of a JSON-able configuration."""
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()
