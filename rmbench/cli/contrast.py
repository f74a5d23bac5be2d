"""`rmbench contrast build SOURCE --out FILE`: contrast items from your own preference data, written as JSONL.

The same pairing as the ``contrast_pairs`` suite generator, for when the items should be looked at, edited or
frozen in a file before they are scored; ``--suite-out`` also writes a suite that scores them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from rmbench.cli.output import make_console

if TYPE_CHECKING:
    from rmbench.generators.contrast_pairs import Params

app = typer.Typer(help="Contrast-instruction items from your own preference data.", no_args_is_help=True)
console = make_console()

#: A SOURCE ending like this is a preference records file; anything else is a suite name or YAML path.
_DATA_SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz", ".parquet")


def register(parent: typer.Typer) -> None:
    """Add ``rmbench contrast ...`` to the main app."""
    parent.add_typer(app, name="contrast")


def _field_mapping(values: list[str]) -> dict[str, str]:
    from rmbench.errors import SuiteError

    mapping = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise SuiteError(f"--field {value!r}: expected FIELD=RECORD_KEY, e.g. --field prompt=question")
        mapping[name] = path
    return mapping


@app.command("build")
def build(
    source: str = typer.Argument(
        ..., help="Preference suite (name or YAML path), or a file of prompt/chosen/rejected records (json, jsonl, "
        "parquet; relative paths not found here are looked up in the data dir)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="JSONL file of contrast records to write."),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Data dir of the source's local files (default $RMBENCH_DATA_DIR)."
    ),
    field: list[str] = typer.Option(
        [], "--field", help="For a records file: FIELD=RECORD_KEY (prompt, chosen, rejected, id, subset). Repeatable."
    ),
    pairing: str = typer.Option("nearest", help="nearest (each prompt with its nearest) | one_to_one (each once)."),
    min_similarity: float = typer.Option(0.5, help="Least TF-IDF cosine similarity of two paired prompts."),
    max_similarity: float = typer.Option(0.9, help="Greatest similarity (above it: near-duplicates)."),
    neighbours: int = typer.Option(10, help="one_to_one: candidate partners kept per prompt."),
    max_items: int | None = typer.Option(None, help="Keep at most this many items (the most similar pairs)."),
    source_limit: int | None = typer.Option(None, help="Read only the first N items of the source."),
    suite_out: Path | None = typer.Option(None, help="Also write a suite YAML that scores OUT (contrast protocol)."),
) -> None:
    """Pair each prompt with its most lexically similar other prompt and write the contrast items."""
    import json

    from pydantic import ValidationError

    from rmbench.atomic import write_text
    from rmbench.errors import SuiteError
    from rmbench.generators.contrast_pairs import Params
    from rmbench.generators.contrast_pairs import build as build_pairs

    is_file = source.lower().endswith(_DATA_SUFFIXES)
    if is_file and Path(source).expanduser().is_file():  # a file here; otherwise it is looked up in the data dir
        source = str(Path(source).expanduser().resolve())
    try:
        params = Params.model_validate(
            {
                "suite": None if is_file else source,
                "file": source if is_file else None,
                "fields": _field_mapping(field),
                "pairing": pairing,
                "min_similarity": min_similarity,
                "max_similarity": max_similarity,
                "neighbours": neighbours,
                "max_items": max_items,
                "source_limit": source_limit,
            }
        )
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}" for e in error.errors())
        raise SuiteError(f"rmbench contrast build: {problems.replace('Value error, ', '')}") from None
    pairing_result = build_pairs(params, data_dir)
    records = pairing_result.records
    write_text(out, "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records))
    console.print(escape(pairing_result.report.summary()), highlight=False)
    console.print(f"wrote {len(records)} records to [bold]{escape(str(out))}[/]", highlight=False)
    if suite_out is not None:
        write_text(suite_out, _suite_yaml(suite_out.stem, out.resolve(), params))
        from rmbench.data import load_items
        from rmbench.suite import load_suite

        load_items(load_suite(str(suite_out)), data_dir=data_dir)  # the written suite must run: checked here
        console.print(
            f"wrote suite [bold]{escape(str(suite_out))}[/] (rmbench run --suite {escape(str(suite_out))} ...)",
            highlight=False,
        )


def _carried_options(params: Params) -> dict[str, object]:
    """Source options of the suite the items came from that the new suite needs to read them the same way (an
    upstream suite that allows empty responses produces items with empty responses)."""
    if params.suite is None:
        return {}
    from rmbench.suite import load_suite

    origin = load_suite(params.suite)
    return {"allow_empty_responses": True} if any(s.allow_empty_responses for s in origin.sources) else {}


def _suite_yaml(name: str, records: Path, params: Params) -> str:
    import re

    import yaml

    slug = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-") or "contrast"
    suite = {
        "name": slug,
        "version": "1",
        "description": f"Contrast items paired by `rmbench contrast build` from {params.source} (TF-IDF similarity "
        f"in [{params.min_similarity}, {params.max_similarity}], pairing {params.pairing}).",
        "protocol": "contrast",
        "sources": [{"local": str(records), **_carried_options(params)}],
        "fields": {"subset": "subset"},
        "meta_fields": {"similarity": "similarity", "q1_id": "q1_id", "q2_id": "q2_id"},
        "metrics": {"tie_policy": "strict"},
    }
    return yaml.safe_dump(suite, sort_keys=False, allow_unicode=True)
