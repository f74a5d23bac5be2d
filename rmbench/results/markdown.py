"""Metric tables for the console (rich) and for report.md, built from a run's typed results."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rich.table import Table

from rmbench.results.io import as_results
from rmbench.results.schema import MetricRecord, RunResults


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
    table = Table(title=_title(results), caption=_caption(results))
    tie_column = _tie_column(results)
    for column in ("scope", "metric", "value", "95% CI", "n", *([tie_column] if tie_column else [])):
        table.add_column(column, justify="left" if column in ("scope", "metric", "95% CI") else "right")
    for metric in _ordered(results.metrics):
        style = "bold" if metric.scope == "overall" else None
        cells = [metric.scope, metric.name, _fmt(metric.value), _ci(metric), str(metric.n)]
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
        row = f"| {metric.scope} | {metric.name} | {_fmt(metric.value)} | {_ci(metric)} | {metric.n} |"
        lines.append(row + (f" {_tie_effect(metric)} |" if tie_column else ""))
    lines += ["", f"Model fingerprint `{results.model.fingerprint}`; suite hash `{results.suite.content_hash}`."]
    return "\n".join(lines) + "\n"
