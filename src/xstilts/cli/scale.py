"""``xstilts embed`` and ``xstilts mine``: streaming embeddings and bitext mining at scale."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import torch
import typer

from xstilts.cli.console import RichProgress, err, make_progress, out
from xstilts.cli.options import model_options
from xstilts.embedding.encoder import LazyEncoder
from xstilts.embedding.settings import EmbedSettings
from xstilts.embedding.stream import ProcessGroup, embed_file, process_device, process_group
from xstilts.errors import UsageError
from xstilts.hardware import configure_threads, resolve_dtype
from xstilts.io import ensure_writable
from xstilts.layers import parse_layers
from xstilts.models import resolve_model
from xstilts.retrieval.ann import IndexSpec
from xstilts.scale import MineOptions, mine_files

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Hub id, local dir or builtin:NAME.")]
DeviceOpt = Annotated[
    str | None, typer.Option(help="cpu, cuda, cuda:1 (default: the process's accelerator).")
]
RemoteOpt = Annotated[
    bool, typer.Option(help="Allow model repositories to run their own Python code.")
]
_NAMES = {"fmt": "--format"}


def _encoder(
    model: str, device: str | None, settings: EmbedSettings, trust: bool, group: ProcessGroup
) -> tuple[LazyEncoder, dict[str, Any]]:
    """A lazy encoder on this process's device and its identity for store manifests."""
    configure_threads()
    ref = resolve_model(model, trust_remote_code=trust)
    encoder = LazyEncoder(
        ref,
        device=device or process_device(group),
        dtype=settings.dtype,
        max_length=settings.max_length,
    )
    key = ref.content_key
    if key is None:  # a hub model not downloaded yet: load it, then hash the files
        _ = encoder.encoder
        key = ref.content_key or f"unhashed:{model}"
    return encoder, {"spec": model, "key": key}


@model_options(EmbedSettings, param="settings", names=_NAMES)
def embed_command(
    file: Annotated[Path, typer.Argument(help="Text file: a sentence a line, or id<TAB>text.")],
    model: ModelOpt,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Output folder (an embedding store: manifest + .npy).")
    ],
    device: DeviceOpt = None,
    trust_remote_code: RemoteOpt = False,
    *,
    settings: EmbedSettings,
) -> None:
    """Embed a text file of any size chunk by chunk into memory-mappable .npy files.

    Interrupted runs resume from the last finished chunk when rerun with the same options;
    `accelerate launch -m xstilts embed ...` splits the chunks across processes/GPUs.
    """
    ensure_writable(out_dir, directory=True)
    group = process_group()
    encoder, ident = _encoder(model, device, settings, trust_remote_code, group)
    try:
        with make_progress() as progress:
            res = embed_file(
                file, encoder, out_dir, settings, model=ident, group=group,
                progress=RichProgress(progress),
            )  # fmt: skip
    except KeyboardInterrupt:
        err.print(f"interrupted: finished chunks in {out_dir} are kept; rerun the same command")
        raise typer.Exit(130) from None
    if group.process_index != 0:
        return
    for note in res.notes:
        err.print(note)
    m = res.manifest
    out.print(
        f"{m['identity']['rows']} rows x {len(res.layers)} layer(s) x {m['dim']} "
        f"({m['identity']['store_dtype']}) in {out_dir}; {res.chunks_encoded} of "
        f"{m['job']['n_chunks']} chunks encoded now by this process ({group.num_processes} "
        f"process(es)), {res.seconds:.1f}s"
    )


def _print_mine_report(report: dict[str, Any], out_path: Path) -> None:
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
    out.print(
        f"{report['pairs_written']} pairs written to {out_path} "
        f"(of {report['candidate_pairs']} one-to-one candidates"
        + (f", threshold {t:.4f}" if t is not None else "")
        + f"); report: {out_path.name}.json"
    )


SearchDtypeOpt = Annotated[
    str,
    typer.Option(
        help="Exact search on CPU: auto (bf16 products re-scored in fp32 where the CPU has "
        "native bf16, else fp32), fp32 or bf16."
    ),
]


@model_options(EmbedSettings, param="settings", names=_NAMES, exclude=("layers", "unique"))
def mine_command(
    src_file: Annotated[
        Path, typer.Argument(help="Source side: a sentence a line or id<TAB>text.")
    ],
    tgt_file: Annotated[Path, typer.Argument(help="Target side, same formats.")],
    model: ModelOpt,
    out_path: Annotated[Path, typer.Option("--out", help="Pairs TSV: score, src, tgt (+ texts).")],
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
    search_dtype: SearchDtypeOpt = "auto",
    texts: Annotated[
        bool | None,
        typer.Option("--texts/--no-texts", help="Add both texts (default: when no ids)."),
    ] = None,
    work_dir: Annotated[
        Path | None, typer.Option(help="Embeddings of both sides (default: <out>.work).")
    ] = None,
    device: DeviceOpt = None,
    trust_remote_code: RemoteOpt = False,
    *,
    settings: EmbedSettings,
) -> None:
    """Mine one-to-one parallel sentence pairs from two text files (margin method, LASER)."""
    ensure_writable(out_path)
    ensure_writable(work_dir or out_path.with_name(out_path.name + ".work"), directory=True)
    group = process_group()
    encoder, ident = _encoder(model, device, settings, trust_remote_code, group)
    parsed = parse_layers(layer)
    if parsed == "all" or len(parsed) != 1:
        raise UsageError(f"--layer {layer!r}: mining uses one hidden state (an index or 'last')")
    opts = MineOptions(
        layer=encoder.layer_indices(parsed)[0],
        k=k,
        margin=margin,
        index=IndexSpec(index, nlist, nprobe, target_recall, gpu=gpu, dtype=_dtype(search_dtype)),
        threshold=threshold,
        gold_sample=gold_sample,
        recall_sample=recall_sample,
        texts=texts,
    )
    try:
        with make_progress() as progress:
            report = mine_files(
                src_file, tgt_file, out_path, encoder=encoder, model=ident, settings=settings,
                opts=opts, work_dir=work_dir, group=group, progress=RichProgress(progress),
            )  # fmt: skip
    except KeyboardInterrupt:
        err.print("interrupted: finished embedding chunks are kept; rerun the same command")
        raise typer.Exit(130) from None
    if report is not None:
        _print_mine_report(report, out_path)


def _dtype(requested: str) -> str:
    """``--search-dtype`` made concrete for the CPU: what ``auto`` means for encoding there."""
    if requested not in ("auto", "fp32", "bf16"):
        raise UsageError(f"--search-dtype {requested!r}: choose auto, fp32 or bf16")
    return resolve_dtype(requested, torch.device("cpu"))


def register(app: typer.Typer) -> None:
    """Add ``embed`` and ``mine``."""
    app.command("embed")(embed_command)
    app.command("mine")(mine_command)
