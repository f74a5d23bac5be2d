"""`rmbench rescore RUN_DIR`: metrics and CIs recomputed from a run's kept scores, on CPU, without a model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from rmbench.cli.flags import AGGREGATE_HELP
from rmbench.cli.output import make_console

console = make_console()


def rescore(
    run_dir: Path = typer.Argument(..., help="A run directory with results.json and scores.parquet."),
    tie_policy: str | None = typer.Option(None, help="expected | strict (default: the run's)."),
    aggregate: str | None = typer.Option(None, help=AGGREGATE_HELP),
    bootstrap_resamples: int | None = typer.Option(None, help="Bootstrap resamples for the CIs (≥ 1000)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Run directory to write (default RUN_DIR-rescored)."),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", envvar="RMBENCH_DATA_DIR", help="Local data directory standing in for the hub."
    ),
    suite: str | None = typer.Option(None, "--suite", help="Suite file, when the run's suite is not registered."),
    json_out: bool = typer.Option(False, "--json", help="Print results.json to stdout instead of a table."),
) -> None:
    """Recompute a run's metrics from its scores.parquet under other metric options, and write a run directory."""
    from pydantic import ValidationError

    from rmbench.atomic import dumps_json
    from rmbench.errors import RmbenchError
    from rmbench.results.markdown import console_table
    from rmbench.runner.rescore import rescore as rescore_run

    overrides: dict[str, Any] = {
        k: v
        for k, v in {"tie_policy": tie_policy, "aggregate": aggregate, "bootstrap_resamples": bootstrap_resamples}.items()
        if v is not None
    }
    try:
        outcome = rescore_run(run_dir, overrides=overrides, out=out, data_dir=data_dir, suite=suite)
    except ValidationError as exc:
        raise RmbenchError(f"metric options: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from exc
    if json_out:
        typer.echo(dumps_json(outcome.results))
        return
    console.print(console_table(outcome.results))
    console.print(f"rescored from {escape(str(run_dir))} · run directory [bold]{escape(str(outcome.out))}[/]", highlight=False)
