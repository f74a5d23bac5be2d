"""Collect the runs a leaderboard names and fill its table: one row per model, one cell per column, ranked.

Runs of one suite must agree on suite version, content hash and tie policy: a leaderboard that mixes them would
rank numbers that do not mean the same thing. Ranking follows each column's declared direction
(``rmbench.metrics.declared``): a lower-is-better column ranks its smallest value first.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rmbench.analysis.compare import LoadedRun, load_run
from rmbench.analysis.correlate import expand_runs, run_label
from rmbench.atomic import write_text
from rmbench.errors import RmbenchError
from rmbench.metrics.declared import Direction, MetricDeclaration, declared
from rmbench.report.leaderboard.config import Column, LeaderboardConfig
from rmbench.results.rundir import REPORT


@dataclass(frozen=True)
class Cell:
    value: float
    ci_low: float | None
    ci_high: float | None
    n: int
    report: str | None  # path of the copied report.md, relative to the leaderboard files

    @property
    def half_width(self) -> float | None:
        return None if self.ci_low is None or self.ci_high is None else (self.ci_high - self.ci_low) / 2


@dataclass(frozen=True)
class Row:
    rank: int
    label: str
    cells: tuple[Cell | None, ...]
    overall: float | None


@dataclass(frozen=True)
class Leaderboard:
    config: LeaderboardConfig
    rows: list[Row]
    suites: dict[str, dict[str, Any]]  # suite name -> version, content_hash, protocol, tie policy, items, CI method
    plots: dict[str, str] = field(default_factory=dict)  # suite -> its curves PNG, relative to the leaderboard files
    #: Each column's metric declaration (its direction ranks the rows and picks each column's best cell).
    declarations: tuple[MetricDeclaration, ...] = ()


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def _how_runs_get_there(config: LeaderboardConfig) -> str:
    """How to create a board's runs on a fresh clone: its build script when the repository ships one."""
    script = Path("leaderboards") / "build.sh"
    return (
        f"create them with `{script} {config.name}` (it runs or imports every model of this board), "
        "or point runs/runs_base at existing run directories"
    )


def build(config: LeaderboardConfig, base: Path, out_dir: Path) -> Leaderboard:
    """Collect the runs, fill the table, copy each run's report.md under ``out_dir/<name>/reports``."""
    wanted = {c.suite for c in config.columns}
    by_model: dict[str, list[LoadedRun]] = {}
    for run in (load_run(p) for p in expand_runs(config.runs, base, how=_how_runs_get_there(config))):
        if run.suite.name in wanted:
            by_model.setdefault(run_label(run, config.label_by), []).append(run)
    if not by_model:
        raise RmbenchError(f"leaderboard '{config.name}': no run of suite(s) {', '.join(sorted(wanted))}")
    picked = {
        label: [_pick(config, column, label, runs) for column in config.columns] for label, runs in by_model.items()
    }
    suites = _suite_info(config, picked)
    declarations = _declarations(config, suites)
    overall_direction = _overall_direction(config, declarations)

    reports_dir = out_dir / config.name / "reports"
    if reports_dir.exists():
        shutil.rmtree(reports_dir)  # reports of models no longer listed must not linger
    unranked = []
    for label, runs in picked.items():
        cells = tuple(_cell(run, c, label, reports_dir, out_dir) for run, c in zip(runs, config.columns))
        complete = [c.value for c in cells if c is not None]
        overall = sum(complete) / len(complete) if config.overall and len(complete) == len(cells) else None
        unranked.append((label, cells, overall))

    def rank_key(row: tuple[str, tuple[Cell | None, ...], float | None]) -> tuple[bool, float, float, str]:
        """Overall (missing last), then the first column, then the name: a stable, total order, each "better" by
        the declared direction (the overall's is its columns' common one)."""
        label, cells, overall = row
        head = declarations[0]
        first = float("inf") if cells[0] is None else rank_value(head.direction, head, cells[0].value)
        return overall is None, rank_value(overall_direction, None, overall or 0.0), first, label

    unranked.sort(key=rank_key)
    rows = [Row(rank, label, cells, overall) for rank, (label, cells, overall) in enumerate(unranked, start=1)]
    plots = _curve_plots(config, picked, out_dir)
    return Leaderboard(config, rows, suites, plots, declarations)


def rank_value(direction: Direction, declaration: MetricDeclaration | None, value: float) -> float:
    """Smaller ranks first: the best value by the direction; a column without a better side shows largest first,
    as a table sorts by default."""
    if direction is Direction.LOWER:
        return value
    if direction is Direction.TARGET and declaration is not None:
        return declaration.badness(value)
    return -value


def _declarations(config: LeaderboardConfig, suites: dict[str, dict[str, Any]]) -> tuple[MetricDeclaration, ...]:
    """Each column's metric declaration, by the protocol its suite's runs record; undeclared is an error."""
    return tuple(declared(c.metric, suites.get(c.suite, {}).get("protocol")) for c in config.columns)


def _overall_direction(config: LeaderboardConfig, declarations: tuple[MetricDeclaration, ...]) -> Direction:
    """An overall column averages its columns, which means something only when they all improve the same way."""
    directions = {d.direction for d in declarations}
    if not config.overall:
        return Direction.HIGHER
    if len(directions) > 1 or directions & {Direction.TARGET, Direction.NONE}:
        shown = ", ".join(f"{c.key} ({d.direction.value})" for c, d in zip(config.columns, declarations))
        raise RmbenchError(
            f"leaderboard '{config.name}': an overall mean needs columns that are all higher- or all lower-is-better; "
            f"got {shown}; set overall: false"
        )
    return directions.pop()


def _curve_plots(config: LeaderboardConfig, picked: dict[str, list[LoadedRun | None]], out_dir: Path) -> dict[str, str]:
    """For each overoptimization suite on the board: every model's best-of-n curves on one PNG
    (``<name>/<suite>-overoptimization.png``), so the table's single numbers come with the shape behind them."""
    from rmbench.report.curves import curve_png, merge_curves

    plots: dict[str, str] = {}
    for suite in dict.fromkeys(c.suite for c in config.columns):
        curves = {
            label: run.results.extra["curves"]
            for label, runs in picked.items()
            for run, column in zip(runs, config.columns)
            if run is not None and column.suite == suite and run.results.extra.get("curves")
        }
        if not curves:
            continue
        try:
            merged = merge_curves(curves)
        except ValueError as exc:
            raise RmbenchError(f"leaderboard '{config.name}', suite '{suite}': {exc}") from exc
        target = out_dir / config.name / f"{slug(suite)}-overoptimization.png"
        curve_png(merged, target, title=f"{config.title}: {suite}",
                  subtitle="best-of-n from each model's pick; bands: 95% bootstrap CI over prompts")
        plots[suite] = target.relative_to(out_dir).as_posix()
    return plots


def _pick(config: LeaderboardConfig, column: Column, label: str, runs: list[LoadedRun]) -> LoadedRun | None:
    """The one run of this model that a column reads; two candidates is an error, never a silent choice."""
    matches = [
        r
        for r in runs
        if r.suite.name == column.suite
        and (column.tie_policy is None or r.results.metric_options.tie_policy == column.tie_policy)
    ]
    if len(matches) > 1:
        paths = ", ".join(str(r.path) for r in matches)
        raise RmbenchError(
            f"leaderboard '{config.name}': column {column.key} matches {len(matches)} runs labelled '{label}' "
            f"({paths}); give the column a tie_policy or keep one run per model and suite"
        )
    return matches[0] if matches else None


def _cell(run: LoadedRun | None, column: Column, label: str, reports_dir: Path, out_dir: Path) -> Cell | None:
    if run is None:
        return None
    metric = run.metric(column.metric, column.scope)
    if metric is None or metric.value is None:
        return None
    report = None
    source = (run.path if run.path.is_dir() else run.path.parent) / REPORT
    if source.exists():
        policy = run.results.metric_options.tie_policy
        target = reports_dir / slug(label) / f"{slug(column.suite)}-{policy}.md"
        if not target.exists():
            write_text(target, source.read_text(encoding="utf-8"))
        report = target.relative_to(out_dir).as_posix()
    return Cell(metric.value, metric.ci_low, metric.ci_high, metric.n, report)


def _suite_info(config: LeaderboardConfig, picked: dict[str, list[LoadedRun | None]]) -> dict[str, dict[str, Any]]:
    """Per suite: what its numbers mean. Runs of one suite must agree on version, content hash and, per column,
    tie policy; otherwise the table would rank numbers that do not mean the same thing."""
    info: dict[str, dict[str, Any]] = {}
    for i, column in enumerate(config.columns):
        runs = sorted((run for row in picked.values() if (run := row[i]) is not None), key=lambda r: str(r.path))
        policies = {r.results.metric_options.tie_policy for r in runs}
        if len(policies) > 1:
            raise RmbenchError(
                f"leaderboard '{config.name}': column {column.key} mixes tie policies {sorted(map(str, policies))}; "
                "rebuild the runs with one policy or give the column a tie_policy"
            )
        for run in runs:
            options = run.results.metric_options
            methods = {m.method for m in run.results.metrics if m.ci_low is not None}
            facts = info.setdefault(
                run.suite.name,
                {
                    "version": run.suite.version,
                    "content_hash": run.suite.content_hash,
                    "protocol": run.suite.protocol,
                    "confidence": options.confidence,
                    "resamples": options.bootstrap_resamples,
                    "tie_policies": set(),
                    "ci_methods": set(),
                    "items": set(),
                    "first": run.file,
                },
            )
            for key, value in (("version", run.suite.version), ("content_hash", run.suite.content_hash)):
                if facts[key] != value:
                    raise RmbenchError(
                        f"leaderboard '{config.name}': runs of suite '{run.suite.name}' disagree on suite.{key}: "
                        f"{facts['first']} has {facts[key]!r}, {run.file} has {value!r}; rebuild them with one suite"
                    )
            facts["tie_policies"].add(str(options.tie_policy))
            facts["ci_methods"] |= methods
            facts["items"].add(run.results.counts.items_evaluated)
    return info
