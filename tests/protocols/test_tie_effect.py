"""Ties made visible (METRICS.md §0): every tie-aware metric records its tied comparisons and its value under the
other policy, in every scope, computed as a second evaluation under that policy would compute it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rmbench.metrics.options import MetricValue
from rmbench.metrics.tie_effect import TIES, with_tie_effect
from rmbench.protocols.base import MetricOptions, ProtocolResult, Section, TiePolicy
from rmbench.protocols.grid import StyleGridProtocol
from rmbench.protocols.pairwise import PairwiseProtocol
from rmbench.protocols.ranking import BestOfNProtocol
from rmbench.results.markdown import console_table, markdown_report
from tests.protocols import test_protocol_grid as grid_helpers
from tests.protocols import test_protocol_pairwise as pairwise_helpers
from tests.protocols import test_protocol_ranking as ranking_helpers

OTHER: dict[TiePolicy, TiePolicy] = {"expected": "strict", "strict": "expected"}
SECTIONS = {"A": Section(subsets=["a1", "a2"], weights={"a1": 3.0, "a2": 1.0}), "B": Section(subsets=["b"])}


def _pairwise_rows(rng: np.random.Generator, n: int) -> list[tuple]:
    # integer scores in a small range: many ties
    return [(f"p{i}", *rng.integers(0, 3, 2).tolist(), ["a1", "a2", "b"][i % 3]) for i in range(n)]


def _ranking_rows(rng: np.random.Generator, n: int) -> list[tuple]:
    return [
        (
            f"r{i}",
            float(rng.integers(0, 3)),
            rng.integers(0, 3, int(rng.integers(1, 5))).tolist(),
            ["a1", "a2", "b"][i % 3],
        )
        for i in range(n)
    ]


def _grid_rows(rng: np.random.Generator, n: int) -> list[tuple]:
    return [
        (f"g{i}", rng.integers(0, 3, 3).tolist(), rng.integers(0, 3, 3).tolist(), ["a1", "a2", "b"][i % 3])
        for i in range(n)
    ]


CASES = {
    "pairwise": (PairwiseProtocol(), pairwise_helpers.scored_items, _pairwise_rows),
    "best_of_n": (BestOfNProtocol(), ranking_helpers.scored_items, _ranking_rows),
    "rmbench_grid": (StyleGridProtocol(), grid_helpers.scored_items, _grid_rows),
}


def _evaluate(case: str, policy: TiePolicy, seed: int = 0) -> ProtocolResult:
    protocol, build, rows = CASES[case]
    items, scores = build(rows(np.random.default_rng(seed), 60))
    return protocol.evaluate(items, scores, MetricOptions(tie_policy=policy, sections=SECTIONS))


@pytest.mark.parametrize("policy", ["expected", "strict"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_other_policy_value_is_what_the_other_policy_reports_in_every_scope(case: str, policy: TiePolicy) -> None:
    this, other = _evaluate(case, policy), _evaluate(case, OTHER[policy])
    assert {m.scope for m in this.metrics} >= {"overall", "section:A", "section:B", "subset:a1"}
    moved = 0
    for metric in this.metrics:
        twin = other.metric(metric.name, metric.scope)
        assert metric.other_policy_value == pytest.approx(twin.value, abs=1e-12), (metric.name, metric.scope)
        assert twin.other_policy_value == pytest.approx(metric.value, abs=1e-12)
        assert metric.ties == twin.ties and metric.ties is not None and metric.ties > 0
        moved += abs(metric.value - twin.value) > 1e-9
    assert moved, "the data has ties: some number must move"
    # the per-item frame a run keeps (items.parquet, paired comparisons) carries no tie bookkeeping
    assert not [c for c in this.per_item.columns if c == TIES or "other_policy" in c]


def test_tie_counts_per_scope_by_hand() -> None:
    # METRICS.md §1 example (1 tie among 3 pairs) in subset a1, one more tie in b, none in a2
    rows = [
        ("a", 2.0, 1.0, "a1"),
        ("b", 1.0, 1.0, "a1"),
        ("c", 0.5, 3.0, "a1"),
        ("d", 4.0, 4.0, "b"),
        ("e", 1, 0, "a2"),
    ]
    items, scores = pairwise_helpers.scored_items(rows)
    result = PairwiseProtocol().evaluate(items, scores, MetricOptions(tie_policy="strict", sections=SECTIONS))
    a1 = result.metric("accuracy", "subset:a1")
    assert (a1.value, a1.other_policy_value, a1.ties) == (pytest.approx(1 / 3), pytest.approx(0.5), 1)
    assert result.metric("accuracy", "subset:a2").ties == 0
    assert result.metric("accuracy", "section:A").ties == 1
    overall = result.metric("accuracy")
    assert overall.ties == 2
    # section A weights a1 3:1 against a2; B is one tied pair; overall = mean of sections
    assert overall.value == pytest.approx(((3 * (1 / 3) + 1 * 1.0) / 4 + 0.0) / 2)
    assert overall.other_policy_value == pytest.approx(((3 * 0.5 + 1 * 1.0) / 4 + 0.5) / 2)


def test_best_of_n_worked_example_records_both_policies() -> None:
    # METRICS.md §2: c=2, b=[1, 2, 2] → g=0, t=2: expected acc 1/3, RR 0.6111…; strict acc 0, RR 1/3
    items, scores = ranking_helpers.scored_items([("x", 2.0, [1.0, 2.0, 2.0])])
    result = BestOfNProtocol().evaluate(items, scores, MetricOptions(tie_policy="strict"))
    accuracy, mrr = result.metric("accuracy"), result.metric("mrr")
    assert (accuracy.value, accuracy.other_policy_value, accuracy.ties) == (0.0, pytest.approx(1 / 3), 2)
    assert (mrr.value, mrr.other_policy_value) == (pytest.approx(1 / 3), pytest.approx((1 + 1 / 2 + 1 / 3) / 3))


def test_metrics_without_the_other_column_are_left_alone() -> None:
    # a metric the frame has no other-policy column for keeps ties and other value unset (and out of results.json)
    value = MetricValue("gold", 1.0, None, None, 1)
    per_item = pd.DataFrame({"item_id": ["a"], "subset": ["s"], "cluster": ["a"], "gold": [1.0], TIES: [0]})
    assert with_tie_effect([value], per_item, None) == [value]
    assert "ties" not in value.as_dict() and "other_policy_value" not in value.as_dict()


def _document(result: ProtocolResult, policy: TiePolicy) -> dict:
    return {
        "schema_version": 1,
        "rmbench_version": "0",
        "suite": {"name": "s", "version": "1", "protocol": "pairwise", "content_hash": "h"},
        "data": [],
        "model": {"spec": {"model": "m", "engine": "length"}, "fingerprint": "f", "engine": {}},
        "engine_options": {},
        "metric_options": MetricOptions(tie_policy=policy).model_dump(),
        "limit": None,
        "metrics": [m.as_dict() for m in result.metrics],
        "excluded": {},
        "counts": {
            "items": 3,
            "items_evaluated": 3,
            "requests": 6,
            "unique_requests": 6,
            "padding_efficiency": None,
            "truncated": 0,
            "invalid_scores": 0,
        },
        "extra": {},
        "environment": {"python": "3", "packages": {}, "git": {"commit": None, "dirty": None}},
    }


def test_terminal_table_and_report_show_the_other_value_only_where_ties_move_it() -> None:
    items, scores = pairwise_helpers.scored_items(pairwise_helpers.EXAMPLE)
    strict = PairwiseProtocol().evaluate(items, scores, MetricOptions(tie_policy="strict"))
    report = markdown_report(_document(strict, "strict"))
    assert "| if ties expected |" in report
    assert "| overall | accuracy | 0.3333 |" in report and "| 0.5000 (1 ties) |" in report
    table = console_table(_document(strict, "strict"))
    assert [c.header for c in table.columns][-1] == "if ties expected"

    no_ties = [("a", 2.0, 1.0), ("b", 0.5, 3.0)]
    items, scores = pairwise_helpers.scored_items(no_ties)
    plain = PairwiseProtocol().evaluate(items, scores, MetricOptions(tie_policy="strict"))
    assert plain.metric("accuracy").ties == 0
    assert "if ties" not in markdown_report(_document(plain, "strict"))
    assert len(console_table(_document(plain, "strict")).columns) == 5
