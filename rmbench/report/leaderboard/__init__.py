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

import os
import shutil
from pathlib import Path

from rmbench.atomic import _alive, write_text
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

    The whole board (reports, plots, md, csv, html) is built in a staging directory beside the target and only then
    swapped in, so a failed or killed build leaves the published board as it was. ``runs_base`` overrides the
    config's ``runs_base``, so a test can rebuild from run directories elsewhere.
    """
    config = load_config(config_path)
    target = out_dir or config_path.parent
    target.mkdir(parents=True, exist_ok=True)
    _sweep_staging(target)
    staging = target / f".{config.name}.staging.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        board = build(config, runs_base or config_path.parent / config.runs_base, staging)
        staged = write(board, staging)
        return board, _publish(staging, target, config.name, staged)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _publish(staging: Path, target: Path, name: str, files: list[Path]) -> list[Path]:
    """Swap a staged board in: its directory (reports, plots) first, then the csv and html, the md (the page
    people open) last; every rename is one step, and nothing is written in between."""
    published = []
    board_dir, old_dir = target / name, target / f".{name}.old.{os.getpid()}"
    if board_dir.exists():
        os.replace(board_dir, old_dir)
    if (staging / name).exists():
        os.replace(staging / name, board_dir)
    for path in sorted(files, key=lambda p: p.suffix == ".md"):
        os.replace(path, target / path.name)
        published.append(target / path.name)
    _fsync_dir(target)
    shutil.rmtree(old_dir, ignore_errors=True)
    return sorted(published, key=lambda p: [".md", ".csv", ".html"].index(p.suffix))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sweep_staging(target: Path) -> None:
    """Remove staging and swapped-out directories of builds that were killed (their pid is gone)."""
    for leftover in target.glob(".*.*.*"):
        kind_pid = leftover.name.rsplit(".", 2)[-2:]
        if len(kind_pid) == 2 and kind_pid[0] in ("staging", "old") and kind_pid[1].isdigit() and leftover.is_dir():
            if not _alive(int(kind_pid[1])):
                shutil.rmtree(leftover, ignore_errors=True)
