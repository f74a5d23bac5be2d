"""`rmbench cache verify`: integrity of a score cache, and a re-scored sample against what it holds."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from rmbench.cli.output import make_console
from rmbench.runner.config import DEFAULT_CACHE

app = typer.Typer(help="Inspect the SQLite score cache.", no_args_is_help=True)
console = make_console()


@app.command("verify")
def verify(
    cache: Path = typer.Option(DEFAULT_CACHE, help="The score cache (SQLite file)."),
    run: Path | None = typer.Option(
        None, "--run", help="Also re-score a sample of this run directory's requests with its model and compare."
    ),
    sample: int = typer.Option(20, min=1, help="How many of the run's requests to re-score."),
    seed: int = typer.Option(0, help="Seed of the sample."),
    tolerance: float = typer.Option(1e-4, min=0, help="Relative tolerance of a re-scored value."),
) -> None:
    """Exit 0 when the cache is sound (and the sample re-scores the same), 1 when it is not, 2 on unusable input."""
    from rmbench.runner.cacheverify import verify_cache

    report = verify_cache(cache, run, sample=sample, seed=seed, tolerance=tolerance)
    console.print(escape(f"{cache}: {report.rows} cached scores"))
    if report.problems:
        shown = "; ".join(report.problems[:5])
        console.print(f"[bold red]integrity check failed[/]: {escape(shown)} — move the file aside or delete it")
    else:
        console.print("integrity check: ok")
    if run is not None and not report.problems:
        console.print(
            f"re-scored {report.sampled} sampled request(s) of {escape(str(run))}"
            + (f" ({report.not_cached} not in the cache)" if report.not_cached else "")
            + f": {len(report.mismatches)} differ"
        )
        for m in report.mismatches[:10]:
            console.print(f"  [red]{m.request}[/]: cached {m.cached!r}, model now gives {m.rescored!r}")
        if report.mismatches:
            console.print("the cache is stale or was edited: delete it (or these rows) and run again")
    for note in report.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    raise typer.Exit(0 if report.ok else 1)
