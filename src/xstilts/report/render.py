"""Writing a report: tidy CSVs, PNG plots, Markdown and one self-contained HTML page.

The report is first laid out as a list of blocks (headings, paragraphs, tables, images); the
Markdown and HTML writers only translate blocks, so both always show the same numbers. The
HTML page has inline CSS, its PNGs embedded as base64 ``data:`` URIs and no script or external
resource: it opens from a mail attachment or an air-gapped machine.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from xstilts import __version__
from xstilts.data.language_info import SCRIPT_NAMES, resource_group, script
from xstilts.experiment.spec import slug
from xstilts.io import staging_dir
from xstilts.report import plots
from xstilts.report.build import HeadlineResult, Report
from xstilts.report.findings import (
    SIG_MARK,
    ci_text,
    conf_label,
    delta_cell,
    findings,
    pct,
    pts,
)
from xstilts.report.folds import SELECTION_WHAT
from xstilts.train.record import MULTILINGUAL_SHARE

# ---------------------------------------------------------------------------- blocks


@dataclass(frozen=True)
class Cell:
    """A table cell; ``sig`` highlights a significant difference."""

    text: str
    sig: bool = False


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    header: list[str]
    rows: list[list[Cell]]
    caption: str = ""


@dataclass
class Image:
    path: Path  # absolute path of the PNG
    alt: str


Block = Heading | Para | Bullets | Table | Image


@dataclass
class Document:
    """The laid-out report and where its files went."""

    title: str
    blocks: list[Block] = field(default_factory=list)


# ---------------------------------------------------------------------------- tables


def _cell(delta: float | None, ci, significant: bool | None) -> Cell:
    return Cell(delta_cell(delta, ci, significant), bool(significant))


def summary_table(results: Sequence[HeadlineResult]) -> Table:
    """One row per setting: group, seeds, and per headline its score and delta [CI] (starred
    when significant after the multiple-comparison correction)."""
    header = ["setting", "group", "seeds"]
    for res in results:
        header += [f"{res.headline.label}", "Δ vs baseline"]
    settings: dict[str, tuple[str, int]] = {}
    for res in results:
        for r in res.rows:
            settings.setdefault(r.setting, (r.group, len(r.seeds)))
    rows = []
    for setting, (group, n_seeds) in settings.items():
        row = [Cell(setting), Cell(group), Cell(str(n_seeds))]
        for res in results:
            r = next((x for x in res.rows if x.setting == setting), None)
            if r is None:
                row += [Cell("-"), Cell("-")]
            else:
                row += [Cell(pct(r.score)), _cell(r.delta, r.ci, r.significant)]
        rows.append(row)
    return Table(header, rows)


def head_to_head_table(results: Sequence[HeadlineResult]) -> Table | None:
    """Best English vs best multilingual setting per headline metric: each chosen on the
    selection split, scores and difference on the split named in the last column."""
    rows = []
    for res in results:
        h = res.english_vs_multilingual
        if h is None:
            continue
        cis = " ".join(f"{ci_text(c)}" for c in (h.ci, h.seed_ci) if c is not None) or "no CI"
        rows.append(
            [
                Cell(res.headline.label),
                Cell(h.b),
                Cell(pct(h.b_score)),
                Cell(h.a),
                Cell(pct(h.a_score)),
                Cell(pts(h.delta) + (f" {SIG_MARK}" if h.significant else ""), bool(h.significant)),
                Cell(cis),
                Cell(f"chosen on {_short_split(h.selected_on)}, reported on {h.reported_on}"),
            ]
        )
    if not rows:
        return None
    header = [
        "metric", "best English", "score", "best multilingual", "score", "Δ (E − M)", "CI",
        "selection",
    ]  # fmt: skip
    return Table(header, rows)


def _short_split(selected_on: str) -> str:
    return "the selection split" if selected_on.startswith("the selection split") else selected_on


def training_table(report: Report) -> Table | None:
    """What every trained setting trained on: group and its source, examples per language,
    and the budget spent (task examples, tokens, optimizer steps, epochs per task, MLM)."""
    if not report.training:
        return None
    rows = []
    for t in report.training:
        source = {"data": "from data", "override": "spec override", "name": "task names"}
        group = f"{t.group} ({source.get(t.group_source, t.group_source)})"
        share = "-" if t.english_share is None else f"{100 * t.english_share:.0f}%"
        epochs = ", ".join(f"{task} {e:.1f}" for task, e in t.epochs.items()) or "-"
        rows.append(
            [
                Cell(t.setting), Cell(group), Cell(share),
                Cell(("expected " if t.planned else "") + t.langs_text()),
                Cell(_count(t.examples)), Cell(_count(t.tokens)), Cell(_count(t.steps)),
                Cell(epochs), Cell(_count(t.mlm_examples)),
            ]
        )  # fmt: skip
    header = [
        "setting", "group", "English", "examples by language", "examples", "tokens", "steps",
        "epochs per task", "MLM examples",
    ]  # fmt: skip
    return Table(header, rows)


def _count(value: float | None) -> str:
    return "-" if not value else f"{value:,.0f}"


def per_language_table(res: HeadlineResult) -> Table:
    """One row per language: its groups, the baseline score and each setting's delta [CI]."""
    header = ["lang", "resource", "script", "split", "baseline"] + [r.setting for r in res.settings]
    rows = []
    for lang in res.languages:
        base = res.baseline.per_lang[lang].value if res.baseline else None
        row = [
            Cell(lang),
            Cell(resource_group(lang)),
            Cell(script(lang)),
            Cell(res.splits.get(lang, "")),
            Cell(pct(base)),
        ]
        for r in res.settings:
            lr = r.per_lang[lang]
            row.append(_cell(lr.delta, lr.ci, lr.significant))
        rows.append(row)
    return Table(header, rows)


def per_layer_table(res: HeadlineResult) -> Table:
    """Mean score per layer (rows) and setting (columns)."""
    frame = res.per_layer
    rows = [
        [Cell(str(layer) + (" (report)" if layer == res.layer else ""))]
        + [Cell(pct(v) if pd.notna(v) else "-") for v in frame.loc[layer]]
        for layer in frame.index
    ]
    return Table(["layer", *map(str, frame.columns)], rows)


def group_table(res: HeadlineResult) -> Table | None:
    """Mean delta per resource group and script (rows) for each setting (columns)."""
    if not res.groups:
        return None
    settings = [r.setting for r in res.settings]
    keys = list(dict.fromkeys((g.kind, g.group) for g in res.groups))
    by = {(g.kind, g.group, g.setting): g for g in res.groups}
    rows = []
    for kind, grp in keys:
        first = by[(kind, grp, settings[0])]
        name = SCRIPT_NAMES.get(grp, grp) if kind == "script" else grp
        row = [Cell(kind), Cell(name), Cell(str(len(first.langs)))]
        for s in settings:
            g = by[(kind, grp, s)]
            row.append(_cell(g.delta, g.ci, g.significant))
        rows.append(row)
    return Table(["grouping", "group", "languages", *settings], rows)


def seeds_table(results: Sequence[HeadlineResult]) -> Table | None:
    """Settings with several seeds: per-seed scores, their spread, and the t-interval over
    seeds (starred when the setting's delta is significant after correction)."""
    rows = []
    for res in results:
        for r in res.settings:
            if len(r.seeds) < 2:
                continue
            per_seed = ", ".join(f"{s}: {pct(v)}" for s, v in zip(r.seeds, r.per_seed, strict=True))
            sig = r.significant
            rows.append(
                [
                    Cell(res.headline.label),
                    Cell(r.setting),
                    Cell(per_seed),
                    Cell(pts(r.seed_sd).lstrip("+") if r.seed_sd is not None else "-"),
                    Cell(pts(r.delta)),
                    Cell(
                        ci_text(r.seed_ci, bare=True) + (f" {SIG_MARK}" if sig else ""), bool(sig)
                    ),
                ]
            )
    if not rows:
        return None
    header = ["metric", "setting", "score per seed", "sd", "mean Δ", "t-interval over seeds"]
    return Table(header, rows)


# ---------------------------------------------------------------------------- layout


def _model_results(report: Report) -> list[tuple[str, list[HeadlineResult]]]:
    models = list(dict.fromkeys(r.model for r in report.results))
    return [(m, [r for r in report.results if r.model == m]) for m in models]


def _plots(res: HeadlineResult, plot_dir: Path) -> dict[str, Path]:
    """Draw the heatmap, layer curves and group bars of one headline result."""
    stem = slug(f"{res.model}-{res.headline.key}") or "plot"
    out: dict[str, Path] = {}
    base = res.baseline.setting if res.baseline else None
    if res.baseline is not None and res.settings:
        deltas = np.array(
            [[r.per_lang[x].delta for x in res.languages] for r in res.settings], dtype=float
        )
        sig = np.array(
            [[bool(r.per_lang[x].significant) for x in res.languages] for r in res.settings]
        )
        out["heatmap"] = plots.heatmap(
            plot_dir / f"{stem}-heatmap.png",
            [r.setting for r in res.settings],
            res.languages,
            deltas,
            sig,
            f"{res.headline.label}: Δ vs baseline per language (layer {res.layer})",
        )
    if not res.per_layer.empty:
        out["layers"] = plots.layer_curves(
            plot_dir / f"{stem}-layers.png",
            res.per_layer,
            base,
            f"{res.headline.label} by layer",
            f"{res.headline.label} (%)",
        )
    if res.groups:
        settings = [r.setting for r in res.settings]
        keys = list(dict.fromkeys((g.kind, g.group) for g in res.groups))
        by = {(g.kind, g.group, g.setting): g for g in res.groups}
        names = [g if k == "resource" else SCRIPT_NAMES.get(g, g) for k, g in keys]
        cube = [[by[(k, g, s)] for k, g in keys] for s in settings]
        nan = float("nan")
        out["groups"] = plots.group_bars(
            plot_dir / f"{stem}-groups.png",
            names,
            settings,
            np.array([[g.delta for g in row] for row in cube]),
            np.array([[g.ci.low if g.ci else nan for g in row] for row in cube]),
            np.array([[g.ci.high if g.ci else nan for g in row] for row in cube]),
            f"{res.headline.label}: Δ by resource group | script",
            split_at=sum(1 for k, _ in keys if k == "resource"),
        )
    return out


def _shown_path(path: Path) -> str:
    """The store's path relative to the working directory when it lies below it, so a report
    rewritten from the same store elsewhere is byte-identical except its date."""
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(resolved)


def _intro(report: Report) -> list[Block]:
    opts = report.options
    layers = ", ".join(f"{m or 'model'}: {lay}" for m, lay in report.layers.items())
    return [
        Para(
            f"Source: {_shown_path(report.source)}. "
            "Report layer (hidden-state index, 0 = embeddings): "
            f"{layers}. Baseline: {opts.baseline}. Generated {dt.date.today().isoformat()} by "
            f"xstilts {__version__}."
        ),
        Para(
            "Scores are percentages: the mean over languages of the stored metric, averaged over "
            "seeds. Δ is the difference to the baseline in percentage points, with its "
            f"{conf_label(opts.confidence)} interval: a paired bootstrap over sentences "
            f"({opts.bootstrap} replicates, stratified by language, seed {opts.seed}) and, for "
            f"settings with several seeds, a t-interval over seeds. {SIG_MARK} marks a "
            "difference that stays significant after Holm-Bonferroni correction for the "
            "number of comparisons (its p-value is the larger of the bootstrap's and the "
            "seeds' t-test's); the intervals themselves are uncorrected. Every 'best' is "
            f"chosen on {SELECTION_WHAT} and reported on the rest."
        ),
        *_layer_para(report),
    ]


def _layer_para(report: Report) -> list[Block]:
    return [Para(f"Report layer of {m}: {how}.") for m, how in report.layer_choice.items()]


def _design(report: Report) -> list[Block]:
    """What each setting trained on, and what differences the design can detect."""
    b: list[Block] = []
    table = training_table(report)
    if table is not None:
        b += [
            Heading(2, "What each setting trained on"),
            Para(
                "Groups come from the rows trained on (every example English: english; at least "
                f"{100 * MULTILINGUAL_SHARE:.0f}% not English: multilingual; otherwise mixed), "
                "counting the auxiliary MLM text; examples and tokens are task batches drawn "
                "(mean over seeds), epochs the passes over each task's training rows."
            ),
            table,
        ]
    mdes = [(res, res.mde) for res in report.results if res.mde is not None]
    if mdes:
        items = [
            f"{_title(res, len(report.layers) > 1)}: {pts(m).lstrip('+')} points" for res, m in mdes
        ]
        b += [
            Heading(2, "Smallest detectable difference"),
            Para(
                "With 80% power at the most stringent corrected level, differences smaller "
                "than these are not evidence either way (docs/report.md):"
            ),
            Bullets(items),
        ]
    return b


def _summary(report: Report, several: bool) -> list[Block]:
    b: list[Block] = [Heading(2, "Summary")]
    for model, results in _model_results(report):
        if several:
            b.append(Heading(3, f"Model {model}"))
        b.append(summary_table(results))
    h2h = head_to_head_table(report.results)
    if h2h is not None:
        b.append(Heading(2, "English vs multilingual intermediate tasks"))
        b.append(
            Para(
                "The best English setting against the best multilingual setting on each metric: "
                "each picked as the best of its group on the selection split, their scores and "
                "difference reported on the test split (Δ = English − multilingual)."
            )
        )
        b.append(h2h)
    b.append(Heading(2, "Findings"))
    b.append(Bullets(findings(report) or ["No comparison with a baseline is possible."]))
    return b


def _per_result(report: Report, plots: dict[int, dict[str, Path]], several: bool) -> list[Block]:
    """Per-language and per-layer sections: one subsection per headline result."""
    b: list[Block] = [Heading(2, "Per-language deltas")]
    for res in report.results:
        b.append(Heading(3, _title(res, several)))
        if "heatmap" in plots[id(res)]:
            b.append(Image(plots[id(res)]["heatmap"], f"{res.headline.label} heatmap"))
        b.append(per_language_table(res))
    b.append(Heading(2, "Per-layer curves"))
    for res in report.results:
        b.append(Heading(3, _title(res, several)))
        if "layers" in plots[id(res)]:
            b.append(Image(plots[id(res)]["layers"], f"{res.headline.label} by layer"))
        b.append(per_layer_table(res))
    return b


def _groups(report: Report, plots: dict[int, dict[str, Path]], several: bool) -> list[Block]:
    groups = [(res, group_table(res)) for res in report.results]
    if all(t is None for _, t in groups):
        return []
    b: list[Block] = [
        Heading(2, "Language groups"),
        Para(
            "Resource groups follow Joshi et al. (2020), 'The State and Fate of Linguistic "
            "Diversity and Inclusion in the NLP World': high = classes 4-5, mid = 3, low = "
            "0-2, unknown = not in their list. Script = the majority script of the language's "
            "Tatoeba sentences (ISO 15924)."
        ),
    ]
    for res, table in groups:
        if table is None:
            continue
        b.append(Heading(3, _title(res, several)))
        if "groups" in plots[id(res)]:
            b.append(Image(plots[id(res)]["groups"], f"{res.headline.label} groups"))
        b.append(table)
    return b


def _closing(report: Report) -> list[Block]:
    b: list[Block] = []
    seeds = seeds_table(report.results)
    if seeds is not None:
        b += [Heading(2, "Across seeds"), seeds]
    notes = [*report.notes] + [n for res in report.results for n in res.notes]
    if notes:
        b += [Heading(2, "Notes"), Bullets(list(dict.fromkeys(notes)))]
    b.append(Heading(2, "Files"))
    b.append(
        Para(
            "results.csv: every stored metric, one row per metric (all layers and protocols). "
            "summary.csv and per_language.csv: the numbers of the tables above, unrounded. "
            "plots/: the figures as PNG. See docs/report.md for the statistics."
        )
    )
    return b


def layout(report: Report, plot_dir: Path) -> Document:
    """Lay the report out as blocks (drawing the plots into ``plot_dir``)."""
    doc = Document(f"xstilts report: {report.title}")
    several = len(_model_results(report)) > 1
    plots = {id(res): _plots(res, plot_dir) for res in report.results}
    doc.blocks = [
        Heading(1, doc.title),
        *_intro(report),
        *_summary(report, several),
        *_design(report),
        *_per_result(report, plots, several),
        *_groups(report, plots, several),
        *_closing(report),
    ]
    return doc


def _title(res: HeadlineResult, several: bool) -> str:
    return f"{res.model}: {res.headline.label}" if several else res.headline.label


# ---------------------------------------------------------------------------- writers


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: Document, base_dir: Path) -> str:
    """Markdown; images are linked relative to ``base_dir`` (the report folder)."""
    out: list[str] = []
    for block in doc.blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Para):
            out.append(block.text)
        elif isinstance(block, Bullets):
            out.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, Table):
            lines = [
                "| " + " | ".join(_md_escape(h) for h in block.header) + " |",
                "|" + "|".join("---" for _ in block.header) + "|",
            ]
            lines += [
                "| " + " | ".join(_md_escape(c.text) for c in row) + " |" for row in block.rows
            ]
            out.append("\n".join(lines))
        elif isinstance(block, Image):
            out.append(f"![{block.alt}]({block.path.relative_to(base_dir).as_posix()})")
    return "\n\n".join(out) + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:72rem;padding:0 1rem;color:#1b1b1b;line-height:1.45}
h1{font-size:1.6rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.8rem 0;font-size:.85rem;display:block;overflow-x:auto}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:right;white-space:nowrap}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
td.sig{font-weight:600;background:#eef6ee}
img{max-width:100%;height:auto;display:block;margin:.8rem 0}
li{margin:.3rem 0}
"""


def to_html(doc: Document) -> str:
    """One self-contained page: inline CSS, images as data URIs, no scripts."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>{esc(doc.title)}</title><style>{_CSS}</style></head><body>",
    ]
    for block in doc.blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{esc(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            parts.append(f"<p>{esc(block.text)}</p>")
        elif isinstance(block, Bullets):
            parts.append("<ul>" + "".join(f"<li>{esc(x)}</li>" for x in block.items) + "</ul>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{esc(h)}</th>" for h in block.header)
            body = "".join(
                "<tr>"
                + "".join(
                    f'<td class="sig">{esc(c.text)}</td>' if c.sig else f"<td>{esc(c.text)}</td>"
                    for c in row
                )
                + "</tr>"
                for row in block.rows
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(block, Image):
            data = base64.b64encode(block.path.read_bytes()).decode("ascii")
            parts.append(f'<img alt="{esc(block.alt)}" src="data:image/png;base64,{data}">')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _ci_cols(prefix: str, ci) -> dict[str, float | None]:
    return {f"{prefix}_low": ci.low if ci else None, f"{prefix}_high": ci.high if ci else None}


def summary_frame(report: Report) -> pd.DataFrame:
    """The summary table's numbers, unrounded: one row per model, headline and setting."""
    rows = []
    for res in report.results:
        for r in res.rows:
            rows.append(
                {
                    "model": res.model,
                    "headline": res.headline.key,
                    "layer": res.layer,
                    "setting": r.setting,
                    "group": r.group,
                    "n_seeds": len(r.seeds),
                    "score": r.score,
                    "delta": r.delta,
                    **_ci_cols("ci", r.ci),
                    **_ci_cols("seed_ci", r.seed_ci),
                    "seed_sd": r.seed_sd,
                    "p_value": r.p_value,
                    "p_holm": r.p_adjusted,
                    "significant": r.significant,
                    "reported_on": res.reported_on,
                }
            )
    return pd.DataFrame(rows)


def per_language_frame(report: Report) -> pd.DataFrame:
    """Per-language values and deltas, unrounded."""
    rows = []
    for res in report.results:
        for r in res.rows:
            for lang, lr in r.per_lang.items():
                rows.append(
                    {
                        "model": res.model,
                        "headline": res.headline.key,
                        "layer": res.layer,
                        "setting": r.setting,
                        "lang": lang,
                        "split": res.splits.get(lang),
                        "value": lr.value,
                        "delta": lr.delta,
                        **_ci_cols("ci", lr.ci),
                        "p_value": lr.p_value,
                        "p_holm": lr.p_adjusted,
                        "significant": lr.significant,
                    }
                )
    return pd.DataFrame(rows)


def results_csv_frame(metrics: pd.DataFrame) -> pd.DataFrame:
    """Every stored metric row, tidy, in a stable order (the store's values, unchanged)."""
    cols = [
        "model",
        "setting",
        "grp",
        "seed",
        "task",
        "lang",
        "layer",
        "direction",
        "metric",
        "protocol",
        "split",
        "value",
    ]
    df = metrics[cols].rename(columns={"grp": "group"})
    keys = [
        "model",
        "setting",
        "seed",
        "task",
        "protocol",
        "split",
        "lang",
        "layer",
        "direction",
        "metric",
    ]
    return df.sort_values(keys, na_position="first", kind="stable").reset_index(drop=True)


REPORT_FILES = {
    "results": "results.csv",
    "summary": "summary.csv",
    "per_language": "per_language.csv",
    "markdown": "report.md",
    "html": "report.html",
}


def write_report(report: Report, out_dir: Path) -> dict[str, Path]:
    """Write results.csv, summary.csv, per_language.csv, plots/*.png, report.md, report.html.

    Everything is written into a staging directory next to ``out_dir`` first and moved into
    place only when complete, so a failure (an unwritable folder, a full disk) leaves no
    partial report behind.
    """
    out_dir = Path(out_dir)
    with staging_dir(out_dir) as stage:
        files = {key: stage / name for key, name in REPORT_FILES.items()}
        files["results"].write_text(results_csv_frame(report.metrics).to_csv(index=False))
        files["summary"].write_text(summary_frame(report).to_csv(index=False))
        files["per_language"].write_text(per_language_frame(report).to_csv(index=False))
        doc = layout(report, stage / "plots")
        files["markdown"].write_text(to_markdown(doc, stage), encoding="utf-8")
        files["html"].write_text(to_html(doc), encoding="utf-8")
    return {key: out_dir / name for key, name in REPORT_FILES.items()}
