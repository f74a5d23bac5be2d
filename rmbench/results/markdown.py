"""Metric tables for the console (rich) and for report.md, built from a run's typed results."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rich.markup import escape
from rich.table import Table

from rmbench.results.io import as_results
from rmbench.results.schema import MetricRecord, PerturbationRecord, RunResults


def md_cell(text: str) -> str:
    """Text safe inside a markdown table cell: a ``|`` would start a new column, a newline end the row."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


#: OWASP, CSV injection: a cell starting with one of these is a formula to a spreadsheet.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text: str) -> str:
    """A text cell a spreadsheet shows as text, never evaluates: one starting with ``= + - @`` (or a tab or carriage
    return) gets a leading ``'``, as OWASP advises. Apply to text, not to numbers (a negative number stays one)."""
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def _fmt(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _ci(metric: MetricRecord) -> str:
    if metric.ci_low is None:
        return "—"
    return f"[{_fmt(metric.ci_low)}, {_fmt(metric.ci_high)}]"


def _natural(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that puts gold_bon_2 before gold_bon_11: digit runs compare as numbers."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name) if part)


def _ordered(metrics: list[MetricRecord]) -> list[MetricRecord]:
    rank = {"overall": 0, "section": 1, "subset": 2}
    return sorted(metrics, key=lambda m: (rank.get(m.scope.split(":")[0], 3), m.scope, _natural(m.name)))


def _title(results: RunResults) -> str:
    suite, model = results.suite, results.model.spec
    who = model.model or model.engine
    return f"{suite.name} (v{suite.version}, {suite.protocol}) · {who} [{model.engine}]"


#: Ties move a number visibly when the other policy's value differs by more than this (METRICS.md §0).
TIE_EFFECT_SHOWN = 0.001


def _tie_effect(metric: MetricRecord) -> str:
    """``0.3200 (28 ties)`` when the other tie policy moves this value by more than ``TIE_EFFECT_SHOWN``."""
    other = metric.other_policy_value
    if other is None or metric.value is None or abs(other - metric.value) <= TIE_EFFECT_SHOWN:
        return ""
    return f"{_fmt(other)} ({metric.ties} ties)"


def _tie_column(results: RunResults) -> str | None:
    """The header of the other-policy column, or None when ties move no number of this run."""
    if not any(_tie_effect(m) for m in results.metrics):
        return None
    other = "strict" if results.metric_options.tie_policy == "expected" else "expected"
    return f"if ties {other}"


def console_table(document: RunResults | Mapping[str, Any]) -> Table:
    results = as_results(document)
    table = Table(title=escape(_title(results)), caption=escape(_caption(results)))
    tie_column = _tie_column(results)
    for column in ("scope", "metric", "value", "95% CI", "n", *([tie_column] if tie_column else [])):
        table.add_column(column, justify="left" if column in ("scope", "metric", "95% CI") else "right")
    for metric in _ordered(results.metrics):
        style = "bold" if metric.scope == "overall" else None
        cells = [escape(metric.scope), escape(metric.name), _fmt(metric.value), _ci(metric), str(metric.n)]
        table.add_row(*cells, *([_tie_effect(metric)] if tie_column else []), style=style)
    return table


def _caption(results: RunResults) -> str:
    counts, options = results.counts, results.metric_options
    parts = [
        f"tie policy {options.tie_policy}",
        f"PRM aggregation {options.aggregate}",
        f"{counts.items_evaluated}/{counts.items} items",
        f"{counts.unique_requests} unique requests",
        f"truncated {counts.truncated}",
        f"padding efficiency {_fmt(counts.padding_efficiency, 3)}",
    ]
    if results.excluded:
        parts.append("excluded " + ", ".join(f"{k}: {v}" for k, v in results.excluded.items()))
    return " · ".join(parts)


def markdown_report(document: RunResults | Mapping[str, Any]) -> str:
    results = as_results(document)
    tie_column = _tie_column(results)
    lines = [
        f"# {_title(results)}",
        "",
        f"_{_caption(results)}_",
        "",
        "| scope | metric | value | 95% CI | n |" + (f" {tie_column} |" if tie_column else ""),
        "|---|---|---:|---|---:|" + ("---:|" if tie_column else ""),
    ]
    for metric in _ordered(results.metrics):
        row = f"| {md_cell(metric.scope)} | {md_cell(metric.name)} | {_fmt(metric.value)} | {_ci(metric)} | {metric.n} |"
        lines.append(row + (f" {_tie_effect(metric)} |" if tie_column else ""))
    if results.perturbations:
        lines += ["", *perturbation_markdown(results.perturbations)]
    lines += ["", f"Model fingerprint `{results.model.fingerprint}`; suite hash `{results.suite.content_hash}`."]
    return "\n".join(lines) + "\n"


PERTURBATION_COLUMNS = ("rewrite", "metric", "original", "perturbed", "95% CI", "change", "change 95% CI", "flip rate", "n")


def _interval(low: float | None, high: float | None, sign: bool = False) -> str:
    if low is None or high is None:
        return "—"
    return f"[{low:+.4f}, {high:+.4f}]" if sign else f"[{low:.4f}, {high:.4f}]"


def perturbation_rows(records: list[PerturbationRecord]) -> list[tuple[str, ...]]:
    """One row per rewrite: the metric before and after, the paired change with its CI, the flip rate."""
    return [
        (
            r.label, r.metric, _fmt(r.original), _fmt(r.perturbed), _interval(r.perturbed_ci_low, r.perturbed_ci_high),
            f"{r.change:+.4f}", _interval(r.change_ci_low, r.change_ci_high, sign=True), _fmt(r.flip_rate, 3), str(r.n),
        )
        for r in records
    ]


def perturbation_markdown(records: list[PerturbationRecord]) -> list[str]:
    """The perturbation table of report.md."""
    lines = [
        "## Under meaning-preserving rewrites",
        "",
        "| " + " | ".join(PERTURBATION_COLUMNS) + " |",
        "|---|---|---:|---:|---|---:|---|---:|---:|",
    ]
    return lines + ["| " + " | ".join(md_cell(cell) for cell in row) + " |" for row in perturbation_rows(records)]


def perturbation_table(document: RunResults | Mapping[str, Any]) -> Table | None:
    """The perturbation table for the console; None when the run had none."""
    results = as_results(document)
    if not results.perturbations:
        return None
    table = Table(title="under meaning-preserving rewrites (paired with the original)")
    for column in PERTURBATION_COLUMNS:
        table.add_column(column, justify="left" if column in ("rewrite", "metric") or "CI" in column else "right")
    for row in perturbation_rows(results.perturbations):
        table.add_row(*(escape(cell) for cell in row))
    return table
