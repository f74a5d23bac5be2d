"""Leaderboards: run directories → ``<name>.md``, ``<name>.csv`` and a self-contained ``<name>.html``.

A YAML config names the runs (directories or globs, relative to the config file), the columns (suite, metric,
scope) and whether to add an overall score (the unweighted mean of the columns). Output is deterministic — no
timestamps, sorted rows, fixed number formats — so a test can rebuild a committed leaderboard and compare bytes.
Each model's report.md is copied beside the leaderboard, so the links keep working where the run directories
themselves are not committed.

    config   the YAML declaration
    build    runs → ranked rows (direction-aware), suite facts, curve plots
    facts    what every rendering says beside the numbers
    tabular  markdown and CSV
    page     HTML, from templates/leaderboard.html.j2
"""

from __future__ import annotations

from pathlib import Path

from rmbench.atomic import write_text
from rmbench.report.leaderboard.build import Cell, Leaderboard, Row, build, slug
from rmbench.report.leaderboard.config import Column, LeaderboardConfig, load_config
from rmbench.report.leaderboard.page import render_html
from rmbench.report.leaderboard.tabular import render_csv, render_markdown

__all__ = [
    "Cell",
    "Column",
    "Leaderboard",
    "LeaderboardConfig",
    "Row",
    "build",
    "build_from_config",
    "load_config",
    "render_csv",
    "render_html",
    "render_markdown",
    "slug",
    "write",
]


def write(board: Leaderboard, out_dir: Path) -> list[Path]:
    name = board.config.name
    outputs = {
        out_dir / f"{name}.md": render_markdown(board),
        out_dir / f"{name}.csv": render_csv(board),
        out_dir / f"{name}.html": render_html(board),
    }
    for path, text in outputs.items():
        write_text(path, text)
    return list(outputs)


def build_from_config(
    config_path: Path, out_dir: Path | None = None, runs_base: Path | None = None
) -> tuple[Leaderboard, list[Path]]:
    """Load a config, build the leaderboard and write its files (default: beside the config).

    ``runs_base`` overrides the config's ``runs_base``, so a test can rebuild from run directories elsewhere.
    """
    config = load_config(config_path)
    target = out_dir or config_path.parent
    board = build(config, runs_base or config_path.parent / config.runs_base, target)
    return board, write(board, target)
