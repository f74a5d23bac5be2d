"""`rmbench suites list | show | validate`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from rmbench.cli.output import make_console

app = typer.Typer(help="List, show and validate declarative suites.", no_args_is_help=True)
console = make_console()


JSON_HELP = "Print JSON to stdout instead of a table."


@app.command("list")
def list_(json_out: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List the suites rmbench knows (suites/ and RMBENCH_SUITES_PATH)."""
    from rmbench.suite import list_suites

    if json_out:
        rows = [
            {
                "name": suite.name,
                "version": suite.version,
                "protocol": suite.protocol,
                "sources": [source.describe() for source in suite.sources],
                "description": suite.description,
                "content_hash": suite.content_hash,
                "file": suite.origin,
            }
            for suite in list_suites()
        ]
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    rows = [
        (suite.name, suite.version, suite.protocol, ", ".join(source.describe() for source in suite.sources),
         (suite.description or "").split("\n")[0])
        for suite in list_suites()
    ]
    columns = ("name", "version", "protocol", "sources", "description")
    if not console.is_terminal:
        # In a pipe or a log: one tab-separated line per suite, nothing cut or padded (cut -f1, grep, awk work).
        for row in [columns, *rows]:
            typer.echo("\t".join(" ".join(cell.split()) for cell in row))
        return
    table = Table(title="rmbench suites")
    for column in columns[:3]:
        table.add_column(column, no_wrap=True)
    table.add_column("sources", overflow="fold", ratio=1)
    table.add_column("description", overflow="ellipsis", no_wrap=True, max_width=48)
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)


@app.command("show")
def show(
    name: str = typer.Argument(..., help="Suite name or path."),
    json_out: bool = typer.Option(False, "--json", help="Print the declaration as JSON (with name, content hash)."),
) -> None:
    """Print a suite's validated declaration as YAML (valid YAML: it can be saved and loaded as a suite)."""
    import yaml

    from rmbench.suite import load_suite

    suite = load_suite(name)
    if json_out:
        document = {"content_hash": suite.content_hash, "file": suite.origin, "declaration": suite.declaration()}
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    # Plain text, never through rich: a console would wrap long lines (and mark up brackets), breaking the YAML.
    typer.echo(f"# {suite.name} · content hash {suite.content_hash}")
    typer.echo(yaml.safe_dump(suite.declaration(), sort_keys=False, allow_unicode=True, width=float("inf")), nl=False)


@app.command("validate")
def validate(
    paths: list[Path] = typer.Argument(..., help="Suite YAML files."),
    data: bool = typer.Option(False, "--data", help="Also read the data and build every item, as run does."),
    strict: bool = typer.Option(
        False, "--strict", help="--data, and fail (exit 2) on warnings: pairs whose chosen and rejected are identical."
    ),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Local data directory (default $RMBENCH_DATA_DIR)."),
) -> None:
    """Validate suite files, including the field mapping against the protocol's item type; exit 2 with a message
    naming the file, line and key on the first invalid one. With --data / --strict the records are read too."""
    from rmbench.errors import SuiteError
    from rmbench.suite import load_suite

    for path in paths:
        suite = load_suite(str(path))
        line = f"{path}: {suite.name} v{suite.version} ({suite.protocol})"
        if not (data or strict):
            console.print("[green]ok[/] " + escape(line), highlight=False)
            continue
        from rmbench.data import load_items

        loaded = load_items(suite, data_dir=data_dir)
        warnings = _data_warnings(loaded.provenance)
        counts = f"{len(loaded.items)} items"
        for warning in warnings:
            console.print(f"[yellow]warning[/] {escape(str(path))}: {warning}", highlight=False, markup=True)
        if strict and warnings:
            raise SuiteError(f"{path}: {len(warnings)} warning(s) with --strict (see above)")
        console.print("[green]ok[/] " + escape(f"{line}: {counts}"), highlight=False)


def _data_warnings(provenance: list[dict[str, object]]) -> list[str]:
    """What the loader counted that a suite author should look at (see rmbench.data's per-source tally)."""
    from rich.markup import escape

    warnings = []
    for entry in provenance:
        where = entry.get("path") or entry.get("source") or entry.get("generator") or "source"
        if entry.get("identical_pairs"):
            examples = ", ".join(map(str, entry.get("identical_pair_examples") or []))  # type: ignore[call-overload]
            warnings.append(
                escape(
                    f"{where}: {entry['identical_pairs']} item(s) whose chosen and rejected texts are identical "
                    f"(e.g. {examples}); check the field mapping (a negative index such as chosen.-1.content "
                    "takes the last turn)"
                )
            )
    return warnings
