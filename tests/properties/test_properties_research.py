"""Property-based tests (hypothesis) for the research protocols: contrast consistency (METRICS.md §6) and
overoptimization curves (§8). Permuting the items leaves every metric unchanged, and so does adding one constant to
every score (both protocols read score differences and orderings only)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rmbench.items import ContrastItem, Response, SampleSet, user_turn
from rmbench.protocols.base import MetricOptions
from rmbench.protocols.contrast import ContrastProtocol, four_requests
from rmbench.protocols.overoptimization import OveroptimizationProtocol
from rmbench.requests import Score, ScoreRequest

FAST = settings(max_examples=20, deadline=None)
OPTIONS = MetricOptions(bootstrap_resamples=1000)
small = st.integers(-3, 3)  # small integer scores: ties are common


def values(result) -> dict[tuple[str, str], float]:
    return {(m.name, m.scope): m.value for m in result.metrics}


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert (math.isnan(a[key]) and math.isnan(b[key])) or a[key] == pytest.approx(b[key], abs=1e-9), key


def shifted(scores: dict[str, Score], by: float) -> dict[str, Score]:
    return {key: Score(value=score.value + by) for key, score in scores.items()}


# --- contrast ---------------------------------------------------------------------------------------------------------

contrast_rows = st.lists(st.tuples(st.lists(small, min_size=4, max_size=4), st.sampled_from(["a", "b"])),
                         min_size=1, max_size=8)


def contrast_case(rows: list) -> tuple[list[ContrastItem], dict[str, Score]]:
    items, scores = [], {}
    for k, (four, subset) in enumerate(rows):
        item = ContrastItem(id=f"c{k}", q1=user_turn(f"q{k}a"), q2=user_turn(f"q{k}b"), r1=Response(f"r{k}a"),
                            r2=Response(f"r{k}b"), subset=subset)
        items.append(item)
        scores.update({request.key: Score(value=float(v)) for request, v in zip(four_requests(item), four)})
    return items, scores


@FAST
@given(rows=contrast_rows, seed=st.integers(0, 10_000), shift=st.integers(-1000, 1000))
def test_contrast_metrics_ignore_item_order_and_a_score_shift(rows: list, seed: int, shift: int) -> None:
    items, scores = contrast_case(rows)
    protocol = ContrastProtocol()
    base = values(protocol.evaluate(items, scores, OPTIONS))
    permuted = items[:]
    random.Random(seed).shuffle(permuted)
    assert_same(values(protocol.evaluate(permuted, scores, OPTIONS)), base)
    assert_same(values(protocol.evaluate(items, shifted(scores, shift), OPTIONS)), base)


# --- overoptimization -------------------------------------------------------------------------------------------------

pool_rows = st.lists(st.lists(st.tuples(small, small), min_size=4, max_size=4), min_size=2, max_size=6)


def overopt_case(rows: list) -> tuple[list[SampleSet], dict[str, Score]]:
    items, scores = [], {}
    for i, pool in enumerate(rows):
        item = SampleSet(id=f"p{i}", prompt=user_turn(f"prompt {i}"),
                         responses=tuple(Response(f"answer {i}.{j}") for j in range(len(pool))),
                         gold=tuple(float(gold) for _, gold in pool))
        items.append(item)
        for response, (proxy, _) in zip(item.responses, pool):
            scores[ScoreRequest.of(item.prompt, response).key] = Score(value=float(proxy))
    return items, scores


def curve_values(result) -> dict[tuple[str, str], float]:
    """Best-of-n values and gains (the fit's α, β are deterministic functions of these, checked via them)."""
    return {key: v for key, v in values(result).items() if key[0].startswith(("gold_", "proxy_"))}


@FAST
@given(rows=pool_rows, seed=st.integers(0, 10_000), shift=st.integers(-1000, 1000))
def test_overoptimization_curves_ignore_item_order_and_a_proxy_shift(rows: list, seed: int, shift: int) -> None:
    items, scores = overopt_case(rows)
    protocol = OveroptimizationProtocol()
    base = curve_values(protocol.evaluate(items, scores, OPTIONS))
    permuted = items[:]
    random.Random(seed).shuffle(permuted)
    assert_same(curve_values(protocol.evaluate(permuted, scores, OPTIONS)), base)
    # The proxy only ranks responses within a pool: shifting it moves proxy_bon by the shift, gold not at all.
    moved = curve_values(protocol.evaluate(items, shifted(scores, shift), OPTIONS))
    for (name, scope), value in base.items():
        expected = value + shift if name.startswith("proxy_bon_") else value
        assert moved[(name, scope)] == pytest.approx(expected, abs=1e-9), name


# --- probing ----------------------------------------------------------------------------------------------------------


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), shift=st.integers(-1000, 1000))
def test_probing_metrics_ignore_item_order_and_a_reward_shift(seed: int, shift: int) -> None:
    """Probes are fitted on the train items; their order and a constant added to every reward change nothing."""
    from rmbench.protocols.probing import ProbingProtocol
    from tests.protocols.test_protocol_probing import _data, _synthetic

    direction = [1.0, -0.5, 0.25, 0.0, 0.5, -1.0]
    rows = _synthetic(lambda x, rng: (x @ direction) > 0, n_train=40, n_test=20, width=6, seed=3)
    items, scores = _data(rows)
    protocol = ProbingProtocol()
    base = values(protocol.evaluate(items, scores, OPTIONS))
    permuted = items[:]
    random.Random(seed).shuffle(permuted)
    assert_same(values(protocol.evaluate(permuted, scores, OPTIONS)), base)
    moved = {key: Score(value=s.value + shift, hidden=s.hidden) for key, s in scores.items()}
    assert_same(values(protocol.evaluate(items, moved, OPTIONS)), base)
