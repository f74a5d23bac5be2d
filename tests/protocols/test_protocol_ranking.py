"""BestOfNProtocol (METRICS.md §2): worked examples, ragged N, exclusions and invariances."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rmbench.errors import DataError
from rmbench.items import PreferenceItem, Response, user_turn
from rmbench.protocols import get_protocol
from rmbench.protocols.base import MetricOptions
from rmbench.protocols.ranking import BestOfNProtocol
from rmbench.requests import Score, ScoreRequest


def scored_items(rows: list[tuple]) -> tuple[list[PreferenceItem], dict[str, Score]]:
    """rows: (id, good score, [bad scores][, subset]) → items and their scores by request key."""
    items, scores = [], {}
    for row in rows:
        item_id, good, bad = row[:3]
        item = PreferenceItem(
            id=item_id,
            prompt=user_turn(f"prompt {item_id}"),
            chosen=(Response(f"{item_id} good"),),
            rejected=tuple(Response(f"{item_id} bad {j}") for j in range(len(bad))),
            subset=row[3] if len(row) > 3 else "default",
        )
        items.append(item)
        for response, value in zip((*item.chosen, *item.rejected), (good, *bad)):
            scores[ScoreRequest.of(item.prompt, response).key] = Score(value=float(value))
    return items, scores


EXAMPLES = [("a", 2.0, [1.0, 2.0, 2.0]), ("b", 0.9, [0.5, 0.9, 1.2]), ("c", 5.0, [1.0, 2.0, 3.0])]


def test_worked_examples_per_item_and_means() -> None:
    items, scores = scored_items(EXAMPLES)
    result = BestOfNProtocol().evaluate(items, scores, MetricOptions())
    assert result.per_item["accuracy"].tolist() == pytest.approx([1 / 3, 0.0, 1.0], abs=1e-12)
    assert result.per_item["mrr"].tolist() == pytest.approx([0.611111111111111, 0.416666666666667, 1.0], abs=1e-12)
    assert result.metric("accuracy").value == pytest.approx((1 / 3 + 0 + 1) / 3, abs=1e-12)
    assert result.metric("mrr").value == pytest.approx((11 / 18 + 5 / 12 + 1) / 3, abs=1e-12)
    assert list(result.per_item.columns) == ["item_id", "subset", "cluster", "accuracy", "mrr"]
    assert result.extra["n_rejected"] == [3]


def test_strict_policy() -> None:
    items, scores = scored_items(EXAMPLES)
    result = BestOfNProtocol().evaluate(items, scores, MetricOptions(tie_policy="strict"))
    assert result.per_item["accuracy"].tolist() == [0.0, 0.0, 1.0]
    assert result.per_item["mrr"].tolist() == pytest.approx([1 / 3, 1 / 3, 1.0])
    assert result.extra["tie_policy"] == "strict"


def test_rewardbench2_best_of_4_partial_credit_at_the_max() -> None:
    items, scores = scored_items([("x", 3.0, [3.0, 1.0, 2.0]), ("y", 1.0, [2.0, 0.0, 0.0])])
    result = BestOfNProtocol().evaluate(items, scores, MetricOptions())
    assert result.per_item["accuracy"].tolist() == [0.5, 0.0]


def test_ragged_number_of_rejected_and_pairwise_as_n1() -> None:
    items, scores = scored_items([("p", 1.0, [1.0]), ("q", 2.0, [1.0, 3.0, 0.0, 5.0])])
    result = BestOfNProtocol().evaluate(items, scores, MetricOptions())
    assert result.per_item["accuracy"].tolist() == [0.5, 0.0]
    assert result.per_item["mrr"].tolist() == pytest.approx([(1 + 1 / 2) / 2, 1 / 3])
    assert result.extra["n_rejected"] == [1, 4]


def test_invalid_scores_exclude_the_item() -> None:
    items, scores = scored_items([*EXAMPLES, ("d", 1.0, [math.nan, 0.0])])
    result = BestOfNProtocol().evaluate(items, scores, MetricOptions())
    assert result.excluded == {"invalid_score": 1}
    assert result.metric("accuracy").n == 3


def test_needs_exactly_one_chosen() -> None:
    item = PreferenceItem("two", user_turn("p"), (Response("a"), Response("b")), (Response("c"),))
    with pytest.raises(DataError, match="exactly 1 chosen"):
        BestOfNProtocol().evaluate([item], {}, MetricOptions())
    assert isinstance(get_protocol("best_of_n"), BestOfNProtocol)


rows_strategy = st.lists(
    st.tuples(st.integers(0, 3), st.lists(st.integers(0, 3), min_size=1, max_size=4), st.sampled_from(["u", "v"])),
    min_size=2,
    max_size=10,
)


@settings(max_examples=40, deadline=None)
@given(rows=rows_strategy, order=st.randoms(use_true_random=False), shift=st.integers(-50, 50))
def test_permuting_items_and_shifting_scores_change_nothing(rows: list, order, shift: int) -> None:
    named = [(f"i{k}", good, bad, subset) for k, (good, bad, subset) in enumerate(rows)]
    options = MetricOptions(bootstrap_resamples=1000)
    reference = BestOfNProtocol().evaluate(*scored_items(named), options)
    order.shuffle(named)
    moved = [(i, g + shift, [b + shift for b in bad], s) for i, g, bad, s in named]
    other = BestOfNProtocol().evaluate(*scored_items(moved), options)
    for metric in reference.metrics:
        got = other.metric(metric.name, metric.scope)
        assert (got.value, got.ci_low, got.ci_high) == pytest.approx(
            (metric.value, metric.ci_low, metric.ci_high), abs=1e-12
        )
