"""`rmbench compare`, `rmbench correlate`, `rmbench gate` and `rmbench leaderboard build`.

Thin wrappers: the numbers come from rmbench.analysis.compare / correlate / gate and rmbench.report.leaderboard. Exit codes:
0 fine (gate passed), 1 the gate failed, 2 unusable input (RmbenchError, mapped by rmbench.cli.main).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rmbench.cli.output import make_console
from rmbench.runner.config import (
    BOOTSTRAP_SEED,
    GATE_ALPHA,
    GATE_MAX_DROP,
    GATE_MIN_N,
    MIN_RESAMPLES,
    PAIRED_RESAMPLES,
)

if TYPE_CHECKING:
    from rmbench.analysis.gate import GateResult

leaderboard_app = typer.Typer(help="Build leaderboards from run directories.", no_args_is_help=True)


def _console() -> Console:
    """Tables stay readable in CI logs and pipes, where rich would otherwise assume 80 columns."""
    return make_console()


def register(app: typer.Typer) -> None:
    """Add the report commands to the main ``rmbench`` app."""
    app.command("compare")(compare)
    app.command("correlate")(correlate)
    app.command("gate")(gate)
    app.add_typer(leaderboard_app, name="leaderboard")


def _fmt(value: float | None, digits: int = 4, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def compare(
    run_a: Path = typer.Argument(..., help="Run A (the reference)."),
    run_b: Path = typer.Argument(..., help="Run B; differences are B − A."),
    metric: list[str] | None = typer.Option(None, "--metric", "-m", help="Only these per-item metrics."),
    resamples: int = typer.Option(PAIRED_RESAMPLES, help=f"Paired bootstrap resamples (≥ {MIN_RESAMPLES})."),
    seed: int = typer.Option(BOOTSTRAP_SEED, "--bootstrap-seed", "--seed", help="Bootstrap seed."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON object instead of a table."),
) -> None:
    """Paired difference B − A per metric and scope on the shared items, with bootstrap CI, p-value and McNemar."""
    from rmbench.analysis.compare import compare_runs, load_run
    from rmbench.atomic import dumps_json

    result = compare_runs(load_run(run_a), load_run(run_b), metrics=metric or None, resamples=resamples, seed=seed)
    if json_out:
        typer.echo(dumps_json(result.as_dict()))
        return
    suite = result.suite
    table = Table(
        title=escape(f"{suite['name']} v{suite['version']}: B − A"),
        caption=(
            f"A = {run_a} · B = {run_b} · items shared {result.shared}, only in A {result.only_a}, only in B "
            f"{result.only_b} · {result.confidence:.0%} CI from a paired cluster bootstrap ({result.resamples} "
            f"resamples, seed {result.seed}) · McNemar exact on 0/1 outcomes · significant changes in green when "
            "better, red when worse, by each metric's declared direction"
        ),
    )
    for column in ("scope", "metric", "A", "B", "B − A", "95% CI", "p", "McNemar p", "n"):
        table.add_column(column, justify="left" if column in ("scope", "metric") else "right")
    for d in result.differences:
        significant = d.p_value is not None and d.p_value < GATE_ALPHA
        style = "bold" if d.scope == "overall" else None
        diff = _fmt(d.diff, signed=True)
        table.add_row(
            escape(d.scope),
            escape(d.metric),
            _fmt(d.value_a),
            _fmt(d.value_b),
            f"[{'green' if d.improved else 'red'}]{diff}[/]" if significant and d.improved is not None else diff,
            f"[{_fmt(d.ci_low)}, {_fmt(d.ci_high)}]",
            _p(d.p_value),
            _p(d.mcnemar_p),
            str(d.n),
            style=style,
        )
    console = _console()
    console.print(table)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)


def correlate(
    runs: list[str] = typer.Argument(..., help="Run directories or globs (one run per model and suite)."),
    x: str = typer.Option(..., "--x", help="Metric on the x axis: [suite/]metric[@scope], e.g. rewardmath/accuracy."),
    y: str | None = typer.Option(None, "--y", help="Metric on the y axis (or give --downstream)."),
    downstream: Path | None = typer.Option(None, help="CSV with columns model,score for the y axis."),
    label_by: str = typer.Option("dir", help="Match models by: dir (run directory name) | model (model spec)."),
    resamples: int = typer.Option(PAIRED_RESAMPLES, help=f"Bootstrap resamples over models (≥ {MIN_RESAMPLES})."),
    seed: int = typer.Option(BOOTSTRAP_SEED, "--bootstrap-seed", "--seed", help="Bootstrap seed."),
    plot: Path | None = typer.Option(None, help="Write a scatter plot PNG here."),
    markdown: Path | None = typer.Option(None, help="Write a markdown report here."),
    json_file: Path | None = typer.Option(None, "--json-file", help="Write the JSON result here."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON object instead of a table."),
) -> None:
    """Spearman, Kendall and Pearson across models, each with a bootstrap CI over models; n < 5 is flagged."""
    from rmbench.analysis.correlate import (
        MetricRef,
        correlation_markdown,
        load_runs,
        metric_direction,
        metric_gaps,
        metric_values,
        read_downstream,
    )
    from rmbench.analysis.correlate import correlate as correlate_values
    from rmbench.atomic import dumps_json, write_json, write_text
    from rmbench.errors import RmbenchError

    if (y is None) == (downstream is None):
        raise RmbenchError("give exactly one of --y METRIC or --downstream CSV")
    if label_by not in ("dir", "model"):
        raise RmbenchError(f"--label-by {label_by!r}: expected dir or model")
    loaded = load_runs(runs)
    x_ref = MetricRef.parse(x)
    xs = metric_values(loaded, x_ref, label_by)  # type: ignore[arg-type]
    directions = {str(x_ref): metric_direction(loaded, x_ref)}
    gaps = metric_gaps(loaded, x_ref)
    if downstream is not None:
        ys, y_name = read_downstream(downstream), f"downstream:{downstream.name}"
    else:
        assert y is not None
        y_ref = MetricRef.parse(y)
        ys, y_name = metric_values(loaded, y_ref, label_by), str(y_ref)  # type: ignore[arg-type]
        directions[y_name] = metric_direction(loaded, y_ref)
        gaps += [gap for gap in metric_gaps(loaded, y_ref) if gap not in gaps]
    result = correlate_values(
        xs, ys, x_name=str(x_ref), y_name=y_name, label_by=label_by, resamples=resamples, seed=seed,
        directions=directions, left_out=gaps,
    )
    if plot is not None:
        from rmbench.report.plots import scatter_plot

        spearman = result.coefficient("spearman")
        scatter_plot(
            result.x, result.y, result.labels, x_label=result.x_name, y_label=result.y_name,
            title=f"{result.x_name} vs {result.y_name} (n = {result.n})",
            subtitle=f"Spearman ρ = {spearman.value:.3f} [{_fmt(spearman.ci_low, 3)}, {_fmt(spearman.ci_high, 3)}]",
            out=plot,
        )
    if markdown is not None:
        write_text(markdown, correlation_markdown(result))
    if json_file is not None:
        write_json(json_file, result.as_dict())
    if json_out:
        typer.echo(dumps_json(result.as_dict()))
        return
    table = Table(
        title=escape(f"{result.x_name} vs {result.y_name}"),
        caption=f"n = {result.n} models matched by {label_by} · {result.confidence:.0%} CI: bootstrap over models "
        f"({result.resamples} resamples, seed {result.seed})",
    )
    for column in ("coefficient", "value", "95% CI", "p", "n"):
        table.add_column(column, justify="left" if column == "coefficient" else "right")
    for c in result.coefficients:
        ci = f"[{_fmt(c.ci_low, 3)}, {_fmt(c.ci_high, 3)}]"
        table.add_row(c.method, _fmt(c.value, 3), ci, _p(c.p_value), str(result.n))
    console = _console()
    console.print(table)
    console.print(escape(f"matched: {', '.join(result.labels)}"), highlight=False)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)


def gate(
    candidate: Path = typer.Option(..., help="The candidate run directory."),
    baseline: Path = typer.Option(..., help="The baseline run directory, or a bare results.json (unpaired)."),
    metric: list[str] | None = typer.Option(
        None, "--metric", "-m", help="Gated metric, NAME or NAME@SCOPE (repeatable); default every overall metric."
    ),
    max_drop: float = typer.Option(GATE_MAX_DROP, help="Tolerance: a drop up to this much never fails."),
    alpha: float = typer.Option(GATE_ALPHA, help="Significance level of the one-sided test for a drop."),
    resamples: int = typer.Option(PAIRED_RESAMPLES, help=f"Paired bootstrap resamples (≥ {MIN_RESAMPLES})."),
    seed: int = typer.Option(BOOTSTRAP_SEED, "--bootstrap-seed", "--seed", help="Bootstrap seed."),
    max_perturbation_drop: float | None = typer.Option(
        None,
        help="Also fail when a perturbation of the candidate (run --perturb) drops its headline metric below the "
        "candidate's own original by more than this, significantly at --alpha.",
    ),
    min_n: int = typer.Option(
        GATE_MIN_N, min=1, help="Fewer items in a gated scope: 'insufficient data', neither pass nor fail."
    ),
    summary_md: str | None = typer.Option(
        None, help="Append a markdown summary here (e.g. $GITHUB_STEP_SUMMARY; an empty value writes none)."
    ),
    junit: Path | None = typer.Option(None, help="Write JUnit XML, one test case per gated metric."),
) -> None:
    """Exit 0 pass, 1 a gated metric got significantly worse by more than --max-drop, 2 anything else.

    On exit 2 the JUnit file (when asked for) still holds one errored test case saying why; a JUnit file from an
    earlier run is removed first, so a CI system never reads a stale verdict.
    """
    from rmbench.analysis.gate import error_junit_xml, error_markdown, junit_xml, run_gate, summary_markdown
    from rmbench.atomic import write_text
    from rmbench.errors import RmbenchError

    console = _console()
    if junit is not None:
        _remove_stale(junit)  # before anything can fail: a CI system must never read an earlier verdict
    summary: Path | None = None
    try:
        summary = _summary_target(summary_md, console)
        result = run_gate(
            candidate, baseline, metrics=metric or None, max_drop=max_drop, alpha=alpha, resamples=resamples, seed=seed,
            min_n=min_n, max_perturbation_drop=max_perturbation_drop,
        )
        if summary is not None:
            _append(summary, summary_markdown(result))
        if junit is not None:
            write_text(junit, junit_xml(result))
    except Exception as exc:
        # Whatever went wrong (a hand-edited file, an unwritable summary), it is not a regression: exit 2, and say
        # why on the CI pages too, not just with a red exit code.
        error = exc if isinstance(exc, RmbenchError) else RmbenchError(_unexpected(exc))
        message = str(error)
        if summary is not None:
            _try(lambda: _append(summary, error_markdown(message)))
        if junit is not None:
            _try(lambda: write_text(junit, error_junit_xml(message)))
        raise error from exc
    _print_gate(result, console, max_drop, alpha)
    raise typer.Exit(result.exit_code)


def _summary_target(value: str | None, console: Console) -> Path | None:
    """``--summary-md ""`` (``$GITHUB_STEP_SUMMARY`` unset outside GitHub Actions) writes no summary, and says so."""
    if value is None:
        return None
    if not value.strip():
        console.print("note: --summary-md is empty ($GITHUB_STEP_SUMMARY unset?); no summary written", highlight=False)
        return None
    path = Path(value)
    if path.is_dir():
        from rmbench.errors import RmbenchError

        raise RmbenchError(f"--summary-md {value}: is a directory; give a file to append the summary to")
    return path


def _remove_stale(path: Path) -> None:
    from rmbench.errors import RmbenchError

    if path.is_dir():
        raise RmbenchError(f"--junit {path}: is a directory; give a file to write the JUnit XML to")
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise RmbenchError(f"--junit {path}: cannot remove the earlier file: {exc.strerror or exc}") from exc


def _unexpected(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return f"gate could not run: {type(exc).__name__}: {exc}"


def _try(action: Callable[[], object]) -> None:
    """Best effort: the error being reported matters more than a failure to write it down."""
    try:
        action()
    except OSError:
        pass


def _print_gate(result: GateResult, console: Console, max_drop: float, alpha: float) -> None:
    verdict = "PASSED" if result.passed else "FAILED"
    if result.passed and result.checks and all(c.insufficient for c in result.checks):
        verdict = "NO VERDICT (insufficient data)"
    table = Table(
        title=f"rmbench gate: {verdict}",
        caption=escape(f"tolerance {max_drop:g} · α = {alpha:g} · " + " · ".join(result.notes)),
    )
    for column in ("metric", "better", "baseline", "candidate", "Δ", "95% CI", "p (worse)", "n", "result"):
        table.add_column(column, justify="left" if column in ("metric", "better", "result") else "right")
    for c in result.checks:
        table.add_row(
            escape(c.label), c.direction, _fmt(c.baseline), _fmt(c.candidate), _fmt(c.diff, signed=True),
            f"[{_fmt(c.ci_low)}, {_fmt(c.ci_high)}]", _p(c.p_drop), str(c.n),
            "[bold red]FAIL[/]" if not c.passed else "insufficient data" if c.insufficient else "pass",
        )
    console.print(table)
    for c in result.checks:
        if not c.passed:
            console.print(f"[bold red]FAIL[/] {escape(c.label)}: {escape(c.reason)}", highlight=False)


def _append(path: Path, text: str) -> None:
    """Append, because $GITHUB_STEP_SUMMARY collects every step's output in one file; in one write, made durable
    before the JUnit file is written (a pipe or terminal, which cannot be synced, is simply written)."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        if path.is_file():
            os.fsync(handle.fileno())


@leaderboard_app.command("build")
def leaderboard_build(
    config: Path = typer.Argument(..., help="Leaderboard YAML (see leaderboards/*.yaml)."),
    out_dir: Path | None = typer.Option(None, help="Where to write <name>.md/.csv/.html (default: beside CONFIG)."),
    runs_base: Path | None = typer.Option(None, help="Directory the config's run patterns are relative to."),
) -> None:
    """Write <name>.md, <name>.csv and a self-contained <name>.html from run directories."""
    from rmbench.report.leaderboard import build_from_config

    board, written = build_from_config(config, out_dir, runs_base)
    console = _console()
    for path in written:
        console.print(escape(f"wrote {path}"), highlight=False)
    top = ", ".join(f"{r.rank}. {r.label}" for r in board.rows[:3])
    console.print(escape(f"{len(board.rows)} models; top: {top}"), highlight=False)
