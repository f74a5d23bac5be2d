"""suites/README.md's tables are generated from the registries and cannot go stale."""

from __future__ import annotations

from rmbench.catalog import PROTOCOLS
from rmbench.data import load_items
from rmbench.devtools.suites_readme import README, main, read_counts
from rmbench.suite import SUITES_DIR, load_suite


def test_generated_tables_are_up_to_date() -> None:
    assert main(["--check"]) == 0, "run: python -m rmbench.devtools.suites_readme"
    text = README.read_text(encoding="utf-8")
    for name in PROTOCOLS:
        assert f"| `{name}` |" in text
    for path in SUITES_DIR.glob("*.yaml"):
        assert f"| `{path.stem}` |" in text


def test_recorded_counts_of_generated_suites_are_right() -> None:
    counts = read_counts()
    assert counts["math-robustness"] == len(load_items(load_suite("math-robustness")).items)
