"""What every rendering of a leaderboard says beside the numbers: number format, suite facts, report links."""

from __future__ import annotations

from pathlib import Path

from rmbench.report.leaderboard.build import Leaderboard, Row


def number(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def suite_lines(board: Leaderboard) -> list[str]:
    """One line per suite: version, protocol, hash, items, tie policy and how the CIs were computed."""
    lines = []
    for name, s in sorted(board.suites.items()):
        counts = sorted(n for n in s["items"] if n is not None)
        items = "?" if not counts else str(counts[0]) if counts[0] == counts[-1] else f"{counts[0]}–{counts[-1]}"
        policies = " / ".join(sorted(s["tie_policies"]))
        lines.append(
            f"{name} v{s['version']} (protocol {s['protocol']}, suite hash {str(s['content_hash'])[:12]}): {items} items "
            f"evaluated per model, tie policy **{policies}**, {s['confidence']:.0%} CIs by "
            f"{', '.join(sorted(s['ci_methods'])) or 'n/a'} ({s['resamples']} resamples)"
        )
    return lines


def overall_note(board: Leaderboard) -> str:
    n = len(board.config.columns)
    return (
        f"Overall = unweighted mean of the {n} columns, shown only for models with all of them; it has no CI because "
        "its columns share items, so their errors are correlated."
    )


def link_targets(row: Row, board: Leaderboard) -> list[tuple[str, str]]:
    """(link text, path) for each distinct report of a row, named by what tells them apart: suite and/or policy."""
    targets: dict[str, str] = {}
    for cell, column in zip(row.cells, board.config.columns):
        if cell is None or not cell.report or cell.report in targets:
            continue
        policy = Path(cell.report).stem.rsplit("-", 1)[-1]  # reports are named <suite>-<tie policy>.md
        parts = [column.suite] if len(board.suites) > 1 else []
        parts += [policy] if len(board.suites.get(column.suite, {}).get("tie_policies", ())) > 1 else []
        targets[cell.report] = " ".join(parts) or "report"
    return [(text, path) for path, text in targets.items()]
