"""`rmbench gate` on real runs: a degraded copy must fail (1), the same model must pass (0), bad input gives 2."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rmbench.analysis.gate import run_gate
from rmbench.atomic import write_json
from rmbench.metrics.stats import sectioned_metrics
from rmbench.modelspec import ModelSpec
from rmbench.protocols.base import MetricOptions
from rmbench.runner.run import RunConfig, run_suite
from tests.helpers import cli


def make_run(root: Path, name: str, engine: str, seed: int = 0) -> Path:
    out = root / name
    model = ModelSpec(model="", engine=engine, seed=seed)
    run_suite(RunConfig(suite="math-robustness", model=model, out=out, cache=root / "c.sqlite", show_progress=False))
    return out


def degraded_copy(run: Path, out: Path, fraction: float, seed: int = 0) -> Path:
    """The same run with ``fraction`` of its items' outcomes made wrong (accuracy 0, the good response ranked
    last), and results.json recomputed from them exactly as a protocol would."""
    shutil.copytree(run, out)
    items = pd.read_parquet(out / "items.parquet")
    rng = np.random.default_rng(seed)
    hit = rng.random(len(items)) < fraction
    items.loc[hit, "accuracy"] = 0.0
    if "mrr" in items:
        worst = items["mrr"].min()
        items.loc[hit, "mrr"] = np.minimum(items.loc[hit, "mrr"], worst)
    items.to_parquet(out / "items.parquet", index=False)
    document = json.loads((out / "results.json").read_text())
    options = MetricOptions.model_validate(document["metric_options"])
    columns = [c for c in items.columns if c not in ("item_id", "subset", "cluster")]
    document["metrics"] = [m.as_dict() for m in sectioned_metrics(items, columns, options).metric_values()]
    write_json(out / "results.json", document)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gate-runs")
    base = make_run(root, "random-0", "random", seed=0)
    return {
        "base": base,
        "base_again": make_run(root, "random-0-again", "random", seed=0),
        "degraded": degraded_copy(base, root / "random-0-degraded", fraction=0.5),
        "other_seed": make_run(root, "random-1", "random", seed=1),
    }


def test_degraded_copy_fails_with_summary_and_junit(runs: dict[str, Path], tmp_path: Path) -> None:
    summary, junit = tmp_path / "summary.md", tmp_path / "junit.xml"
    code = cli(["gate",
        "--candidate", str(runs["degraded"]), "--baseline", str(runs["base"]), "--metric", "accuracy",
        "--metric", "mrr", "--summary-md", str(summary), "--junit", str(junit),
    ])
    assert code == 1
    text = summary.read_text()
    assert "FAILED" in text and "| accuracy |" in text and "**FAIL**" in text and "paired" in text

    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites" and root.get("tests") == "2"
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == ["accuracy", "mrr"]
    failures = [c.find("failure") for c in cases]
    assert failures[0] is not None and "dropped by" in failures[0].get("message")
    assert root.find("testsuite").get("failures") == str(sum(f is not None for f in failures))


def test_same_model_rerun_passes(runs: dict[str, Path], tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    assert cli(["gate", "--candidate", str(runs["base_again"]), "--baseline", str(runs["base"]), "--max-drop", "0",
                 "--junit", str(junit)]) == 0
    cases = ET.parse(junit).getroot().findall("./testsuite/testcase")
    assert cases and all(c.find("failure") is None for c in cases)


def test_two_seeds_of_the_random_model_pass(runs: dict[str, Path]) -> None:
    """Two seeds differ item by item but not in expectation: the gate must see no significant drop."""
    result = run_gate(runs["other_seed"], runs["base"], max_drop=0.01, alpha=0.05)
    assert result.passed, [c.reason for c in result.checks]
    assert cli(["gate", "--candidate", str(runs["other_seed"]), "--baseline", str(runs["base"])]) == 0


def test_false_alarm_rate_of_random_seeds_is_about_alpha(runs: dict[str, Path], tmp_path: Path) -> None:
    """With no tolerance at all, seeds of the random model should fail the gate about α of the time, not more."""
    root = tmp_path / "seeds"
    baseline = runs["base"]
    fails = 0
    for seed in range(2, 14):
        candidate = make_run(root, f"random-{seed}", "random", seed=seed)
        result = run_gate(candidate, baseline, metrics=["accuracy"], max_drop=0.0, alpha=0.05, resamples=1000)
        fails += not result.passed
    assert fails <= 3  # expected 12 × 0.05 = 0.6


def test_bare_results_json_falls_back_to_unpaired(runs: dict[str, Path], tmp_path: Path) -> None:
    """Without the baseline's items the gate uses the two CIs: less sensitive, and it says so."""
    bare = tmp_path / "release" / "baseline-results.json"
    bare.parent.mkdir()
    shutil.copy(runs["base"] / "results.json", bare)
    paired = run_gate(runs["degraded"], runs["base"], metrics=["accuracy"])
    unpaired = run_gate(runs["degraded"], bare, metrics=["accuracy"])
    assert unpaired.checks[0].method == "unpaired" and any("unpaired" in n for n in unpaired.notes)
    assert unpaired.checks[0].diff == pytest.approx(paired.checks[0].diff)
    assert unpaired.checks[0].p_drop > paired.checks[0].p_drop  # pairing removes the shared noise

    broken = degraded_copy(runs["base"], tmp_path / "broken", fraction=1.0)
    summary = tmp_path / "summary.md"
    code = cli(["gate", "--candidate", str(broken), "--baseline", str(bare), "--metric", "accuracy",
                 "--summary-md", str(summary)])
    assert code == 1
    assert "unpaired" in summary.read_text()
    assert run_gate(runs["base_again"], bare, metrics=["accuracy"]).passed


def _edited_copy(run: Path, out: Path, edit) -> Path:
    shutil.copytree(run, out)
    document = json.loads((out / "results.json").read_text())
    edit(document)
    write_json(out / "results.json", document)
    return out


def test_unusable_input_exits_2(runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def bump_version(document: dict) -> None:
        document["suite"]["version"] = f"{document['suite']['version']}.1"

    other_version = _edited_copy(runs["base"], tmp_path / "v-next", bump_version)
    summary, junit = tmp_path / "summary.md", tmp_path / "junit.xml"
    assert cli(["gate", "--candidate", str(other_version), "--baseline", str(runs["base"]), "--summary-md", str(summary),
                 "--junit", str(junit)]) == 2
    assert "different versions" in capsys.readouterr().err
    assert "UNUSABLE INPUT" in summary.read_text()
    assert ET.parse(junit).getroot().find("./testsuite/testcase/error") is not None

    assert cli(["gate", "--candidate", str(runs["base_again"]), "--baseline", str(runs["base"]), "--metric",
                 "no_such_metric"]) == 2
    assert "no metric 'no_such_metric'" in capsys.readouterr().err

    fewer = tmp_path / "fewer-items"
    shutil.copytree(runs["base"], fewer)
    items = pd.read_parquet(fewer / "items.parquet")
    items.iloc[1:].to_parquet(fewer / "items.parquet", index=False)
    assert cli(["gate", "--candidate", str(fewer), "--baseline", str(runs["base"])]) == 2
    assert "different items" in capsys.readouterr().err

    def strict(document: dict) -> None:
        document["metric_options"]["tie_policy"] = "strict"

    assert cli(["gate", "--candidate", str(_edited_copy(runs["base"], tmp_path / "strict", strict)), "--baseline",
                 str(runs["base"])]) == 2
    assert "tie_policy" in capsys.readouterr().err


def test_large_but_not_significant_drop_passes(runs: dict[str, Path], tmp_path: Path) -> None:
    """A drop above the tolerance that the data cannot tell from noise does not fail (METRICS.md §9)."""
    base, cand = tmp_path / "few-base", tmp_path / "few-cand"
    shutil.copytree(runs["base"], base)
    items = pd.read_parquet(base / "items.parquet").iloc[:12].copy()
    items["accuracy"] = [1.0] * 12
    items.to_parquet(base / "items.parquet", index=False)
    shutil.copytree(base, cand)
    worse = items.copy()
    worse.loc[worse.index[:1], "accuracy"] = 0.0  # one item of 12 flipped: a drop of 0.083
    for path, frame in ((base, items), (cand, worse)):
        frame.to_parquet(path / "items.parquet", index=False)
        document = json.loads((path / "results.json").read_text())
        document["metric_options"]["sections"] = None
        options = MetricOptions.model_validate(document["metric_options"])
        document["metrics"] = [m.as_dict() for m in sectioned_metrics(frame, ["accuracy"], options).metric_values()]
        write_json(path / "results.json", document)
    result = run_gate(cand, base, metrics=["accuracy"], max_drop=0.01)
    check = result.checks[0]
    assert check.diff < -0.01 and check.p_drop >= 0.05 and check.passed
    assert "not significant" in check.reason
