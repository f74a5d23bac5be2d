"""rmbench.metrics.stats: the §0–§2 worked examples, tie-policy properties, and the seeded cluster bootstrap."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rmbench.metrics.bootstrap as bootstrap_module
from rmbench.errors import SuiteError
from rmbench.metrics.stats import (
    bootstrap,
    one_vs_many_accuracy,
    padded,
    pairwise_outcome,
    reciprocal_rank,
    sectioned_means,
    subsampled_accuracy,
    win_tie_counts,
)
from rmbench.protocols.base import Section


def one_item(good: float, bad: list[float], policy: str) -> tuple[float, float]:
    g, t = win_tie_counts(np.array([good]), np.array([bad], dtype=float))
    return float(one_vs_many_accuracy(g, t, policy)[0]), float(reciprocal_rank(g, t, policy)[0])


# --- worked examples (METRICS.md §1, §2) ----------------------------------------------------------------------------


def test_pairwise_worked_example() -> None:
    good, bad = np.array([2.0, 1.0, 0.5]), np.array([1.0, 1.0, 3.0])
    assert pairwise_outcome(good, bad, "expected").tolist() == [1.0, 0.5, 0.0]
    assert pairwise_outcome(good, bad, "expected").mean() == 0.5
    assert pairwise_outcome(good, bad, "strict").mean() == pytest.approx(1 / 3, abs=1e-15)


@pytest.mark.parametrize(
    ("good", "bad", "acc", "rr"),
    [
        (2.0, [1.0, 2.0, 2.0], 1 / 3, (1 + 1 / 2 + 1 / 3) / 3),
        (0.9, [0.5, 0.9, 1.2], 0.0, (1 / 2 + 1 / 3) / 2),
        (5.0, [1.0, 2.0, 3.0], 1.0, 1.0),
    ],
)
def test_one_vs_many_worked_examples(good: float, bad: list[float], acc: float, rr: float) -> None:
    assert one_item(good, bad, "expected") == pytest.approx((acc, rr), abs=1e-12)


def test_worked_example_values_written_out() -> None:
    assert one_item(2.0, [1.0, 2.0, 2.0], "expected")[1] == pytest.approx(0.611111111111111, abs=1e-12)
    assert one_item(0.9, [0.5, 0.9, 1.2], "expected")[1] == pytest.approx(0.416666666666667, abs=1e-12)


def test_strict_policy_examples() -> None:
    assert one_item(2.0, [1.0, 2.0, 2.0], "strict") == (0.0, pytest.approx(1 / 3))
    assert one_item(0.9, [0.5, 0.9, 1.2], "strict") == (0.0, pytest.approx(1 / 3))
    assert one_item(5.0, [1.0, 2.0, 3.0], "strict") == (1.0, 1.0)


def test_rewardbench2_ties_at_the_max_share_credit() -> None:
    assert one_item(3.0, [3.0, 1.0, 2.0], "expected")[0] == 0.5
    assert one_item(3.0, [3.0, 3.0, 3.0], "expected")[0] == 0.25


def test_ragged_rows_are_padded_with_nan_that_counts_as_absent() -> None:
    bad = padded([np.array([1.0]), np.array([3.0, 2.0, 2.0])])
    assert np.isnan(bad[0, 1:]).all()
    g, t = win_tie_counts(np.array([2.0, 2.0]), bad)
    assert g.tolist() == [0, 1] and t.tolist() == [0, 2]


# --- properties of the tie policies ---------------------------------------------------------------------------------


def brute_force(good: int, bad: list[int]) -> tuple[list[float], list[float]]:
    """Accuracy and RR of the good response under every tie-break order (all priority permutations)."""
    scores = [good, *bad]
    accs, rrs = [], []
    for priority in itertools.permutations(range(len(scores))):
        ranking = sorted(range(len(scores)), key=lambda i: (-scores[i], priority[i]))
        rank = ranking.index(0) + 1
        accs.append(1.0 if rank == 1 else 0.0)
        rrs.append(1.0 / rank)
    return accs, rrs


small_ints = st.integers(min_value=0, max_value=3)


@settings(max_examples=150, deadline=None)
@given(good=small_ints, bad=st.lists(small_ints, min_size=1, max_size=5))
def test_expected_policy_is_the_mean_over_tie_breaks_and_strict_the_worst(good: int, bad: list[int]) -> None:
    accs, rrs = brute_force(good, bad)
    assert one_item(good, bad, "expected") == pytest.approx((np.mean(accs), np.mean(rrs)), abs=1e-12)
    assert one_item(good, bad, "strict") == pytest.approx((min(accs), min(rrs)), abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(
    good=small_ints,
    bad=st.lists(small_ints, min_size=3, max_size=7),
    k=st.integers(min_value=1, max_value=3),
    policy=st.sampled_from(["expected", "strict"]),
)
def test_subsampled_accuracy_is_the_mean_over_every_draw(good: int, bad: list[int], k: int, policy: str) -> None:
    per_draw = [one_item(good, list(draw), policy)[0] for draw in itertools.combinations(bad, k)]
    g, t = win_tie_counts(np.array([good]), np.array([bad], dtype=float))
    assert subsampled_accuracy(g, t, np.array([len(bad)]), k, policy)[0] == pytest.approx(np.mean(per_draw), abs=1e-12)


def test_subsampled_accuracy_with_all_bad_drawn_is_the_plain_accuracy() -> None:
    # METRICS.md §2 examples as RewardBench 2 items (N = k = 3): 1/3, 0 and 1.
    g, t = win_tie_counts(np.array([2.0, 0.9, 5.0]), np.array([[1, 2, 2], [0.5, 0.9, 1.2], [1, 2, 3]], dtype=float))
    assert subsampled_accuracy(g, t, np.full(3, 3), 3, "expected").tolist() == pytest.approx([1 / 3, 0.0, 1.0])
    with pytest.raises(ValueError, match="cannot draw"):
        subsampled_accuracy(g, t, np.full(3, 3), 4, "expected")


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(st.tuples(small_ints, st.lists(small_ints, min_size=1, max_size=4)), min_size=1, max_size=8),
    shift=st.integers(min_value=-1000, max_value=1000),
    policy=st.sampled_from(["expected", "strict"]),
)
def test_adding_a_constant_changes_nothing(rows: list, shift: int, policy: str) -> None:
    good = np.array([r[0] for r in rows], dtype=float)
    bad = padded([np.array(r[1], dtype=float) for r in rows])
    before = win_tie_counts(good, bad)
    after = win_tie_counts(good + shift, bad + shift)
    for metric in (one_vs_many_accuracy, reciprocal_rank):
        assert metric(*before, policy).tolist() == metric(*after, policy).tolist()


# --- bootstrap ------------------------------------------------------------------------------------------------------


def bernoulli_frame(n: int = 300, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "item_id": [f"i{k}" for k in range(n)],
            "subset": rng.choice(["a", "b", "c", "d"], n),
            "cluster": [f"p{k // 2}" for k in range(n)],  # two items per prompt
            "accuracy": (rng.random(n) < 0.7).astype(float),
            "mrr": rng.random(n),
        }
    )


SECTIONS = {
    "first": Section(subsets=["a", "b"]),
    "second": Section(subsets=["c", "d"], weights={"c": 1.0, "d": 3.0}),
}


def test_ci_contains_point_and_is_seeded() -> None:
    frame = bernoulli_frame()
    one = sectioned_means(frame, ["accuracy", "mrr"], SECTIONS, resamples=1000, seed=7)
    two = sectioned_means(frame, ["accuracy", "mrr"], SECTIONS, resamples=1000, seed=7)
    other = sectioned_means(frame, ["accuracy", "mrr"], SECTIONS, resamples=1000, seed=8)
    assert one.estimates == two.estimates
    assert one.estimates != other.estimates
    for by_metric in one.estimates.values():
        for estimate in by_metric.values():
            assert estimate.ci_low <= estimate.value <= estimate.ci_high
            assert estimate.ci_low < estimate.ci_high


def test_chunking_does_not_change_the_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = bernoulli_frame()
    whole = sectioned_means(frame, ["accuracy"], SECTIONS, resamples=200, seed=3)
    monkeypatch.setattr(bootstrap_module, "_CHUNK_CELLS", 1000)  # ~6 resamples per chunk
    assert sectioned_means(frame, ["accuracy"], SECTIONS, resamples=200, seed=3).estimates == whole.estimates


def slow_sectioned(frame: pd.DataFrame, column: str, sections: dict, resamples: int, seed: int) -> dict[str, list]:
    """Reference loop: resample clusters (same draws: sorted cluster labels, one integers() call per resample)."""
    labels = sorted(frame["cluster"].astype(str).unique())
    rows_of = {label: frame.index[frame["cluster"] == label].tolist() for label in labels}
    subsets = sorted(frame["subset"].unique())

    def values(rows: list[int]) -> dict[str, float]:
        part = frame.loc[rows]
        means, counts = {}, {}
        for s in subsets:
            x = part.loc[part["subset"] == s, column].tolist()
            counts[s] = len(x)
            means[s] = sum(x) / len(x) if x else math.nan
        out = {f"subset:{s}": means[s] for s in subsets}
        for name, section in sections.items():
            if section.weights is None:
                total = sum(means[s] * counts[s] for s in section.subsets if counts[s])
                out[f"section:{name}"] = total / sum(counts[s] for s in section.subsets)
            else:
                present = [s for s in section.subsets if counts[s]]
                weight = sum(section.weights[s] for s in present)
                out[f"section:{name}"] = sum(section.weights[s] * means[s] for s in present) / weight
        out["overall"] = sum(out[f"section:{n}"] for n in sections) / len(sections)
        return out

    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        picked = rng.integers(0, len(labels), size=len(labels))
        draws.append(values([row for k in picked for row in rows_of[labels[k]]]))
    point = values(frame.index.tolist())
    tail = 2.5
    return {scope: [point[scope], *np.nanpercentile([d[scope] for d in draws], [tail, 100 - tail])] for scope in point}


def test_vectorized_sectioned_bootstrap_equals_slow_loop() -> None:
    frame = bernoulli_frame(n=60, seed=4)
    fast = sectioned_means(frame, ["mrr"], SECTIONS, resamples=300, seed=11)
    slow = slow_sectioned(frame, "mrr", SECTIONS, resamples=300, seed=11)
    assert set(fast.estimates) == set(slow)
    for scope, (value, low, high) in slow.items():
        got = fast.estimates[scope]["mrr"]
        assert (got.value, got.ci_low, got.ci_high) == pytest.approx((value, low, high), abs=1e-12), scope


def test_generic_bootstrap_uses_the_same_draws_as_the_vectorized_path() -> None:
    frame = bernoulli_frame(n=80)
    fast = sectioned_means(frame, ["mrr"], None, resamples=500, seed=5).estimates["overall"]["mrr"]
    slow = bootstrap(frame, lambda f: {"mrr": float(f["mrr"].mean())}, resamples=500, seed=5)["mrr"]
    assert (slow.value, slow.ci_low, slow.ci_high, slow.n) == pytest.approx(
        (fast.value, fast.ci_low, fast.ci_high, fast.n), abs=1e-12
    )


def test_sections_count_weighted_and_explicit_weights_point_values() -> None:
    frame = pd.DataFrame(
        {
            "subset": ["a", "a", "a", "b", "c", "d", "d"],
            "cluster": list("pqrstuv"),
            "accuracy": [1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.5],
        }
    )
    result = sectioned_means(frame, ["accuracy"], SECTIONS, resamples=0)
    values = {scope: e["accuracy"].value for scope, e in result.estimates.items()}
    assert values["subset:a"] == pytest.approx(2 / 3)
    assert values["section:first"] == pytest.approx(2 / 4)  # pooled: (1+1+0+0) / 4, not mean(2/3, 0)
    assert values["section:second"] == pytest.approx((1 * 1.0 + 3 * 0.25) / 4)
    assert values["overall"] == pytest.approx((0.5 + 1.75 / 4) / 2)
    assert result.estimates["overall"]["accuracy"].n == 7
    assert result.estimates["section:first"]["accuracy"].ci_low is None


def test_without_sections_overall_is_the_item_mean() -> None:
    frame = pd.DataFrame({"subset": ["a", "a", "b"], "cluster": ["x", "y", "z"], "accuracy": [1.0, 1.0, 0.0]})
    result = sectioned_means(frame, ["accuracy"], None, resamples=100)
    assert result.estimates["overall"]["accuracy"].value == pytest.approx(2 / 3)
    assert set(result.estimates) == {"overall", "subset:a", "subset:b"}


def test_empty_and_unsectioned_bookkeeping() -> None:
    frame = pd.DataFrame({"subset": ["a", "b", "z"], "cluster": ["x", "y", "w"], "accuracy": [1.0, 0.0, 1.0]})
    sections = {"one": Section(subsets=["a", "b"]), "math": Section(subsets=["math"])}
    result = sectioned_means(frame, ["accuracy"], sections, resamples=0)
    assert result.empty_sections == ["math"]
    assert result.unsectioned_subsets == ["z"]
    assert result.estimates["overall"]["accuracy"].value == 0.5  # the mean over the sections that have items
    assert result.notes()["subsets_without_items"] == {"math": ["math"]}


def test_sections_matching_nothing_is_an_error() -> None:
    frame = pd.DataFrame({"subset": ["a"], "cluster": ["x"], "accuracy": [1.0]})
    with pytest.raises(SuiteError, match="no evaluated item belongs to any section"):
        sectioned_means(frame, ["accuracy"], {"s": Section(subsets=["nope"])}, resamples=0)
    with pytest.raises(SuiteError, match="no weight for subset"):
        sectioned_means(frame, ["accuracy"], {"s": Section(subsets=["a"], weights={"b": 1.0})}, resamples=0)


@settings(max_examples=25, deadline=None)
@given(order_seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_item_order_does_not_change_values_or_cis(order_seed: int) -> None:
    frame = bernoulli_frame(n=40)
    shuffled = frame.sample(frac=1.0, random_state=order_seed % (2**32)).reset_index(drop=True)
    a = sectioned_means(frame, ["accuracy", "mrr"], SECTIONS, resamples=200, seed=0).estimates
    b = sectioned_means(shuffled, ["accuracy", "mrr"], SECTIONS, resamples=200, seed=0).estimates
    for scope in a:
        for name in a[scope]:
            x, y = a[scope][name], b[scope][name]
            assert (y.value, y.ci_low, y.ci_high, y.n) == pytest.approx((x.value, x.ci_low, x.ci_high, x.n), abs=1e-12)


def test_100k_items_1000_resamples_is_fast() -> None:
    import time

    rng = np.random.default_rng(0)
    n = 100_000
    frame = pd.DataFrame(
        {
            "subset": rng.choice([f"s{i}" for i in range(12)], n),
            "cluster": rng.integers(0, 50_000, n).astype(str),
            "accuracy": (rng.random(n) < 0.6).astype(float),
        }
    )
    start = time.perf_counter()
    result = sectioned_means(frame, ["accuracy"], None, resamples=1000, seed=0)
    assert time.perf_counter() - start < 30  # ~1 s on 2 cores; the bound only catches a fall back to loops
    estimate = result.estimates["overall"]["accuracy"]
    assert estimate.ci_low < estimate.value < estimate.ci_high and estimate.n == n
