"""Findings: deterministic sentences generated from the report's numbers.

Every claim carries its interval, and a difference is called significant only when it stays
significant after the Holm-Bonferroni correction for the report's comparisons
(:mod:`.corrections`); a difference without any test (no per-sentence items, one seed) is
reported as such, never as significant. Every "best" is chosen on the selection split and
what is said about it comes from the test split (:mod:`.choices`), as the text says.

The number formatting here (percentage points, intervals, significance marks) is shared with
:mod:`.render`, so a number reads the same in a sentence and in a table.
"""

from __future__ import annotations

from xstilts.report import corrections
from xstilts.report.build import HeadlineResult, Report
from xstilts.report.choices import Comparison
from xstilts.report.stats import CI

SIG_MARK = "*"


def pct(x: float | None) -> str:
    """A fraction as a percentage with one decimal (``0.7843`` -> ``78.4``)."""
    return "-" if x is None else f"{100 * x:.1f}"


def pts(x: float | None) -> str:
    """A difference of fractions in signed percentage points (``0.021`` -> ``+2.1``)."""
    return "-" if x is None else f"{100 * x:+.1f}"


def conf_label(confidence: float) -> str:
    """``95%`` (or ``97.5%`` when the level is not a whole percent)."""
    c = 100 * confidence
    return f"{c:.0f}%" if abs(c - round(c)) < 1e-9 else f"{c:.1f}%"


def ci_text(ci: CI | None, *, bare: bool = False) -> str:
    """``95% CI [+1.0, +3.2]`` (``[+1.0, +3.2]`` when ``bare``); ``no CI`` without one."""
    if ci is None:
        return "no CI"
    interval = f"[{pts(ci.low)}, {pts(ci.high)}]"
    if bare:
        return interval
    what = "CI" if ci.method == "bootstrap" else "t-interval over seeds"
    return f"{conf_label(ci.confidence)} {what} {interval}"


def delta_cell(delta: float | None, ci: CI | None, significant: bool | None) -> str:
    """A table cell: ``+2.1 [+1.0, +3.2] *``."""
    if delta is None:
        return "-"
    out = pts(delta) if ci is None else f"{pts(delta)} {ci_text(ci, bare=True)}"
    return out + (f" {SIG_MARK}" if significant else "")


def significance_phrase(significant: bool | None) -> str:
    """How a result's significance is worded."""
    if significant is None:
        return "no test available, so no claim of significance"
    if significant:
        return "significant after correction for multiple comparisons"
    return "not significant after correction for multiple comparisons"


def _cis(ci: CI | None, seed_ci: CI | None, note: str = "") -> str:
    parts = [ci_text(c) for c in (ci, seed_ci) if c is not None]
    return "; ".join(parts) if parts else f"no CI: {note or 'no items stored'}"


def _langs(pairs: list[tuple[str, float]], n: int = 5) -> str:
    return ", ".join(f"{lang} {pts(d)}" for lang, d in pairs[:n])


def _where(c: Comparison) -> str:
    if c.reported_on == "the test split":
        return "picked on the selection split, measured on the test split"
    return "picked and measured on the same numbers (nothing could be held out)"


def _best_findings(res: HeadlineResult, label: str) -> list[str]:
    """The best setting (picked on selection) against the baseline, and its languages."""
    best, base = res.best, res.baseline
    if best is None or base is None:
        return []
    head = (
        f"{label}: the best setting, {best.b} ({_where(best)}), scores {pct(best.b_score)} vs "
        f"{pct(best.a_score)} for the baseline, {pts(best.delta)} points "
        f"({_cis(best.ci, best.seed_ci)})"
    )
    if best.significant and best.delta > 0:
        out = [f"{head}: a gain, {significance_phrase(True)}."]
    elif best.delta > 0:
        out = [f"{head}: {significance_phrase(best.significant)}; no setting is shown to beat "
               "the baseline."]  # fmt: skip
    else:
        out = [f"{head}: no setting improves on the baseline."]
    chosen = next(r for r in res.settings if r.setting == best.b)
    with_test = [(x, lr) for x, lr in chosen.per_lang.items() if lr.significant is not None]
    if len(res.languages) > 1 and with_test:
        gains = sorted(
            [(x, lr.delta or 0.0) for x, lr in with_test if lr.significant and (lr.delta or 0) > 0],
            key=lambda t: -t[1],
        )
        losses = sorted(
            [(x, lr.delta or 0.0) for x, lr in with_test if lr.significant and (lr.delta or 0) < 0],
            key=lambda t: t[1],
        )
        text = (
            f"{label}: {best.b} is significantly better in {len(gains)} of {len(with_test)} "
            "languages"
        )
        text += f" (largest: {_langs(gains)})" if gains else ""
        text += f" and significantly worse in {len(losses)}"
        text += f" ({_langs(losses)})" if losses else ""
        out.append(text + " (all sentences, Holm over the languages).")
    return out


def headline_findings(res: HeadlineResult, *, prefix: str = "") -> list[str]:
    """Sentences about one headline metric: best setting, its languages, English vs
    multilingual, resource groups, seeds, what the design can detect."""
    label = f"{prefix}{res.headline.label} (layer {res.layer})"
    if res.baseline is None or not res.settings:
        return []
    out = _best_findings(res, label)
    worse = [r.setting for r in res.settings if r.significant and (r.delta or 0) < 0]
    if worse:
        out.append(f"{label}: significantly worse than the baseline: {', '.join(worse)}.")
    h2h = res.english_vs_multilingual
    if h2h is not None:
        side = "ahead of" if h2h.delta > 0 else ("behind" if h2h.delta < 0 else "level with")
        out.append(
            f"{label}: the best English setting, {h2h.b} ({pct(h2h.b_score)}), is {side} the "
            f"best multilingual setting, {h2h.a} ({pct(h2h.a_score)}), by {pts(h2h.delta)} "
            f"points ({_cis(h2h.ci, h2h.seed_ci)}): {significance_phrase(h2h.significant)}. "
            f"Both were {_where(h2h)}."
        )
    best = res.best.b if res.best else None
    groups = [g for g in res.groups if g.setting == best and g.kind == "resource"]
    if len(groups) > 1:
        parts = [
            f"{g.group} {pts(g.delta)} ({len(g.langs)} lang., {ci_text(g.ci, bare=True)})"
            for g in groups
        ]
        out.append(f"{label}: {best}'s mean gain by resource group: {'; '.join(parts)}.")
    for r in res.settings:
        if r.seed_ci is not None and r.ci is not None and r.ci.significant != r.seed_ci.significant:
            stable = "across seeds" if r.seed_ci.significant else "over sentences"
            unstable = "over sentences" if r.seed_ci.significant else "across seeds"
            out.append(
                f"{label}: {r.setting}'s delta ({pts(r.delta)}) is significant {stable} but "
                f"not {unstable} ({ci_text(r.ci)}; {ci_text(r.seed_ci)}), so it is not "
                "called significant."
            )
    if res.mde is not None:
        out.append(
            f"{label}: with this design a difference smaller than {pts(res.mde).lstrip('+')} "
            "points cannot be told from noise (80% power, corrected level)."
        )
    if res.tuned_split:
        out.append(
            f"{label}: some numbers come from the split the decision threshold was tuned on, "
            "so they are optimistic."
        )
    return out


def findings(report: Report) -> list[str]:
    """All findings of a report, then the multiple-comparisons caveat."""
    several = len(report.layers) > 1
    out: list[str] = []
    for res in report.results:
        out += headline_findings(res, prefix=f"{res.model}, " if several else "")
    tests = len([t for t in corrections.headline_family(report.results) if t.p_value is not None])
    if tests:
        out.append(
            f"Significance: the report's {tests} comparisons (each setting against the baseline, "
            "English against multilingual, the best setting against the baseline, on every "
            "metric) are corrected together with Holm-Bonferroni at "
            f"{conf_label(report.options.confidence)}; per-language differences are corrected "
            "within each setting and metric."
        )
    return out
