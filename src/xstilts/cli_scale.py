"""``xstilts embed`` and ``xstilts mine``: streaming embeddings and bitext mining at scale.

``embed`` is a thin wrapper over :func:`xstilts.embed.embed_file`. ``mine`` glues the pieces
(:func:`mine_files`): stream-embed each side's distinct sentences, margin-mine them with an
index from :mod:`xstilts.index` (the margin code is :func:`xstilts.search.mine`'s), expand
unique-sentence pairs back to every line they stand for (as the BUCC evaluator does), choose a
threshold (given, tuned on a BUCC-style gold sample with the same model and settings, or none)
and write ``score<TAB>src<TAB>tgt`` atomically, best first. Both run under ``accelerate
launch`` as several processes (``mine`` searches in rank 0 only).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer

from xstilts import defaults
from xstilts.embed import EmbedResult, EmbedSettings, ProcessGroup, embed_file, process_group
from xstilts.errors import DataError, UsageError
from xstilts.index import IndexSpec, mine_indexed
from xstilts.io import atomic_path, ensure_writable, write_json_atomic
from xstilts.search import MARGINS, MinedPairs

if TYPE_CHECKING:
    from xstilts.data.bucc import BuccSplit

# --------------------------------------------------------------------------------------------
# Library part (tests call these directly)


def line_groups(line_rows: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR form of "the lines of each row": ``(lines sorted by row, first slot, count)``."""
    order = np.argsort(line_rows, kind="stable")  # ascending lines within a row
    counts = np.bincount(line_rows, minlength=n_rows)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return order, starts, counts


def expand_pairs(
    pairs: MinedPairs, src_rows: np.ndarray, tgt_rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique-sentence pairs -> every (source line, target line) pair they stand for.

    ``src_rows``/``tgt_rows`` map each input line to its unique row. Within a pair, source
    lines then target lines ascend, the order of :func:`xstilts.evaluate.bucc.bucc_candidates`.
    """
    s_order, s_start, s_count = line_groups(src_rows, int(src_rows.max()) + 1)
    t_order, t_start, t_count = line_groups(tgt_rows, int(tgt_rows.max()) + 1)
    u, v = pairs.src.astype(np.int64), pairs.tgt.astype(np.int64)
    cu, cv = s_count[u], t_count[v]
    reps = cu * cv
    which = np.repeat(np.arange(len(u)), reps)
    within = np.arange(int(reps.sum())) - np.repeat(np.cumsum(reps) - reps, reps)
    a, b = within // cv[which], within % cv[which]
    src = s_order[s_start[u[which]] + a]
    tgt = t_order[t_start[v[which]] + b]
    return src, tgt, pairs.score[which]


@dataclass
class MineOptions:
    """Mining settings besides embedding (see ``xstilts mine --help``)."""

    layer: int
    k: int = 4
    margin: str = "ratio"
    index: IndexSpec = field(default_factory=IndexSpec)
    threshold: float | None = None
    gold_sample: Path | None = None
    recall_sample: int = 1000
    texts: bool | None = None  # None: add texts when an input has no ids

    def __post_init__(self) -> None:
        if self.margin not in MARGINS:
            raise UsageError(f"--margin {self.margin!r}: choose one of {', '.join(MARGINS)}")
        if self.k < 1:
            raise UsageError("--k must be >= 1")
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise UsageError(f"--threshold {self.threshold}: must be a finite number")
        if self.threshold is not None and self.gold_sample is not None:
            raise UsageError("--threshold and --gold-sample exclude each other")


def find_gold_sample(directory: Path) -> tuple[Path, str, str]:
    """The BUCC-style split with gold under ``directory``: ``(data dir, lang, split)``.

    Accepts the pair's own directory or a data root (``bucc2018/`` or ``bucc2018/<l>-en/``
    below it), with XTREME's or the shared task's file names (``zh-en.dev.gold``,
    ``zh-en.sample.gold``).
    """
    from xstilts.data.bucc import tuning_and_test_splits

    if not directory.is_dir():
        raise DataError(f"--gold-sample {directory}: not a directory")
    langs = set()
    for d in (directory, directory / "bucc2018", *directory.glob("bucc2018/*-en")):
        for p in d.glob("*-en.*.gold"):
            if m := re.fullmatch(r"(\w+)-en\.(\w+)\.gold", p.name):
                langs.add(m.group(1))
    if not langs:
        raise DataError(
            f"--gold-sample {directory}: no '<l>-en.<split>.gold' file (with its '.<l>' and "
            "'.en' files, lines 'id<TAB>sentence')"
        )
    if len(langs) > 1:
        raise UsageError(
            f"--gold-sample {directory}: gold files for several pairs ({', '.join(sorted(langs))}"
            "); point it at one pair's directory"
        )
    (lang,) = langs
    split, _ = tuning_and_test_splits(directory, lang)
    return directory, lang, split


def _embed_gold_sample(
    opts: MineOptions, embed: Any, work_dir: Path
) -> tuple[BuccSplit, EmbedResult, EmbedResult]:
    """Load and embed (every process takes part) the gold sample's two sides."""
    from xstilts.data.bucc import load_bucc_split

    assert opts.gold_sample is not None
    data_dir, lang, split_name = find_gold_sample(opts.gold_sample)
    split = load_bucc_split(data_dir, lang, split_name)
    src = embed(split.x_path, work_dir / "gold-src", "id-text")
    tgt = embed(split.en_path, work_dir / "gold-tgt", "id-text")
    return split, src, tgt


def _mine_lines(
    opts: MineOptions, src: EmbedResult, tgt: EmbedResult
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], list[dict[str, Any]]]:
    """Mine ``opts.layer`` of two embedded files: ``(src lines, tgt lines, scores)`` of the
    one-to-one pairs (duplicate lines expanded) and the search reports."""
    pairs, reports = mine_indexed(
        src.array(opts.layer),
        tgt.array(opts.layer),
        opts.index,
        k=opts.k,
        margin=opts.margin,
        recall_sample=opts.recall_sample,
    )
    return expand_pairs(pairs, src.line_rows, tgt.line_rows), reports


def _threshold_from_gold(
    opts: MineOptions, split: BuccSplit, src: EmbedResult, tgt: EmbedResult
) -> tuple[float, dict[str, Any]]:
    """Mine the gold sample exactly as the corpus and pick the F1-maximising threshold."""
    from xstilts.metrics import optimize_threshold

    assert split.gold is not None
    (s_lines, t_lines, scores), reports = _mine_lines(opts, src, tgt)
    gold = set(split.gold)
    ids = zip(src.index.read_ids(s_lines), tgt.index.read_ids(t_lines), strict=True)
    correct = np.fromiter((p in gold for p in ids), dtype=bool, count=len(scores))
    res = optimize_threshold(scores, correct, len(gold))
    info = {
        "source": "gold-sample",
        "files": [str(split.x_path), str(split.en_path), str(split.gold_path)],
        "gold_pairs": len(gold),
        # tuned and scored on the same sample: the optimum, not a test score
        "sample_precision": res.precision,
        "sample_recall": res.recall,
        "sample_f1": res.f1,
        "search": reports,
    }
    return res.threshold, info


def write_pairs(
    out: Path,
    src: EmbedResult,
    tgt: EmbedResult,
    lines: tuple[np.ndarray, np.ndarray, np.ndarray],
    texts: bool,
    block: int = 100_000,
) -> None:
    """``score<TAB>src<TAB>tgt[<TAB>src text<TAB>tgt text]`` lines, best first, atomically.

    ``src``/``tgt`` are ids for ``id<TAB>text`` inputs, else 1-based line numbers.
    """
    s_lines, t_lines, scores = lines
    with atomic_path(out) as tmp, tmp.open("w", encoding="utf-8", newline="\n") as f:
        for start in range(0, len(scores), block):
            sl, tl = s_lines[start : start + block], t_lines[start : start + block]
            cols = [
                [f"{s:.6f}" for s in scores[start : start + block].tolist()],
                src.index.read_ids(sl),
                tgt.index.read_ids(tl),
            ]
            if texts:
                cols += [src.index.read_texts(sl)[0], tgt.index.read_texts(tl)[0]]
            f.writelines("\t".join(row) + "\n" for row in zip(*cols, strict=True))


def mine_files(
    src_file: Path,
    tgt_file: Path,
    out: Path,
    *,
    encoder: Any,
    model: dict[str, Any],
    settings: EmbedSettings,
    opts: MineOptions,
    work_dir: Path | None = None,
    group: ProcessGroup | None = None,
    progress: Any = None,
) -> dict[str, Any] | None:
    """Mine ``src_file`` x ``tgt_file`` into ``out``; returns the report (None off rank 0).

    Embeddings of distinct sentences go to ``work_dir`` (default ``<out>.work``), one
    resumable directory per side (and per gold-sample side), so a rerun with another threshold
    or index reuses them.
    """
    t0 = time.perf_counter()
    group = group or process_group()
    work_dir = work_dir or out.with_name(out.name + ".work")
    settings = replace(settings, unique=True, layers=[opts.layer])

    def embed(path: Path, directory: Path, fmt: str | None = None) -> EmbedResult:
        s = settings if fmt is None else replace(settings, fmt=fmt)
        return embed_file(path, encoder, directory, s, model=model, group=group, progress=progress)

    # the small gold sample first: a problem with it shows before hours of corpus encoding
    gold = _embed_gold_sample(opts, embed, work_dir) if opts.gold_sample is not None else None
    src = embed(src_file, work_dir / "src")
    tgt = embed(tgt_file, work_dir / "tgt")
    threshold, threshold_info = opts.threshold, {"source": "none (all one-to-one pairs)"}
    if opts.threshold is not None:
        threshold_info = {"source": "--threshold"}
    t_embed = time.perf_counter() - t0
    if group.process_index != 0:
        return None  # searching is rank 0's (a faiss GPU index uses every GPU already)
    if gold is not None:
        threshold, threshold_info = _threshold_from_gold(opts, *gold)
    t1 = time.perf_counter()
    (s_lines, t_lines, scores), reports = _mine_lines(opts, src, tgt)
    n_candidates = len(scores)
    if threshold is not None:
        keep = scores >= threshold
        s_lines, t_lines, scores = s_lines[keep], t_lines[keep], scores[keep]
    texts = opts.texts
    if texts is None:
        texts = src.index.fmt != "id-text" or tgt.index.fmt != "id-text"
    write_pairs(out, src, tgt, (s_lines, t_lines, scores), texts)
    report = {
        "src": {"file": str(src_file), "lines": len(src.index), "unique": len(src.row_lines)},
        "tgt": {"file": str(tgt_file), "lines": len(tgt.index), "unique": len(tgt.row_lines)},
        "model": model,
        "layer": opts.layer,
        "k": opts.k,
        "margin": opts.margin,
        "index": opts.index.kind,
        "search": reports,
        "threshold": threshold,
        "threshold_info": threshold_info,
        "candidate_pairs": n_candidates,
        "pairs_written": len(scores),
        "output": str(out),
        "columns": ["score", "src", "tgt", *(["src_text", "tgt_text"] if texts else [])],
        "work_dir": str(work_dir),
        "timings": {
            "embed_s": round(t_embed, 3),
            "mine_s": round(time.perf_counter() - t1, 3),
            "total_s": round(time.perf_counter() - t0, 3),
        },
    }
    write_json_atomic(out.with_name(out.name + ".json"), report)
    return report


# --------------------------------------------------------------------------------------------
# Command line

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Hub id, local dir or builtin:NAME.")]
PoolingOpt = Annotated[str, typer.Option(help="mean, mean-nospecial or cls.")]
PrefixOpt = Annotated[str, typer.Option(help="Text prefix, e.g. 'query: ' for E5.")]
DtypeOpt = Annotated[str, typer.Option(help="Compute dtype: auto, fp32, bf16 or fp16.")]
StoreOpt = Annotated[str, typer.Option(help="Stored dtype: float32 or float16 (half the disk).")]
BatchOpt = Annotated[int, typer.Option(help="The most sentences per forward pass.")]
TokensOpt = Annotated[
    int, typer.Option(help="The most padded tokens per forward pass (0: no bound).")
]
MaxLenOpt = Annotated[int, typer.Option(help="Maximum tokens per sentence (longer: truncated).")]
ChunkOpt = Annotated[int, typer.Option(help="Sentences per resumable chunk (and per process).")]
FormatOpt = Annotated[
    str, typer.Option("--format", help="auto, text (a sentence a line) or id-text (id<TAB>text).")
]
DeviceOpt = Annotated[
    str | None, typer.Option(help="cpu, cuda, cuda:1 (default: the process's accelerator).")
]
RemoteOpt = Annotated[
    bool, typer.Option(help="Allow model repositories to run their own Python code.")
]


def _encoder(model: str, device: str | None, dtype: str, max_length: int, trust: bool, group):
    """A lazy encoder on this process's device and its identity for manifests."""
    from xstilts.embed import process_device
    from xstilts.encode import LazyEncoder
    from xstilts.hardware import configure_threads
    from xstilts.models import resolve_model

    configure_threads()
    ref = resolve_model(model, trust_remote_code=trust)
    encoder = LazyEncoder(
        ref, device=device or process_device(group), dtype=dtype, max_length=max_length
    )
    key = ref.content_key
    if key is None:  # a hub model not downloaded yet: load it, then hash the files
        _ = encoder.encoder
        key = ref.content_key or f"unhashed:{model}"
    return encoder, {"spec": model, "key": key}


def embed_command(
    file: Annotated[Path, typer.Argument(help="Text file: a sentence a line, or id<TAB>text.")],
    model: ModelOpt,
    out: Annotated[Path, typer.Option(help="Output directory (manifest + one .npy per layer).")],
    layers: Annotated[
        str, typer.Option(help="Hidden-state index(es) (0 = embeddings), 'last' or 'all'.")
    ] = "last",
    pooling: PoolingOpt = "mean",
    prefix: PrefixOpt = "",
    dtype: DtypeOpt = "auto",
    store_dtype: StoreOpt = "float32",
    batch_size: BatchOpt = defaults.BATCH_SIZE,
    max_tokens_per_batch: TokensOpt = defaults.MAX_TOKENS_PER_BATCH,
    max_length: MaxLenOpt = 512,
    chunk_size: ChunkOpt = 10_000,
    fmt: FormatOpt = "auto",
    unique: Annotated[
        bool, typer.Option(help="Embed each distinct text once (line_rows.npy maps lines).")
    ] = False,
    device: DeviceOpt = None,
    trust_remote_code: RemoteOpt = False,
) -> None:
    """Embed a text file of any size chunk by chunk into memory-mappable .npy files.

    Interrupted runs resume from the last finished chunk when rerun with the same options;
    `accelerate launch -m xstilts embed ...` splits the chunks across processes/GPUs.
    """
    from xstilts.cli import RichProgress, err, make_progress, parse_layers
    from xstilts.cli import out as console

    ensure_writable(out, directory=True)
    group = process_group()
    encoder, ident = _encoder(model, device, dtype, max_length, trust_remote_code, group)
    settings = EmbedSettings(
        layers=parse_layers(layers, encoder.num_hidden_states),
        pooling=pooling,
        prefix=prefix,
        store_dtype=store_dtype,
        chunk_size=chunk_size,
        unique=unique,
        fmt=fmt,
        batch_size=batch_size,
        max_tokens_per_batch=max_tokens_per_batch,
    )
    try:
        with make_progress() as progress:
            res = embed_file(
                file,
                encoder,
                out,
                settings,
                model=ident,
                group=group,
                progress=RichProgress(progress),
            )
    except KeyboardInterrupt:
        err.print(f"interrupted: finished chunks in {out} are kept; rerun the same command")
        raise typer.Exit(130) from None
    if group.process_index != 0:
        return
    for note in res.notes:
        err.print(note)
    m = res.manifest
    console.print(
        f"{m['rows']} rows x {len(m['settings']['layers'])} layer(s) x {m['dim']} "
        f"({m['settings']['store_dtype']}) in {out}; {res.chunks_encoded} of {m['n_chunks']} "
        f"chunks encoded now by this process ({group.num_processes} process(es)), "
        f"{res.seconds:.1f}s"
    )


def mine_command(
    src_file: Annotated[
        Path, typer.Argument(help="Source side: a sentence a line or id<TAB>text.")
    ],
    tgt_file: Annotated[Path, typer.Argument(help="Target side, same formats.")],
    model: ModelOpt,
    out: Annotated[Path, typer.Option(help="Pairs TSV: score, src, tgt (+ texts).")],
    layer: Annotated[str, typer.Option(help="Hidden-state index or 'last'.")] = "last",
    margin: Annotated[str, typer.Option(help="ratio, distance or absolute.")] = "ratio",
    k: Annotated[int, typer.Option(help="Neighbours for the margin.")] = 4,
    threshold: Annotated[
        float | None, typer.Option(help="Keep pairs scoring >= this (default: all).")
    ] = None,
    gold_sample: Annotated[
        Path | None,
        typer.Option(help="BUCC-style dir with <l>-en.<split>.{<l>,en,gold}: tune the threshold."),
    ] = None,
    index: Annotated[str, typer.Option(help="exact, ivf, ivfpq or hnsw.")] = "exact",
    nprobe: Annotated[
        int | None, typer.Option(help="IVF lists probed / HNSW efSearch (default: tuned).")
    ] = None,
    nlist: Annotated[int | None, typer.Option(help="IVF lists (default ~4*sqrt(n)).")] = None,
    target_recall: Annotated[
        float, typer.Option(help="Recall@k the tuning aims for (approximate indexes).")
    ] = 0.95,
    recall_sample: Annotated[
        int, typer.Option(help="Queries checked against exact search (0: none).")
    ] = 1000,
    gpu: Annotated[
        bool | None, typer.Option("--gpu/--no-gpu", help="faiss on GPU (default: if present).")
    ] = None,
    texts: Annotated[
        bool | None,
        typer.Option("--texts/--no-texts", help="Add both texts (default: when no ids)."),
    ] = None,
    work_dir: Annotated[
        Path | None, typer.Option(help="Embeddings of both sides (default: <out>.work).")
    ] = None,
    pooling: PoolingOpt = "mean",
    prefix: PrefixOpt = "",
    dtype: DtypeOpt = "auto",
    store_dtype: StoreOpt = "float32",
    batch_size: BatchOpt = defaults.BATCH_SIZE,
    max_tokens_per_batch: TokensOpt = defaults.MAX_TOKENS_PER_BATCH,
    max_length: MaxLenOpt = 512,
    chunk_size: ChunkOpt = 10_000,
    fmt: FormatOpt = "auto",
    device: DeviceOpt = None,
    trust_remote_code: RemoteOpt = False,
) -> None:
    """Mine one-to-one parallel sentence pairs from two text files (margin method, LASER)."""
    from xstilts.cli import RichProgress, err, make_progress, parse_layers
    from xstilts.cli import out as console

    ensure_writable(out)
    ensure_writable(work_dir or out.with_name(out.name + ".work"), directory=True)
    group = process_group()
    encoder, ident = _encoder(model, device, dtype, max_length, trust_remote_code, group)
    parsed = parse_layers(layer, encoder.num_hidden_states)
    if parsed is None or len(parsed) != 1:
        raise UsageError(f"--layer {layer!r}: mining uses one hidden state (an index or 'last')")
    opts = MineOptions(
        layer=encoder.layer_indices(parsed)[0],
        k=k,
        margin=margin,
        index=IndexSpec(kind=index, knob=nprobe, nlist=nlist, target_recall=target_recall, gpu=gpu),
        threshold=threshold,
        gold_sample=gold_sample,
        recall_sample=recall_sample,
        texts=texts,
    )
    settings = EmbedSettings(
        pooling=pooling,
        prefix=prefix,
        store_dtype=store_dtype,
        chunk_size=chunk_size,
        fmt=fmt,
        batch_size=batch_size,
        max_tokens_per_batch=max_tokens_per_batch,
    )
    try:
        with make_progress() as progress:
            report = mine_files(
                src_file,
                tgt_file,
                out,
                encoder=encoder,
                model=ident,
                settings=settings,
                opts=opts,
                work_dir=work_dir,
                group=group,
                progress=RichProgress(progress),
            )
    except KeyboardInterrupt:
        err.print("interrupted: finished embedding chunks are kept; rerun the same command")
        raise typer.Exit(130) from None
    if report is None:
        return
    for s in report["search"]:
        recall = next((f", {key} {v:.3f}" for key, v in s.items() if key.startswith("recall@")), "")
        if "fallback" in s:
            recall = f" (tuned {s['fallback']['from']['kind']} reached only {s['tuning_recall']})"
        err.print(f"search {s['direction']}: {s['kind']}{recall}, {s['total_s']:.1f}s")
    t = report["threshold"]
    info = report["threshold_info"]
    if info["source"] == "gold-sample":
        err.print(
            f"threshold {t:.4f} tuned on the gold sample (sample F1 {100 * info['sample_f1']:.1f},"
            " tuned and scored on the same sample)"
        )
    console.print(
        f"{report['pairs_written']} pairs written to {out} "
        f"(of {report['candidate_pairs']} one-to-one candidates"
        + (f", threshold {t:.4f}" if t is not None else "")
        + f"); report: {out.name}.json"
    )


def register(app: typer.Typer) -> None:
    """Add ``embed`` and ``mine`` to the main app."""
    app.command("embed")(embed_command)
    app.command("mine")(mine_command)
