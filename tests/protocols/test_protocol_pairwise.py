"""PairwiseProtocol (METRICS.md §1): worked example, sections, exclusions, invariances."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rmbench.errors import DataError, ScoreError
from rmbench.items import PreferenceItem, Response, user_turn
from rmbench.protocols import get_protocol
from rmbench.protocols.aggregate import aggregate_steps, scalar
from rmbench.protocols.base import MetricOptions, Section
from rmbench.protocols.pairwise import PairwiseProtocol
from rmbench.requests import Score, ScoreRequest


def scored_items(rows: list[tuple], subset: str = "default") -> tuple[list[PreferenceItem], dict[str, Score]]:
    """rows: (id, chosen score, rejected score[, subset]) → items and their scores by request key."""
    items, scores = [], {}
    for row in rows:
        item_id, chosen, rejected = row[:3]
        item = PreferenceItem(
            id=item_id,
            prompt=user_turn(f"prompt {item_id}"),
            chosen=(Response(f"{item_id} good"),),
            rejected=(Response(f"{item_id} bad"),),
            subset=row[3] if len(row) > 3 else subset,
        )
        items.append(item)
        for response, value in ((item.chosen[0], chosen), (item.rejected[0], rejected)):
            score = value if isinstance(value, Score) else Score(value=float(value))
            scores[ScoreRequest.of(item.prompt, response).key] = score
    return items, scores


EXAMPLE = [("a", 2.0, 1.0), ("b", 1.0, 1.0), ("c", 0.5, 3.0)]


def test_worked_example_expected_and_strict() -> None:
    items, scores = scored_items(EXAMPLE)
    protocol = PairwiseProtocol()
    expected = protocol.evaluate(items, scores, MetricOptions())
    assert expected.metric("accuracy").value == 0.5
    assert expected.per_item["accuracy"].tolist() == [1.0, 0.5, 0.0]
    assert list(expected.per_item.columns) == ["item_id", "subset", "cluster", "accuracy"]
    assert expected.extra["tie_policy"] == "expected" and expected.extra["aggregate"] == "min"
    strict = protocol.evaluate(items, scores, MetricOptions(tie_policy="strict"))
    assert strict.metric("accuracy").value == pytest.approx(1 / 3, abs=1e-15)
    assert strict.extra["tie_policy"] == "strict"
    metric = expected.metric("accuracy")
    assert metric.n == 3 and metric.ci_low <= metric.value <= metric.ci_high


def test_registered_by_name_and_requests_are_keyed() -> None:
    protocol = get_protocol("pairwise")
    assert isinstance(protocol, PairwiseProtocol) and protocol.item_type is PreferenceItem
    items, scores = scored_items(EXAMPLE)
    requests = protocol.requests(items)
    assert len(requests) == 6 and {r.key for r in requests} == set(scores)


def test_sections_weight_subsets_by_count_and_overall_is_the_mean_of_sections() -> None:
    rows = [("1", 1, 0, "x1"), ("2", 1, 0, "x1"), ("3", 0, 1, "x2"), ("4", 0, 1, "y"), ("5", 1, 0, "y")]
    items, scores = scored_items(rows)
    options = MetricOptions(sections={"X": Section(subsets=["x1", "x2"]), "Y": Section(subsets=["y"])})
    result = PairwiseProtocol().evaluate(items, scores, options)
    assert result.metric("accuracy", "section:X").value == pytest.approx(2 / 3)
    assert result.metric("accuracy", "section:Y").value == 0.5
    assert result.metric("accuracy").value == pytest.approx((2 / 3 + 0.5) / 2)
    assert result.metric("accuracy", "subset:x2").value == 0.0
    weighted = MetricOptions(sections={"X": Section(subsets=["x1", "x2"], weights={"x1": 1, "x2": 1})})
    assert PairwiseProtocol().evaluate(items, scores, weighted).metric("accuracy", "section:X").value == 0.5


def test_nan_and_missing_scores_are_excluded_and_counted_never_zero() -> None:
    items, scores = scored_items([*EXAMPLE, ("d", math.nan, 1.0), ("e", 1.0, math.inf)])
    extra_item, _ = scored_items([("f", 1.0, 0.0)])
    result = PairwiseProtocol().evaluate([*items, *extra_item], scores, MetricOptions())
    assert result.excluded == {"invalid_score": 2, "missing_score": 1}
    assert result.metric("accuracy").value == 0.5 and result.metric("accuracy").n == 3
    assert result.per_item["item_id"].tolist() == ["a", "b", "c"]


def test_all_scores_invalid_is_an_error() -> None:
    items, scores = scored_items([("d", math.nan, 1.0)])
    with pytest.raises(ScoreError):
        PairwiseProtocol().evaluate(items, scores, MetricOptions())


def test_wrong_shape_names_the_item() -> None:
    item = PreferenceItem("bad-1", user_turn("p"), (Response("a"), Response("b")), (Response("c"),))
    with pytest.raises(DataError, match="record bad-1, field 'chosen'"):
        PairwiseProtocol().evaluate([item], {}, MetricOptions())


def test_step_scores_are_aggregated_before_comparing() -> None:
    items, scores = scored_items([("a", Score(value=math.nan, steps=(0.9, 0.2, 0.8)), Score(value=0.5))])
    assert PairwiseProtocol().evaluate(items, scores, MetricOptions(aggregate="min")).metric("accuracy").value == 0.0
    assert PairwiseProtocol().evaluate(items, scores, MetricOptions(aggregate="last")).metric("accuracy").value == 1.0
    items, scores = scored_items([("a", Score(value=1.0, steps=(0.9, math.nan)), Score(value=0.5))])
    with pytest.raises(ScoreError):
        PairwiseProtocol().evaluate(items, scores, MetricOptions())


def test_step_aggregation_worked_example() -> None:
    steps = [0.9, 0.2, 0.8]
    assert aggregate_steps(steps, "min") == 0.2
    assert aggregate_steps(steps, "prod") == pytest.approx(0.144, abs=1e-15)
    assert aggregate_steps(steps, "last") == 0.8
    assert aggregate_steps(steps, "mean") == pytest.approx(0.6333333333333333, abs=1e-15)
    assert aggregate_steps(steps, "max") == 0.9
    assert scalar(Score(value=7.0), "min") == 7.0
    assert scalar(Score(value=7.0, steps=tuple(steps)), "min") == 0.2
    with pytest.raises(ValueError):
        aggregate_steps([], "min")


score_pairs = st.lists(
    st.tuples(st.integers(-3, 3), st.integers(-3, 3), st.sampled_from(["s1", "s2"])), min_size=2, max_size=12
)


@settings(max_examples=40, deadline=None)
@given(pairs=score_pairs, order=st.randoms(use_true_random=False), shift=st.integers(-100, 100))
def test_permuting_items_and_shifting_scores_change_nothing(pairs: list, order, shift: int) -> None:
    rows = [(f"i{k}", c, r, s) for k, (c, r, s) in enumerate(pairs)]
    options = MetricOptions(bootstrap_resamples=1000)
    items, scores = scored_items(rows)
    reference = PairwiseProtocol().evaluate(items, scores, options)

    shuffled = list(rows)
    order.shuffle(shuffled)
    items, scores = scored_items([(i, c + shift, r + shift, s) for i, c, r, s in shuffled])
    other = PairwiseProtocol().evaluate(items, scores, options)
    for metric in reference.metrics:
        moved = other.metric(metric.name, metric.scope)
        assert (moved.value, moved.ci_low, moved.ci_high, moved.n) == pytest.approx(
            (metric.value, metric.ci_low, metric.ci_high, metric.n), abs=1e-12
        )


def test_items_sharing_a_prompt_are_one_cluster() -> None:
    items, scores = scored_items(EXAMPLE)
    shared = [PreferenceItem(i.id, i.prompt, i.chosen, i.rejected, meta={"cluster": "same"}) for i in items]
    result = PairwiseProtocol().evaluate(shared, scores, MetricOptions())
    assert set(result.per_item["cluster"]) == {"same"}
    metric = result.metric("accuracy")
    assert metric.ci_low == metric.ci_high == 0.5  # one cluster: every resample is the whole data
    assert np.isfinite(metric.value)
