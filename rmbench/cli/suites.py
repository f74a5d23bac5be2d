"""`rmbench suites list | show | validate`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(help="List, show and validate declarative suites.", no_args_is_help=True)
console = Console()


@app.command("list")
def list_() -> None:
    """List the suites rmbench knows (suites/ and RMBENCH_SUITES_PATH)."""
    from rmbench.suite import list_suites

    table = Table(title="rmbench suites")
    table.add_column("name", no_wrap=True)
    table.add_column("version", no_wrap=True)
    table.add_column("protocol", no_wrap=True)
    table.add_column("sources", overflow="fold", ratio=1)
    table.add_column("description", overflow="ellipsis", no_wrap=True, max_width=48)
    for suite in list_suites():
        sources = ", ".join(source.describe() for source in suite.sources)
        summary = (suite.description or "").split("\n")[0]
        table.add_row(*(escape(t) for t in (suite.name, suite.version, suite.protocol, sources, summary)))
    console.print(table)


@app.command("show")
def show(name: str = typer.Argument(..., help="Suite name or path.")) -> None:
    """Print a suite's validated declaration."""
    import yaml

    from rmbench.suite import load_suite

    suite = load_suite(name)
    console.print(escape(f"# {suite.name} · content hash {suite.content_hash}"), highlight=False)
    console.print(escape(yaml.safe_dump(suite.declaration(), sort_keys=False, allow_unicode=True)), highlight=False)


@app.command("validate")
def validate(paths: list[Path] = typer.Argument(..., help="Suite YAML files.")) -> None:
    """Validate suite files; exit 2 with a message naming the file and key on the first invalid one."""
    from rmbench.suite import load_suite

    for path in paths:
        suite = load_suite(str(path))
        console.print("[green]ok[/] " + escape(f"{path}: {suite.name} v{suite.version} ({suite.protocol})"), highlight=False)
