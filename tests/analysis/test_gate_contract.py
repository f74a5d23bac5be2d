"""The gate's contract in CI (issue 15): exit 0 pass, 1 regression, 2 anything else with the JUnit file still
written; a NaN never passes; a tiny subset is "insufficient data", and its test is one valid at small n."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from rmbench.analysis import gate as gate_module
from rmbench.analysis.gate import run_gate
from rmbench.atomic import write_json
from rmbench.metrics.stats import sectioned_metrics
from rmbench.protocols.base import MetricOptions
from rmbench.results.markdown import md_cell
from tests.analysis.test_gate import make_run
from tests.helpers import cli


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("gate-contract"), "random-0", "random", seed=0)


def _junit_error(path: Path) -> str:
    root = ET.parse(path).getroot()
    error = root.find("./testsuite/testcase/error")
    assert error is not None and root.get("errors") == "1"
    return error.get("message") or ""


def test_nan_candidate_is_unusable_input_not_a_pass(base: Path, tmp_path: Path) -> None:
    nan = tmp_path / "nan"
    shutil.copytree(base, nan)
    document = json.loads((nan / "results.json").read_text())
    document["metrics"][0]["value"] = float("nan")
    (nan / "results.json").write_text(json.dumps(document))  # json writes NaN, as a hand edit could
    junit = tmp_path / "gate.xml"
    assert cli(["gate", "--candidate", str(nan), "--baseline", str(base), "--junit", str(junit)]) == 2
    assert "metrics[0].value" in _junit_error(junit) and "not a finite number" in _junit_error(junit)


def test_empty_summary_path_writes_no_summary_and_still_gates(
    base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--summary-md "$GITHUB_STEP_SUMMARY"`` outside GitHub Actions: a note, the verdict, the JUnit file."""
    junit = tmp_path / "gate.xml"
    assert cli(["gate", "--candidate", str(base), "--baseline", str(base), "--summary-md", "",
                "--junit", str(junit)]) == 0
    assert "--summary-md is empty" in capsys.readouterr().out
    assert ET.parse(junit).getroot().find("./testsuite/testcase") is not None


def test_unwritable_summary_exits_2_with_junit_error(base: Path, tmp_path: Path) -> None:
    junit = tmp_path / "gate.xml"
    assert cli(["gate", "--candidate", str(base), "--baseline", str(base), "--summary-md", str(tmp_path),
                "--junit", str(junit)]) == 2
    assert "is a directory" in _junit_error(junit)


def test_unexpected_error_exits_2_and_replaces_stale_junit(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A KeyError from a hand-edited file is not a regression (1) and not a traceback; an earlier run's JUnit
    verdict is never left in place."""
    junit = tmp_path / "gate.xml"
    junit.write_text("<testsuites><testsuite><testcase name='stale pass'/></testsuite></testsuites>")

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("metrics")

    monkeypatch.setattr(gate_module, "run_gate", broken)
    assert cli(["gate", "--candidate", str(base), "--baseline", str(base), "--junit", str(junit)]) == 2
    assert "KeyError" in _junit_error(junit) and "stale pass" not in junit.read_text()
    assert "KeyError" in capsys.readouterr().err

    monkeypatch.undo()
    junit.write_text("stale")
    assert cli(["gate", "--candidate", str(tmp_path / "missing"), "--baseline", str(base),
                "--junit", str(junit)]) == 2
    assert "no such run directory" in _junit_error(junit)


def _one_item_subset(run: Path, out: Path, flip: bool) -> Path:
    """``run`` with one correct item moved into its own subset 'tiny' (flipped to wrong when ``flip``) and
    results.json recomputed from the items as a protocol would."""
    shutil.copytree(run, out)
    items = pd.read_parquet(out / "items.parquet")
    row = items.index[items["accuracy"] == 1.0][0]
    items.loc[row, "subset"] = "tiny"
    if flip:
        items.loc[row, "accuracy"] = 0.0
    items.to_parquet(out / "items.parquet", index=False)
    document = json.loads((out / "results.json").read_text())
    document["metric_options"]["sections"] = None
    options = MetricOptions.model_validate(document["metric_options"])
    columns = [c for c in items.columns if c not in ("item_id", "subset", "cluster")]
    document["metrics"] = [m.as_dict() for m in sectioned_metrics(items, columns, options).metric_values()]
    write_json(out / "results.json", document)
    return out


def test_one_flipped_item_in_a_one_item_subset_is_insufficient_data(base: Path, tmp_path: Path) -> None:
    """The bootstrap called this drop of 1.0 significant (p ≈ 0.0005); McNemar's exact test says p = 1/2."""
    baseline = _one_item_subset(base, tmp_path / "b", flip=False)
    candidate = _one_item_subset(base, tmp_path / "c", flip=True)
    junit = tmp_path / "gate.xml"
    code = cli(["gate", "--candidate", str(candidate), "--baseline", str(baseline), "-m", "accuracy@subset:tiny",
                "--junit", str(junit)])
    assert code == 0
    case = ET.parse(junit).getroot().find("./testsuite/testcase")
    assert case is not None and case.find("skipped") is not None and case.find("failure") is None

    # Even with the minimum lowered to 1, the exact test cannot call one flip significant.
    result = run_gate(candidate, baseline, metrics=["accuracy@subset:tiny"], min_n=1)
    (check,) = result.checks
    assert check.diff == -1.0 and check.p_drop == pytest.approx(0.5)
    assert check.passed and not check.insufficient and "McNemar" in check.test


def test_real_drop_still_fails_with_the_small_n_tests(base: Path, tmp_path: Path) -> None:
    """The valid-at-any-n tests keep their power: every correct item made wrong is a significant drop."""
    worse = tmp_path / "worse"
    shutil.copytree(base, worse)
    items = pd.read_parquet(worse / "items.parquet")
    items["accuracy"] = 0.0
    items["mrr"] = items["mrr"].min()
    items.to_parquet(worse / "items.parquet", index=False)
    document = json.loads((worse / "results.json").read_text())
    options = MetricOptions.model_validate(document["metric_options"])
    document["metrics"] = [m.as_dict() for m in sectioned_metrics(items, ["accuracy", "mrr"], options).metric_values()]
    write_json(worse / "results.json", document)
    result = run_gate(worse, base, metrics=["accuracy", "mrr"])
    assert not result.passed and all(not c.passed for c in result.checks)
    assert all(c.p_drop < 0.05 and c.test for c in result.checks)
    assert cli(["gate", "--candidate", str(worse), "--baseline", str(base)]) == 1


def test_markdown_cells_escape_pipes() -> None:
    assert md_cell("chat|hard\nx") == "chat\\|hard x"
