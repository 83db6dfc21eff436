"""Findings: deterministic sentences generated from the report's numbers.

Every claim carries its interval, and a difference is called significant only when every
available interval excludes 0 (:attr:`SettingResult.significant`); a difference without any
interval (no per-sentence items, one seed) is reported as such, never as significant. Best
settings are chosen on the same test numbers they are reported on, which the text says.

The number formatting here (percentage points, intervals, significance marks) is shared with
:mod:`.render`, so a number reads the same in a sentence and in a table.
"""

from __future__ import annotations

from xstilts.report.build import HeadlineResult, Report, SettingResult
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
        return "no interval available, so no claim of significance"
    return "significant" if significant else "not significant (the interval includes 0)"


def _cis(res: SettingResult) -> str:
    parts = [ci_text(c) for c in (res.ci, res.seed_ci) if c is not None]
    return "; ".join(parts) if parts else f"no CI: {res.ci_note or 'no items stored'}"


def _langs(pairs: list[tuple[str, float]], n: int = 5) -> str:
    return ", ".join(f"{lang} {pts(d)}" for lang, d in pairs[:n])


def headline_findings(res: HeadlineResult, *, prefix: str = "") -> list[str]:
    """Sentences about one headline metric: best setting, its languages, English vs
    multilingual, resource groups, seeds."""
    label = f"{prefix}{res.headline.label} (layer {res.layer})"
    out: list[str] = []
    if res.baseline is None or not res.settings:
        return out
    base = res.baseline
    best = max(res.settings, key=lambda r: r.delta if r.delta is not None else float("-inf"))
    assert best.delta is not None
    head = (
        f"{label}: {best.setting} ({best.group}) scores {pct(best.score)} vs "
        f"{pct(base.score)} for the baseline, {pts(best.delta)} points ({_cis(best)})"
    )
    if best.significant and best.delta > 0:
        out.append(f"{head}: the largest gain, and significant.")
    elif best.delta > 0:
        out.append(
            f"{head}: the largest gain, but {significance_phrase(best.significant)}; no "
            "setting is shown to beat the baseline."
        )
    else:
        out.append(f"{head}: no setting improves on the baseline.")
    worse = [r.setting for r in res.settings if r.significant and (r.delta or 0) < 0]
    if worse:
        out.append(f"{label}: significantly worse than the baseline: {', '.join(worse)}.")
    if len(res.languages) > 1:
        with_ci = [
            (x, lr.delta, lr.ci)
            for x, lr in best.per_lang.items()
            if lr.ci is not None and lr.delta is not None
        ]
        if with_ci:
            gains = sorted([(x, d) for x, d, ci in with_ci if ci.low > 0], key=lambda t: -t[1])
            losses = sorted([(x, d) for x, d, ci in with_ci if ci.high < 0], key=lambda t: t[1])
            text = (
                f"{label}: {best.setting} is significantly better in {len(gains)} of "
                f"{len(with_ci)} languages"
            )
            text += f" (largest: {_langs(gains)})" if gains else ""
            text += f" and significantly worse in {len(losses)}"
            text += f" ({_langs(losses)})" if losses else ""
            out.append(text + " (per-language paired bootstrap).")
        else:
            out.append(f"{label}: no per-language intervals (no per-sentence items stored).")
    h2h = res.english_vs_multilingual
    if h2h is not None:
        e, m = h2h.b, h2h.a
        side = "ahead of" if h2h.delta > 0 else ("behind" if h2h.delta < 0 else "level with")
        cis = "; ".join(ci_text(c) for c in (h2h.ci, h2h.seed_ci) if c is not None) or "no CI"
        out.append(
            f"{label}: the best English setting, {e.setting} ({pct(e.score)}), is {side} the "
            f"best multilingual setting, {m.setting} ({pct(m.score)}), by {pts(h2h.delta)} "
            f"points ({cis}): {significance_phrase(h2h.significant)}. Both were picked as "
            "the best of their group on these test numbers."
        )
    groups = [g for g in res.groups if g.setting == best.setting and g.kind == "resource"]
    if len(groups) > 1:
        parts = [
            f"{g.group} {pts(g.delta)} ({len(g.langs)} lang., {ci_text(g.ci, bare=True)})"
            for g in groups
        ]
        out.append(f"{label}: {best.setting}'s mean gain by resource group: {'; '.join(parts)}.")
    for r in res.settings:
        if r.seed_ci is not None and r.ci is not None and r.ci.significant != r.seed_ci.significant:
            stable = "across seeds" if r.seed_ci.significant else "over sentences"
            unstable = "over sentences" if r.seed_ci.significant else "across seeds"
            out.append(
                f"{label}: {r.setting}'s delta ({pts(r.delta)}) is significant {stable} but "
                f"not {unstable} ({ci_text(r.ci)}; {ci_text(r.seed_ci)}), so it is not "
                "called significant."
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
    tests = sum(1 for res in report.results for r in res.settings if r.significant is not None)
    if tests > 1:
        alpha = 1 - report.options.confidence
        out.append(
            f"{tests} setting-vs-baseline comparisons are each tested at "
            f"{conf_label(report.options.confidence)} confidence without a multiple-comparison "
            f"correction: with no real effect anywhere about {tests * alpha:.1f} of them would "
            "still look significant."
        )
    return out
