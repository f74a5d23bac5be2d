"""`rmbench compare`: paired differences on real runs (math-robustness, length and random baselines)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from rmbench.analysis.compare import compare_runs, load_run
from rmbench.atomic import write_json
from rmbench.cli import main
from rmbench.metrics.stats import sectioned_means
from rmbench.modelspec import ModelSpec
from rmbench.runner.run import RunConfig, run_suite
from tests.results_helpers import minimal_results


def make_run(root: Path, name: str, engine: str, seed: int = 0, **overrides: object) -> Path:
    out = root / name
    config = RunConfig(
        suite="math-robustness",
        model=ModelSpec(model="", engine=engine, seed=seed),
        out=out,
        cache=root / "cache.sqlite",
        metric_overrides=dict(overrides),
        show_progress=False,
    )
    run_suite(config)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compare-runs")
    return {
        "length": make_run(root, "length", "length"),
        "length_again": make_run(root, "length-again", "length"),
        "random0": make_run(root, "random0", "random", seed=0),
        "length_strict": make_run(root, "length-strict", "length", tie_policy="strict"),
        "random_strict": make_run(root, "random-strict", "random", seed=3, tie_policy="strict"),
    }


def test_same_model_rerun_has_zero_difference(runs: dict[str, Path]) -> None:
    result = compare_runs(load_run(runs["length"]), load_run(runs["length_again"]))
    assert result.only_a == result.only_b == 0
    assert result.shared == len(pd.read_parquet(runs["length"] / "items.parquet"))
    assert result.differences
    for d in result.differences:
        assert d.diff == 0 and d.ci_low == 0 and d.ci_high == 0
        assert d.p_value == 1.0


def test_paired_values_match_the_runs_own_results(runs: dict[str, Path]) -> None:
    """On identical item sets, A and B values are exactly the numbers each results.json reports (same sectioning)."""
    a, b = load_run(runs["length"]), load_run(runs["random0"])
    result = compare_runs(a, b)
    for d in result.differences:
        assert d.value_a == pytest.approx(a.metric(d.metric, d.scope).value, abs=1e-12)
        assert d.value_b == pytest.approx(b.metric(d.metric, d.scope).value, abs=1e-12)
        assert d.diff == pytest.approx(d.value_b - d.value_a, abs=1e-12)
        assert d.n == a.metric(d.metric, d.scope).n


def test_difference_ci_is_the_stats_bootstrap_of_the_per_item_difference(runs: dict[str, Path]) -> None:
    """The paired CI is rmbench.metrics.stats' cluster bootstrap applied to B − A per item (linearity of sectioned means)."""
    a, b = load_run(runs["length"]), load_run(runs["random0"])
    result = compare_runs(a, b, resamples=1000, seed=7)
    joined = a.items.merge(b.items[["item_id", "accuracy"]], on="item_id", suffixes=("_a", "_b"))
    joined["d"] = joined["accuracy_b"] - joined["accuracy_a"]
    sections = a.results.metric_options.sections
    reference = sectioned_means(joined, ["d"], sections, resamples=1000, seed=7)
    for scope, estimates in reference.estimates.items():
        d = result.find("accuracy", scope)
        assert d is not None
        assert d.diff == pytest.approx(estimates["d"].value, abs=1e-12)
        assert d.ci_low == pytest.approx(estimates["d"].ci_low, abs=1e-12)
        assert d.ci_high == pytest.approx(estimates["d"].ci_high, abs=1e-12)


def test_mcnemar_on_binary_outcomes(runs: dict[str, Path]) -> None:
    a, b = load_run(runs["length_strict"]), load_run(runs["random_strict"])
    result = compare_runs(a, b)
    d = result.find("accuracy")
    assert d is not None and d.mcnemar_p is not None
    va = a.items.set_index("item_id")["accuracy"]
    vb = b.items.set_index("item_id")["accuracy"].reindex(va.index)
    a_only, b_only = int(((va == 1) & (vb == 0)).sum()), int(((va == 0) & (vb == 1)).sum())
    assert (d.a_only_correct, d.b_only_correct) == (a_only, b_only)
    assert d.mcnemar_p == pytest.approx(binomtest(b_only, a_only + b_only, 0.5).pvalue)
    # MRR is not a 0/1 outcome: no McNemar for it.
    assert result.find("mrr").mcnemar_p is None


def test_partial_overlap_counts_and_uses_shared_items(runs: dict[str, Path], tmp_path: Path) -> None:
    part = tmp_path / "part"
    shutil.copytree(runs["random0"], part)
    items = pd.read_parquet(part / "items.parquet")
    kept = items.iloc[: len(items) // 2].copy()
    extra = kept.iloc[:3].copy()
    extra["item_id"] = [f"extra-{i}" for i in range(3)]
    pd.concat([kept, extra]).to_parquet(part / "items.parquet", index=False)
    result = compare_runs(load_run(runs["length"]), load_run(part))
    assert result.shared == len(kept)
    assert result.only_a == len(items) - len(kept)
    assert result.only_b == 3
    overall = result.find("accuracy")
    assert overall.n <= len(kept)


def test_cli_json_and_table(runs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(runs["length"]), str(runs["random0"]), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["items"]["only_a"] == 0
    assert document["bootstrap"]["resamples"] >= 1000
    overall = [d for d in document["differences"] if d["scope"] == "overall" and d["metric"] == "accuracy"]
    assert len(overall) == 1 and overall[0]["ci_low"] <= overall[0]["diff"] <= overall[0]["ci_high"]
    assert 0 < overall[0]["p_value"] <= 1

    assert main(["compare", str(runs["length"]), str(runs["random0"])]) == 0
    table = capsys.readouterr().out
    assert "B − A" in table and "accuracy" in table and "shared" in table


def test_refuses_other_suite_version(runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other-version"
    shutil.copytree(runs["random0"], other)
    document = json.loads((other / "results.json").read_text())
    document["suite"]["version"] = f"{document['suite']['version']}-next"
    write_json(other / "results.json", document)
    assert main(["compare", str(runs["length"]), str(other)]) == 2
    assert "different versions of suite" in capsys.readouterr().err


def test_refuses_other_suite(runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other-suite"
    shutil.copytree(runs["random0"], other)
    document = json.loads((other / "results.json").read_text())
    document["suite"]["name"] = "rm-bench"
    write_json(other / "results.json", document)
    assert main(["compare", str(runs["length"]), str(other)]) == 2
    assert "different suites" in capsys.readouterr().err


def test_paired_bootstrap_detects_a_real_difference_and_not_noise() -> None:
    """The test itself, on synthetic outcomes: flipping 15% of the items to wrong is a significant drop, while a
    fresh draw at the same accuracy raises a false alarm in about α of the cases."""
    from rmbench.analysis.compare import LoadedRun

    rng = np.random.default_rng(0)
    n = 600
    base = (rng.random(n) < 0.7).astype(float)
    flipped = base.copy()
    flipped[np.flatnonzero(base == 1)[: int(0.15 * n)]] = 0.0

    def run(values: np.ndarray) -> LoadedRun:
        ids = [f"i{k}" for k in range(n)]
        items = pd.DataFrame({"item_id": ids, "subset": "s", "cluster": ids, "accuracy": values})
        return LoadedRun(Path("."), minimal_results(), items)

    worse = compare_runs(run(base), run(flipped)).find("accuracy")
    assert worse.diff == pytest.approx(-0.15)
    assert worse.p_value < 1e-3 and worse.p_drop < 1e-3 and worse.ci_high < 0
    assert worse.mcnemar_p < 1e-10

    same_model = [compare_runs(run(base), run((rng.random(n) < 0.7).astype(float)), resamples=1000, seed=s)
                  .find("accuracy").p_value for s in range(20)]
    assert sum(p < 0.05 for p in same_model) <= 3  # ≈ 5% false alarms expected
