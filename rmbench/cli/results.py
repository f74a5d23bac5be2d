"""`rmbench results schema`: the published JSON Schema of results.json, for tools that read run directories."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="The results.json contract.", no_args_is_help=True)


@app.command("schema")
def schema(
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the schema here instead of printing it."),
) -> None:
    """Print (or write) the JSON Schema every results.json satisfies (also in docs/results.schema.json)."""
    from rmbench.atomic import json_document, write_text
    from rmbench.results.schema import results_json_schema

    text = json_document(results_json_schema())
    if out is None:
        typer.echo(text, nl=False)
    else:
        write_text(out, text)


@app.command("check")
def check(paths: list[Path] = typer.Argument(..., help="Run directories or results.json files.")) -> None:
    """Validate results files against the contract; the first one that breaks it exits 2 naming file and field."""
    from rmbench.results.io import read_results

    for path in paths:
        results = read_results(path)
        typer.echo(f"{path}: ok ({results.suite.name} v{results.suite.version}, {len(results.metrics)} metrics)")


@app.command("combine")
def combine(
    composite: str = typer.Argument(..., help="rewardbench2 (six subsets, Ties included) or rmb (overall)."),
    paths: list[Path] = typer.Argument(..., help="Run directories or results.json files of one model."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write the composite's results.json into."),
) -> None:
    """A published headline score over several suites' runs (one model), written as a results.json."""

    from rmbench.analysis.composite import combine as combine_runs
    from rmbench.atomic import write_text
    from rmbench.results.io import RESULTS, read_results, write_results
    from rmbench.results.markdown import console_table, markdown_report

    results = combine_runs(composite, [(path, read_results(path)) for path in paths])
    out.mkdir(parents=True, exist_ok=True)
    write_results(out / RESULTS, results)
    write_text(out / "report.md", markdown_report(results))
    from rmbench.cli.output import make_console

    make_console().print(console_table(results))
    typer.echo(f"wrote {out / RESULTS}")


def register(app_: typer.Typer) -> None:
    app_.add_typer(app, name="results")
