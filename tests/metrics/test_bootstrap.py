"""rmbench.metrics.bootstrap: seeded draws, clusters resampled as units, the percentile rules, paired p-values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rmbench.errors import RmbenchError
from rmbench.metrics import bootstrap
from rmbench.metrics.bootstrap import (
    INVERTED_CDF,
    LINEAR,
    bound,
    cluster_codes,
    cluster_counts,
    cluster_sums,
    paired_difference,
    resample,
    resample_counts,
    resample_indices,
    resampled_rows,
)

# --- the draws ----------------------------------------------------------------------------------------------------


def test_draws_are_seeded_and_one_resample_after_another(monkeypatch: pytest.MonkeyPatch) -> None:
    whole = np.concatenate(list(resample_indices(7, 300, seed=3)))
    assert whole.shape == (300, 7)
    assert np.array_equal(whole, np.concatenate(list(resample_indices(7, 300, seed=3))))
    assert not np.array_equal(whole, np.concatenate(list(resample_indices(7, 300, seed=4))))
    # The documented draw order: one integers() call of n_clusters per resample, from one default_rng(seed).
    rng = np.random.default_rng(3)
    assert np.array_equal(whole, np.stack([rng.integers(0, 7, size=7) for _ in range(300)]))
    monkeypatch.setattr(bootstrap, "_CHUNK_CELLS", 50)  # 7 resamples per chunk
    chunks = list(resample_indices(7, 300, seed=3))
    assert len(chunks) > 1 and np.array_equal(whole, np.concatenate(chunks))


def test_counts_are_how_often_each_cluster_was_drawn() -> None:
    indices = np.concatenate(list(resample_indices(5, 40, seed=1)))
    counts = np.concatenate(list(resample_counts(5, 40, seed=1)))
    assert counts.shape == (40, 5) and (counts.sum(axis=1) == 5).all()
    assert all(np.array_equal(np.bincount(row, minlength=5), c) for row, c in zip(indices, counts))


def test_zero_resamples_give_an_empty_stack_of_the_statistics_shape() -> None:
    assert resample(lambda w: np.zeros((len(w), 3, 2)), 4, 0, seed=0).shape == (0, 3, 2)


def test_cluster_codes_follow_sorted_labels_not_item_order() -> None:
    coded = cluster_codes(["b", "a", "c", "a", 3])
    assert coded.labels.tolist() == ["3", "a", "b", "c"]
    assert coded.codes.tolist() == [2, 1, 3, 1, 0]
    assert coded.code_of(["c", "a"]).tolist() == [3, 1]
    assert np.array_equal(cluster_codes(pd.Series(["b", "a", "c", "a", "3"])).codes, coded.codes)
    with pytest.raises(KeyError):
        coded.code_of(["unknown"])


def test_cluster_sums_and_counts() -> None:
    codes = np.array([0, 2, 0, 1])
    assert cluster_sums(codes, 3, np.array([1.0, 2.0, 3.0, 4.0])).tolist() == [[4.0], [4.0], [2.0]]
    assert cluster_sums(codes, 3, np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 0.0], [4.0, 1.0]])).tolist() == [
        [4.0, 0.0], [4.0, 1.0], [2.0, 1.0]
    ]
    assert cluster_counts(codes, 3).tolist() == [2.0, 1.0, 1.0]


def test_both_paths_see_the_same_resamples() -> None:
    """A mean over rows gathered by ``resampled_rows`` equals the weighted-sum path of ``resample``."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 9, 40).astype(str)
    values = rng.random(40)
    coded = cluster_codes(labels)
    gathered = np.array([values[rows].mean() for rows in resampled_rows(coded, 200, seed=5)])
    sums, sizes = cluster_sums(coded.codes, coded.n, values)[:, 0], cluster_counts(coded.codes, coded.n)
    weighted = resample(lambda w: (w @ sums) / (w @ sizes), coded.n, 200, seed=5)
    assert gathered == pytest.approx(weighted, rel=1e-12)


# --- clusters are resampled as units ------------------------------------------------------------------------------

clustered = st.lists(
    st.tuples(st.integers(1, 4), st.lists(st.floats(0, 1), min_size=4, max_size=4)), min_size=2, max_size=8
)


def _items(clusters: list[tuple[int, list[float]]], copies: list[int]) -> tuple[list[str], np.ndarray]:
    """Cluster c holds ``size`` items, each repeated ``copies[c]`` times."""
    labels, values = [], []
    for c, ((size, vals), k) in enumerate(zip(clusters, copies)):
        for v in vals[:size]:
            labels += [f"p{c}"] * k
            values += [v] * k
    return labels, np.array(values)


def _item_mean_interval(labels: list[str], values: np.ndarray) -> tuple[float, float]:
    draws = np.array([values[rows].mean() for rows in resampled_rows(cluster_codes(labels), 300, seed=1)])
    low, high = LINEAR.interval(draws, 0.9)
    return float(low), float(high)


@settings(max_examples=40, deadline=None)
@given(clustered, st.integers(2, 3))
def test_duplicating_every_item_does_not_change_the_interval(clusters: list, k: int) -> None:
    """Copies of an item share its prompt, so they are drawn with it: the resampled means, and so the interval,
    stay the same (an item-level bootstrap would see k times the items and narrow the interval)."""
    labels, values = _items(clusters, [1] * len(clusters))
    labels_k, values_k = _items(clusters, [k] * len(clusters))
    assert _item_mean_interval(labels_k, values_k) == pytest.approx(_item_mean_interval(labels, values), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(clustered, st.data())
def test_a_cluster_mean_ignores_how_many_items_a_cluster_has(clusters: list, data: st.DataObject) -> None:
    """The mean of per-cluster means depends on the clusters drawn, never on how many items each one holds."""
    copies = data.draw(st.lists(st.integers(1, 3), min_size=len(clusters), max_size=len(clusters)))

    def interval(labels: list[str], values: np.ndarray) -> tuple[float, float]:
        coded = cluster_codes(labels)
        means = cluster_sums(coded.codes, coded.n, values)[:, 0] / cluster_counts(coded.codes, coded.n)
        low, high = LINEAR.interval(resample(lambda w: (w @ means) / w.sum(axis=1), coded.n, 300, seed=2), 0.9)
        return float(low), float(high)

    assert interval(*_items(clusters, copies)) == pytest.approx(interval(*_items(clusters, [1] * len(clusters))))


@settings(max_examples=30, deadline=None)
@given(clustered, st.randoms(use_true_random=False))
def test_item_order_does_not_change_the_interval(clusters: list, shuffle: object) -> None:
    labels, values = _items(clusters, [1] * len(clusters))
    order = list(range(len(labels)))
    shuffle.shuffle(order)  # type: ignore[attr-defined]
    shuffled = _item_mean_interval([labels[i] for i in order], values[order])
    assert shuffled == pytest.approx(_item_mean_interval(labels, values), abs=1e-12)


# --- percentile rules ---------------------------------------------------------------------------------------------


def test_percentile_rules_on_a_hand_computed_example() -> None:
    """Ten resamples 10, 20, ..., 100 (shuffled, with NaNs that are left out), 50% interval: quantiles 0.25, 0.75.

    linear (type 7): position (n − 1)·q = 2.25 and 6.75 → 30 + 0.25·10 = 32.5 and 70 + 0.75·10 = 77.5.
    inverted CDF (type 1): the smallest value with F ≥ q, F(x_k) = k/10 → k = 3 and 8 → 30 and 80.
    """
    samples = np.array([70.0, np.nan, 10, 100, 40, 20, 90, np.nan, 30, 60, 50, 80])
    assert [float(v) for v in LINEAR.interval(samples, 0.5)] == pytest.approx([32.5, 77.5])
    assert [float(v) for v in INVERTED_CDF.interval(samples, 0.5)] == [30.0, 80.0]


def test_intervals_are_per_column_and_undefined_columns_are_none() -> None:
    samples = np.column_stack([np.arange(1.0, 11.0), np.full(10, np.nan), [*range(1, 7), *[np.inf] * 4]])
    low, high = INVERTED_CDF.interval(samples, 0.5)
    assert [bound(v) for v in low] == [3.0, None, 3.0]
    assert [bound(v) for v in high] == [8.0, None, None]  # +inf resamples: an open bound, recorded as None


def test_rules_record_their_method() -> None:
    assert LINEAR.quantile == "linear" and INVERTED_CDF.quantile == "inverted_cdf"
    assert LINEAR.method.startswith("bootstrap-percentile") and INVERTED_CDF.method.startswith("bootstrap-percentile")


# --- paired differences -------------------------------------------------------------------------------------------


def test_paired_p_values_on_a_known_case() -> None:
    """Draws −1, 1, 2, 3 (and a NaN, left out): P(≥ 0) = (3 + 1)/5 = 0.8, P(≤ 0) = (1 + 1)/5 = 0.4."""
    result = paired_difference(np.array([2.0, -1.0, np.nan, 3.0, 1.0]), 0.5)
    assert result.p_drop == pytest.approx(0.8)
    assert result.p_value == pytest.approx(0.8)  # 2 · min(0.8, 0.4)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.5, 2.25))  # linear, positions 0.75 and 2.25


def test_a_drop_in_every_resample_is_significant_and_no_difference_is_not() -> None:
    drop = paired_difference(np.full(999, -0.1), 0.95)
    assert drop.p_drop == pytest.approx(1 / 1000) and drop.p_value == pytest.approx(2 / 1000)
    assert drop.ci_low == drop.ci_high == pytest.approx(-0.1)
    same = paired_difference(np.zeros(999), 0.95)
    assert same.p_value == 1.0 and same.p_drop == 1.0
    assert paired_difference(np.full(5, np.nan), 0.95) == bootstrap.PairedDifference(None, None, None, None)


def test_paired_draws_keep_the_correlation_between_runs() -> None:
    """B = A + 0.1 on every item: resampling clusters once for both runs makes every resampled difference 0.1,
    however noisy A is; resampling the runs independently would not."""
    rng = np.random.default_rng(0)
    labels = [f"p{i // 2}" for i in range(60)]
    a = rng.random(60)
    coded = cluster_codes(labels)
    sums = cluster_sums(coded.codes, coded.n, np.column_stack([a, a + 0.1]))
    sizes = cluster_counts(coded.codes, coded.n)
    means = resample(lambda w: (w @ sums) / (w @ sizes)[:, None], coded.n, 1000, seed=0)
    result = paired_difference(means[:, 1] - means[:, 0], 0.95)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.1, 0.1))
    assert result.p_value == pytest.approx(2 / 1001)


def test_fewer_than_the_minimum_resamples_are_refused() -> None:
    bootstrap.check_resamples(bootstrap.MIN_RESAMPLES)
    with pytest.raises(RmbenchError, match="at least 1000 bootstrap resamples"):
        bootstrap.check_resamples(999)
