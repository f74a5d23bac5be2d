"""Metric tables for the console (rich) and for report.md, built from a results.json document."""

from __future__ import annotations

import re
from typing import Any

from rich.table import Table


def _fmt(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _ci(metric: dict[str, Any]) -> str:
    if metric.get("ci_low") is None:
        return "—"
    return f"[{_fmt(metric['ci_low'])}, {_fmt(metric['ci_high'])}]"


def _natural(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that puts gold_bon_2 before gold_bon_11: digit runs compare as numbers."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name) if part)


def _ordered(metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rank = {"overall": 0, "section": 1, "subset": 2}
    return sorted(metrics, key=lambda m: (rank.get(m["scope"].split(":")[0], 3), m["scope"], _natural(m["name"])))


def _title(document: dict[str, Any]) -> str:
    suite, model = document["suite"], document["model"]["spec"]
    who = model["model"] or model["engine"]
    return f"{suite['name']} (v{suite['version']}, {suite['protocol']}) · {who} [{model['engine']}]"


def console_table(document: dict[str, Any]) -> Table:
    options = document["metric_options"]
    table = Table(title=_title(document), caption=_caption(document, options))
    for column in ("scope", "metric", "value", "95% CI", "n"):
        table.add_column(column, justify="right" if column in ("value", "n") else "left")
    for metric in _ordered(document["metrics"]):
        style = "bold" if metric["scope"] == "overall" else None
        table.add_row(metric["scope"], metric["name"], _fmt(metric["value"]), _ci(metric), str(metric["n"]), style=style)
    return table


def _caption(document: dict[str, Any], options: dict[str, Any]) -> str:
    counts = document["counts"]
    efficiency = counts.get("padding_efficiency")
    parts = [
        f"tie policy {options['tie_policy']}",
        f"PRM aggregation {options['aggregate']}",
        f"{counts['items_evaluated']}/{counts['items']} items",
        f"{counts['unique_requests']} unique requests",
        f"truncated {counts['truncated']}",
        f"padding efficiency {_fmt(efficiency, 3)}",
    ]
    if document.get("excluded"):
        parts.append("excluded " + ", ".join(f"{k}: {v}" for k, v in document["excluded"].items()))
    return " · ".join(parts)


def markdown_report(document: dict[str, Any]) -> str:
    options = document["metric_options"]
    lines = [
        f"# {_title(document)}",
        "",
        f"_{_caption(document, options)}_",
        "",
        "| scope | metric | value | 95% CI | n |",
        "|---|---|---:|---|---:|",
    ]
    for metric in _ordered(document["metrics"]):
        lines.append(
            f"| {metric['scope']} | {metric['name']} | {_fmt(metric['value'])} | {_ci(metric)} | {metric['n']} |"
        )
    lines += ["", f"Model fingerprint `{document['model']['fingerprint']}`; suite hash `{document['suite']['content_hash']}`."]
    return "\n".join(lines) + "\n"
