"""The generated tables of suites/README.md: protocols, item fields per protocol, shipped suites with item counts.

Generated from the registries (``PROTOCOLS``, ``BUILDERS``, the suites in suites/), so a new protocol, item type or
suite appears by re-running ``python -m rmbench.devtools.suites_readme`` (``--check`` exits 1 when the file is stale;
a test runs it). Item counts are recorded in ``suites/item_counts.json``: re-counted for every suite whose data
loads (generated suites always; the others with ``--data-dir``), kept as recorded otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from rmbench.catalog import PROTOCOLS
from rmbench.data.builders import BUILDERS
from rmbench.suite import SUITES_DIR, list_suites

README = SUITES_DIR / "README.md"
COUNTS = SUITES_DIR / "item_counts.json"
SECTIONS = ("protocols", "item-fields", "shipped-suites")


def _protocols() -> str:
    rows = ["| protocol | item type | what it measures |", "|---|---|---|"]
    for name, description in PROTOCOLS.listing():
        rows.append(f"| `{name}` | {PROTOCOLS.get(name).item_type.__name__} | {description} |")
    return "\n".join(rows)


def _item_fields() -> str:
    by_type: dict[str, list[str]] = {}
    for name in PROTOCOLS:
        by_type.setdefault(PROTOCOLS.get(name).item_type.__name__, []).append(f"`{name}`")
    rows = [
        "| item type | protocols | item field ← default record key (**required**; *responses*) |",
        "|---|---|---|",
    ]
    for type_name in sorted(BUILDERS):
        builder = BUILDERS.get(type_name)
        fields = []
        for field, default in builder.defaults.items():
            text = f"{field} ← `{default}`" if default is not None else f"{field} (not mapped)"
            if field in builder.required_fields:
                text = f"**{text}**"
            if field in builder.response_fields:
                text += " *responses*"
            fields.append(text)
        if builder.accepts_pairs:
            fields.append("or `pairs:` (label / rated)")
        protocols = ", ".join(by_type.get(type_name, [])) or "none"
        rows.append(f"| {type_name} | {protocols} | {'; '.join(fields)} |")
    return "\n".join(rows)


def _suites(counts: dict[str, int]) -> str:
    rows = ["| suite | version | protocol | items counted | sources |", "|---|---|---|---|---|"]
    for suite in list_suites():
        if not str(suite.origin).startswith("suites/"):
            continue  # RMBENCH_SUITES_PATH suites are not shipped
        sources = "<br>".join(source.describe().replace("|", "\\|") for source in suite.sources)
        items = f"{counts[suite.name]:,}" if suite.name in counts else "not counted (data absent)"
        rows.append(f"| `{suite.name}` | {suite.version} | {suite.protocol} | {items} | {sources} |")
    return "\n".join(rows)


def render(text: str, counts: dict[str, int]) -> str:
    """``text`` with every generated section replaced by its table from the registries."""
    tables = {"protocols": _protocols(), "item-fields": _item_fields(), "shipped-suites": _suites(counts)}
    for section in SECTIONS:
        pattern = re.compile(
            rf"(<!-- generated:{section} .*?-->\n).*?(<!-- /generated:{section} -->)", flags=re.DOTALL
        )
        if not pattern.search(text):
            raise SystemExit(f"{README}: no generated:{section} markers")
        text = pattern.sub(lambda m, t=tables[section]: m.group(1) + t + "\n" + m.group(2), text)  # type: ignore[misc]
    return text


def recount(counts: dict[str, int], data_dir: Path | None) -> dict[str, int]:
    """Item counts of every shipped suite whose data loads here; others keep their recorded count."""
    from rmbench.data import load_items
    from rmbench.errors import RmbenchError

    updated = dict(counts)
    for suite in list_suites():
        if any(source.generator is None for source in suite.sources) and data_dir is None:
            continue
        try:
            updated[suite.name] = len(load_items(suite, data_dir=data_dir).items)
        except RmbenchError as error:
            print(f"{suite.name}: not counted ({str(error)[:120]})", file=sys.stderr)
    return dict(sorted(updated.items()))


def read_counts() -> dict[str, int]:
    data: Any = json.loads(COUNTS.read_text(encoding="utf-8")) if COUNTS.is_file() else {}
    return {str(k): int(v) for k, v in data.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rmbench.devtools.suites_readme", description=__doc__)
    parser.add_argument("--check", action="store_true", help="Exit 1 if suites/README.md is not up to date.")
    parser.add_argument("--count", action="store_true", help="Re-count items (generated suites; --data-dir for the rest).")
    parser.add_argument("--data-dir", type=Path, default=None, help="Local benchmark data, for counting items.")
    args = parser.parse_args(argv)
    counts = read_counts()
    if args.count and not args.check:
        counts = recount(counts, args.data_dir)
        COUNTS.write_text(json.dumps(counts, indent=1) + "\n", encoding="utf-8")
    text = README.read_text(encoding="utf-8")
    fresh = render(text, counts)
    if args.check:
        if fresh != text:
            print(f"{README} is stale: run python -m rmbench.devtools.suites_readme", file=sys.stderr)
            return 1
        return 0
    README.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
