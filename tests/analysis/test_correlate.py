"""`rmbench correlate`: coefficients against scipy, explicit model matching, bootstrap CIs over models, real runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from rmbench.analysis.correlate import MetricRef, correlate, read_downstream
from rmbench.errors import RmbenchError
from rmbench.modelspec import ModelSpec
from rmbench.runner.run import RunConfig, run_suite
from tests._shared import shared_path
from tests.helpers import cli


def test_coefficients_match_scipy_and_cis_cover_them() -> None:
    rng = np.random.default_rng(1)
    x = {f"m{i}": float(v) for i, v in enumerate(rng.random(12))}
    y = {k: v + 0.3 * float(rng.random()) for k, v in x.items()}
    result = correlate(x, y, x_name="x", y_name="y", resamples=1000, seed=0)
    xs, ys = np.array([x[m] for m in result.labels]), np.array([y[m] for m in result.labels])
    assert result.coefficient("spearman").value == pytest.approx(stats.spearmanr(xs, ys).statistic)
    assert result.coefficient("kendall").value == pytest.approx(stats.kendalltau(xs, ys).statistic)
    assert result.coefficient("pearson").value == pytest.approx(stats.pearsonr(xs, ys).statistic)
    for c in result.coefficients:
        assert c.ci_low <= c.value <= c.ci_high
    assert result.n == 12 and not result.small_n
    again = correlate(x, y, x_name="x", y_name="y", resamples=1000, seed=0)
    assert again.as_dict() == result.as_dict()  # seeded


def test_matching_is_explicit_and_small_n_is_flagged() -> None:
    x = {"a": 0.1, "b": 0.5, "c": 0.3, "d": 0.9, "only-x": 0.2}
    y = {"a": 1.0, "b": 2.0, "c": 1.5, "d": 3.0, "only-y": 9.9}
    result = correlate(x, y, x_name="x", y_name="y", resamples=1000)
    assert result.labels == ["a", "b", "c", "d"]
    assert result.only_x == ["only-x"] and result.only_y == ["only-y"]
    assert result.small_n and any("only 4 models" in w for w in result.warnings)
    document = result.as_dict()
    assert document["small_n"] is True and document["matching"]["only_y"] == ["only-y"]
    with pytest.raises(RmbenchError, match="matched"):
        correlate({"a": 1.0, "b": 2.0}, {"a": 1.0, "b": 3.0}, x_name="x", y_name="y")


def test_metric_reference_syntax() -> None:
    assert MetricRef.parse("accuracy") == MetricRef("accuracy")
    assert MetricRef.parse("rewardmath/mrr") == MetricRef("mrr", suite="rewardmath")
    ref = MetricRef.parse("rm-bench/accuracy@section:chat")
    assert (ref.suite, ref.name, ref.scope) == ("rm-bench", "accuracy", "section:chat")
    assert str(ref) == "rm-bench/accuracy@section:chat"


def test_downstream_csv_errors_name_the_line(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("model,score,notes\nlength,0.4,x\nrandom,0.1,\n")
    assert read_downstream(good) == {"length": 0.4, "random": 0.1}
    bad = tmp_path / "bad.csv"
    bad.write_text("model,score\nlength,high\n")
    with pytest.raises(RmbenchError, match="line 2"):
        read_downstream(bad)
    duplicate = tmp_path / "dup.csv"
    duplicate.write_text("model,score\na,1\na,2\n")
    with pytest.raises(RmbenchError, match="twice"):
        read_downstream(duplicate)


@pytest.fixture(scope="module")
def baseline_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("correlate-runs")
    for name, engine, seed in (("length", "length", 0), ("random-0", "random", 0), ("random-1", "random", 1),
                               ("random-2", "random", 2)):
        spec = ModelSpec(model="", engine=engine, seed=seed)
        run_suite(RunConfig(suite="math-robustness", model=spec, out=root / "runs" / name, cache=root / "c.sqlite",
                            show_progress=False))
    return root


def test_cli_with_downstream_csv_on_real_runs(baseline_runs: Path, tmp_path: Path) -> None:
    downstream = tmp_path / "downstream.csv"
    downstream.write_text("model,score\nlength,0.9\nrandom-0,0.2\nrandom-1,0.1\nrandom-2,0.3\nnot-run,0.5\n")
    plot, report, document = tmp_path / "c.png", tmp_path / "c.md", tmp_path / "c.json"
    code = cli([
        "correlate", str(baseline_runs / "runs" / "*"), "--x", "math-robustness/accuracy", "--downstream",
        str(downstream), "--plot", str(plot), "--markdown", str(report), "--json-file", str(document),
    ])
    assert code == 0
    result = json.loads(document.read_text())
    assert result["n"] == 4 and result["small_n"] is True
    assert result["matching"]["matched"] == ["length", "random-0", "random-1", "random-2"]
    assert result["matching"]["only_y"] == ["not-run"]
    assert {c["method"] for c in result["coefficients"]} == {"spearman", "kendall", "pearson"}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "n = 4 models" in report.read_text()


def test_cli_needs_exactly_one_y(baseline_runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["correlate", str(baseline_runs / "runs" / "*"), "--x", "accuracy"]) == 2
    assert "exactly one of --y" in capsys.readouterr().err


def test_rewardmath_accuracy_vs_mrr(tmp_path: Path) -> None:
    """Across the published RewardMATH score files imported as runs: accuracy and MRR rank models alike."""
    scores = shared_path("rewardmath/model_scores")
    files = sorted(scores.glob("*_reward.json.gz"))
    for file in files:
        out = tmp_path / "runs" / file.name.removesuffix("_reward.json.gz")
        assert cli(["evaluate-scores", str(file), "--format", "rewardmath", "--out", str(out)]) == 0
    document = tmp_path / "corr.json"
    code = cli(["correlate", str(tmp_path / "runs" / "*"), "--x", "rewardmath/accuracy", "--y", "rewardmath/mrr",
                "--json-file", str(document)])
    assert code == 0
    result = json.loads(document.read_text())
    direct = [f for f in files if "pairwise" not in f.name]
    assert result["n"] == len(direct)  # pairwise-judge files have no MRR: left out, and reported as such
    assert len(result["matching"]["only_x"]) == len(files) - len(direct)
    spearman = next(c for c in result["coefficients"] if c["method"] == "spearman")
    assert spearman["value"] > 0.8 and spearman["ci_low"] > 0.5


def test_vectorized_bootstrap_coefficients_equal_scipy_with_ties() -> None:
    from rmbench.analysis.correlate import resampled_coefficients

    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, (100, 9)).astype(float)  # many ties, as LLM-judge ratings and bootstrap duplicates give
    y = x + rng.integers(0, 3, (100, 9))
    draws = resampled_coefficients(x, y)
    for i in range(100):
        if np.ptp(x[i]) == 0 or np.ptp(y[i]) == 0:
            assert np.isnan(draws["kendall"][i])
            continue
        assert draws["kendall"][i] == pytest.approx(stats.kendalltau(x[i], y[i]).statistic)
        assert draws["spearman"][i] == pytest.approx(stats.spearmanr(x[i], y[i]).statistic)
        assert draws["pearson"][i] == pytest.approx(stats.pearsonr(x[i], y[i]).statistic)
