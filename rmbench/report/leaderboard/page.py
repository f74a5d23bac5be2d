"""The leaderboard as one self-contained HTML page, rendered from ``templates/leaderboard.html.j2``.

Python decides what is shown (formatted numbers, the best cell of each column by its declared direction, the CI
whisker's geometry); the template decides the markup; the CSS and JS are static files beside it, inlined so the
page needs nothing else. Text is escaped with ``html.escape`` (the ``esc`` filter), which the committed boards
were written with, so a rebuilt board is byte-identical.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import jinja2

from rmbench.metrics.declared import Direction
from rmbench.report.leaderboard.build import Cell, Leaderboard, rank_value
from rmbench.report.leaderboard.config import Column
from rmbench.report.leaderboard.facts import link_targets, number, overall_note, suite_lines

TEMPLATES = "rmbench.report.templates"


@dataclass(frozen=True)
class Whisker:
    left: str
    width: str
    dot: str


@dataclass(frozen=True)
class CellView:
    classes: str
    sort_value: str
    shown: str
    half: str | None
    whisker: Whisker | None


def render_html(board: Leaderboard) -> str:
    """One file with inline CSS and JS: click a column heading to sort by it."""
    config, digits = board.config, board.config.digits
    columns = range(len(config.columns))
    bounds = [_bounds([row.cells[i] for row in board.rows]) for i in columns]
    best = [_best(board, i) for i in columns]
    rows = [
        {
            "rank": row.rank,
            "label": row.label,
            "cells": [_cell_view(cell, best[i], bounds[i], digits) for i, cell in enumerate(row.cells)],
            "overall_value": "" if row.overall is None else f"{row.overall:.6f}",
            "overall_shown": None if row.overall is None else number(row.overall, digits),
            "links": [{"text": text, "path": path} for text, path in link_targets(row, board)],
        }
        for row in board.rows
    ]
    esc = html.escape
    notes = ["Values are point estimates; ± is the half-width of the confidence interval, drawn as the blue bar."]
    if config.overall:
        notes.append(overall_note(board))
    notes += [_md_bold_to_html(esc(line)) for line in suite_lines(board)]
    notes += [esc(note) for note in config.notes]
    notes += [
        f'Best-of-n curves, {esc(suite)}: <a href="{esc(path)}">{esc(Path(path).name)}</a>'
        for suite, path in board.plots.items()
    ]
    return _template().render(
        title=config.title,
        description=config.description.strip(),
        groups=[
            {"suite": suite, "span": span, "version": board.suites.get(suite, {}).get("version", "?")}
            for suite, span in _runs_of(config.columns)
        ],
        columns=[
            {"key": c.key, "heading": c.heading, "ascending": _ascending(board, i)}
            for i, c in enumerate(config.columns)
        ],
        overall=config.overall,
        rows=rows,
        notes=notes,
        css=_asset("leaderboard.css"),
        js=_asset("leaderboard.js"),
    )


@cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("rmbench.report", "templates"),
        autoescape=False,  # escaping is explicit (|esc = html.escape): fragments such as notes arrive as HTML
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["esc"] = lambda text: html.escape(str(text))
    return environment.get_template("leaderboard.html.j2")


@cache
def _asset(name: str) -> str:
    return resources.files(TEMPLATES).joinpath(name).read_text(encoding="utf-8")


def _ascending(board: Leaderboard, column: int) -> bool:
    """A lower-is-better column sorts smallest first on its first click."""
    return bool(board.declarations) and board.declarations[column].direction is Direction.LOWER


def _best(board: Leaderboard, column: int) -> float | None:
    """The best value of a column by its declared direction (none for a column without a better side)."""
    values = [cell.value for row in board.rows if (cell := row.cells[column]) is not None]
    if not values:
        return None
    if not board.declarations:
        return max(values)
    declaration = board.declarations[column]
    if declaration.direction is Direction.NONE:
        return None
    return min(values, key=lambda v: rank_value(declaration.direction, declaration, v))


def _cell_view(cell: Cell | None, best: float | None, bounds: tuple[float, float], digits: int) -> CellView | None:
    if cell is None:
        return None
    return CellView(
        classes="num best" if cell.value == best else "num",
        sort_value=f"{cell.value:.6f}",
        shown=number(cell.value, digits),
        half=None if cell.half_width is None else number(cell.half_width, digits),
        whisker=_whisker(cell, bounds),
    )


def _runs_of(columns: list[Column]) -> list[tuple[str, int]]:
    """Adjacent columns of the same suite share one group heading."""
    groups: list[tuple[str, int]] = []
    for column in columns:
        if groups and groups[-1][0] == column.suite:
            groups[-1] = (column.suite, groups[-1][1] + 1)
        else:
            groups.append((column.suite, 1))
    return groups


def _bounds(cells: list[Cell | None]) -> tuple[float, float]:
    values = [v for c in cells if c is not None for v in (c.ci_low, c.ci_high, c.value) if v is not None]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    return (low, high) if high > low else (low - 0.5, high + 0.5)


def _whisker(cell: Cell, bounds: tuple[float, float]) -> Whisker | None:
    """The CI as a bar on the column's common scale, in percent of its width."""
    low, high = bounds
    if cell.ci_low is None or cell.ci_high is None:
        return None
    left, right, dot = (100 * (v - low) / (high - low) for v in (cell.ci_low, cell.ci_high, cell.value))
    return Whisker(f"{left:.1f}", f"{max(right - left, 0.5):.1f}", f"{dot:.1f}")


def _md_bold_to_html(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
