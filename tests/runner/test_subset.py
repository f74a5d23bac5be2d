"""--subset runs part of a suite: unread sources, sections and overall over what ran, recorded; a source that
cannot be read suggests it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rmbench.cli import app
from rmbench.data import load_items
from rmbench.errors import DataError, SuiteError
from rmbench.modelspec import ModelSpec
from rmbench.runner.config import RunConfig
from rmbench.runner.run import run_suite
from rmbench.suite import load_suite

SHARED = os.environ.get("RMBENCH_SHARED_DATA")


def records(prefix: str, n: int, good: int) -> str:
    # `good` of n items have the longer (chosen) response: the length baseline gets exactly good/n right.
    rows = [
        {"id": f"{prefix}{i}", "prompt": f"{prefix} {i}?", "chosen": "long answer" if i < good else "x",
         "rejected": "x" if i < good else "long answer"}
        for i in range(n)
    ]
    return "".join(json.dumps(r) + "\n" for r in rows)


def two_subset_suite(tmp_path: Path, with_b: bool = True) -> Path:
    (tmp_path / "a.jsonl").write_text(records("a", 4, 1))
    if with_b:
        (tmp_path / "b.jsonl").write_text(records("b", 4, 3))
    path = tmp_path / "two.yaml"
    path.write_text(
        "name: two\nversion: '1'\nprotocol: pairwise\nsources:\n"
        f"  - {{subset: a, local: {tmp_path / 'a.jsonl'}}}\n  - {{subset: b, local: {tmp_path / 'b.jsonl'}}}\n"
        "metrics: {sections: {first: {subsets: [a]}, second: {subsets: [b]}}}\n"
    )
    return path


def overall(results: dict) -> float:
    return next(m["value"] for m in results["metrics"] if m["scope"] == "overall" and m["name"] == "accuracy")


def test_missing_source_suggests_subset_and_subset_runs_the_rest(tmp_path: Path) -> None:
    suite = two_subset_suite(tmp_path, with_b=False)
    with pytest.raises(DataError, match=r"--subset a\b"):
        load_items(load_suite(suite))
    length = ModelSpec.build({"model": "", "engine": "length"})
    outcome = run_suite(RunConfig(suite=str(suite), model=length, subsets=["a"], out=tmp_path / "run",
                                  cache=tmp_path / "c.sqlite", show_progress=False))
    assert outcome.results["counts"]["items"] == 4
    assert outcome.results["extra"]["subsets_run"] == ["a"]
    assert overall(outcome.results) == pytest.approx(0.25)  # section 'second' dropped, not averaged in as empty
    assert outcome.results["metric_options"]["sections"] == {"first": {"subsets": ["a"], "weights": None}}
    assert any(d.get("reason") == "not in --subset" for d in outcome.results["data"])


def test_unknown_subset_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match=r"--subset c: not a subset of suite 'two' \(subsets: a, b\)"):
        load_suite(two_subset_suite(tmp_path)).only(["c"])


def test_cli_subset_flag(tmp_path: Path) -> None:
    suite = two_subset_suite(tmp_path)
    result = CliRunner().invoke(app, ["run", "--suite", str(suite), "--engine", "length", "--subset", "b",
                                      "--out", str(tmp_path / "r"), "--cache", str(tmp_path / "c.sqlite"),
                                      "--no-progress", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["extra"]["subsets_run"] == ["b"] and overall(document) == pytest.approx(0.75)


@pytest.mark.skipif(not SHARED or not Path(SHARED, "rm_bench").is_dir(), reason="shared data absent")
def test_rm_bench_without_math_names_the_four_domains(tmp_path: Path) -> None:
    suite = load_suite("rm-bench")
    with pytest.raises(DataError, match=r"--subset chat,code,safety-refuse,safety-response"):
        load_items(suite.only(["math"]), data_dir=SHARED)
