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


def register(app_: typer.Typer) -> None:
    app_.add_typer(app, name="results")
