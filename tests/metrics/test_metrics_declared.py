"""Every metric a protocol reports is declared (direction, CI, kind), and the gate reads those declarations."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from rmbench.analysis.gate import run_gate
from rmbench.cli import main
from rmbench.metrics.declared import DECLARATIONS, Direction, Kind, UndeclaredMetricError, declared, find
from rmbench.modelspec import ModelSpec
from rmbench.protocols import PROTOCOLS
from rmbench.results.io import dumps_results
from rmbench.runner.run import RunConfig, run_suite
from tests.results_helpers import minimal_results

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.json")), ids=lambda p: p.stem)
def test_every_golden_metric_is_declared_for_its_protocol(path: Path) -> None:
    golden = json.loads(path.read_text(encoding="utf-8"))
    protocol = golden["suite"]["protocol"]
    for _scope, name, *_ in golden["metrics"]:
        assert declared(name, protocol).name in (name, name.rstrip("0123456789") + "{n}")


def test_every_protocol_declares_its_metrics() -> None:
    from rmbench.protocols import pairwise_judge

    assert set(PROTOCOLS) <= set(DECLARATIONS)
    assert all(DECLARATIONS[p] for p in PROTOCOLS)
    for name in pairwise_judge.METRICS:
        assert declared(name, "pairwise_judge")
    for name in ("accuracy", "mrr", "best_of_4_accuracy", "pairwise_accuracy"):  # evaluate-scores, both formats
        assert declared(name, "best_of_n")


def test_undeclared_metric_fails_clearly() -> None:
    assert find("no_such_metric") is None
    with pytest.raises(UndeclaredMetricError, match="'no_such_metric' is not declared"):
        declared("no_such_metric")


def test_directions_kinds_and_targets() -> None:
    assert declared("gold_bon_16", "overoptimization").direction is Direction.HIGHER
    beta = declared("beta", "overoptimization")
    assert beta.direction is Direction.LOWER and beta.kind is Kind.PARAMETER and not beta.gated_by_default
    assert beta.worsening(0.1, 0.3) == pytest.approx(0.2)
    rate = declared("first_position_rate", "pairwise_judge")
    assert rate.direction is Direction.TARGET and rate.target == 0.5
    assert rate.worsening(0.5, 0.7) == pytest.approx(0.2) and rate.worsening(0.7, 0.55) < 0
    assert not declared("majority_accuracy", "probing").gated_by_default
    assert declared("accuracy").gated_by_default


# --- the gate reads each metric's direction --------------------------------------------------------------------------


def bare(tmp_path: Path, name: str, protocol: str, metrics: dict[str, tuple[float, float, float]]) -> Path:
    """A bare results.json (no items.parquet: the gate tests unpaired, from the CIs)."""
    records = [{"name": m, "scope": "overall", "value": v, "ci_low": lo, "ci_high": hi, "n": 400,
                "method": "bootstrap-percentile"} for m, (v, lo, hi) in metrics.items()]
    path = tmp_path / name / "results.json"
    path.parent.mkdir(parents=True)
    path.write_text(dumps_results(minimal_results(protocol=protocol, metrics=records)), encoding="utf-8")
    return path


def test_a_lower_is_better_metric_fails_the_gate_when_it_rises(tmp_path: Path) -> None:
    base = bare(tmp_path, "a", "overoptimization", {"gold_gain": (0.3, 0.28, 0.32), "beta": (0.10, 0.09, 0.11)})
    worse = bare(tmp_path, "b", "overoptimization", {"gold_gain": (0.3, 0.28, 0.32), "beta": (0.20, 0.19, 0.21)})
    better = bare(tmp_path, "c", "overoptimization", {"gold_gain": (0.3, 0.28, 0.32), "beta": (0.02, 0.01, 0.03)})
    failed = run_gate(worse, base, metrics=["beta"])
    assert not failed.passed and failed.checks[0].direction == "lower" and "rose by 0.1000" in failed.checks[0].reason
    assert main(["gate", "--candidate", str(worse), "--baseline", str(base), "--metric", "beta"]) == 1
    assert run_gate(better, base, metrics=["beta"]).passed  # a fall is an improvement


def test_a_target_metric_fails_when_it_moves_away_from_its_target(tmp_path: Path) -> None:
    base = bare(tmp_path, "a", "pairwise_judge", {"first_position_rate": (0.52, 0.50, 0.54)})
    away = bare(tmp_path, "b", "pairwise_judge", {"first_position_rate": (0.40, 0.38, 0.42)})
    toward = bare(tmp_path, "c", "pairwise_judge", {"first_position_rate": (0.50, 0.48, 0.52)})
    failed = run_gate(away, base)
    assert not failed.passed and "moved away from target 0.5" in failed.checks[0].reason
    assert run_gate(toward, base).passed


def test_parameters_are_not_gated_by_default(tmp_path: Path) -> None:
    base = bare(tmp_path, "a", "overoptimization", {"gold_gain": (0.3, 0.28, 0.32), "alpha": (1.0, 0.9, 1.1)})
    cand = bare(tmp_path, "b", "overoptimization", {"gold_gain": (0.3, 0.28, 0.32), "alpha": (0.2, 0.1, 0.3)})
    result = run_gate(cand, base)
    assert [c.metric for c in result.checks] == ["gold_gain"] and result.passed
    assert any("not gated by default" in note and "alpha" in note for note in result.notes)
    assert not run_gate(cand, base, metrics=["alpha"]).passed  # named explicitly, it is gated


def test_paired_gate_on_a_real_overoptimization_run(tmp_path: Path) -> None:
    """With items.parquet on both sides the rise of a lower-is-better column is tested paired, and the default
    gate leaves the fitted parameters alone."""
    base = tmp_path / "base"
    run_suite(RunConfig(suite="bon-generated", model=ModelSpec(model="", engine="length"), out=base,
                        cache=tmp_path / "c.sqlite", show_progress=False))
    cand = tmp_path / "cand"
    shutil.copytree(base, cand)
    items = pd.read_parquet(cand / "items.parquet")
    items["beta"] = items["beta"] + 0.5
    items.to_parquet(cand / "items.parquet", index=False)
    default = run_gate(cand, base)
    assert default.passed and not {"alpha", "beta", "d_star", "n_star"} & {c.metric for c in default.checks}
    gated = run_gate(cand, base, metrics=["beta"])
    check = gated.checks[0]
    assert check.method == "paired" and not check.passed and check.diff == pytest.approx(0.5)


def test_leaderboard_ranks_a_lower_is_better_column_smallest_first(tmp_path: Path) -> None:
    from rmbench.report.leaderboard import build_from_config

    for name, beta in (("steep", 0.30), ("flat", 0.05), ("middle", 0.10)):
        bare(tmp_path / "runs", name, "overoptimization", {"beta": (beta, beta - 0.01, beta + 0.01)})
    (tmp_path / "board.yaml").write_text(
        "name: fit\ntitle: Fit\nruns: [runs/*/results.json]\noverall: false\n"
        "columns:\n  - {suite: x, metric: beta}\n"
    )
    board, _ = build_from_config(tmp_path / "board.yaml")
    assert [r.label for r in board.rows] == ["flat", "middle", "steep"]
    page = (tmp_path / "fit.html").read_text()
    assert 'data-default="asc" title="x/beta"' in page
    assert '<td class="num best" data-v="0.050000">' in page


@pytest.mark.parametrize(
    ("suite", "protocol"),
    [("math-robustness", "best_of_n"), ("bon-generated", "overoptimization"), ("contrast-generated", "contrast")],
)
def test_each_ci_records_the_percentile_rule_its_declaration_names(tmp_path: Path, suite: str, protocol: str) -> None:
    outcome = run_suite(RunConfig(suite=suite, model=ModelSpec.build({"model": "", "engine": "length"}),
                                  out=tmp_path / "run", cache=tmp_path / "c.sqlite", show_progress=False))
    recorded = json.loads((outcome.out / "results.json").read_text())["metrics"]
    with_ci = [m for m in recorded if m["ci_low"] is not None]
    assert with_ci
    for metric in with_ci:
        assert metric["method"] == declared(metric["name"], protocol).recorded_method, metric["name"]
