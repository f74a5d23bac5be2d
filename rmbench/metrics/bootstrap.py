"""The one seeded cluster bootstrap every CI and paired comparison in rmbench uses (METRICS.md §9).

What is resampled: *clusters*, i.e. the items that share a prompt (a pair's two responses, a grid's cells, a
best-of-n pool), drawn with replacement, ``n_clusters`` of them per resample. Items of one prompt are not
independent, so drawing them one by one would make every interval too narrow; a cluster drawn twice counts all its
items twice. Cluster labels are coded in sorted-label order, so the draws depend on the labels and the seed only,
never on the order of the items.

Every random draw comes from one ``numpy.random.Generator`` seeded once per bootstrap, one resample (one row of
``n_clusters`` indices) after another. Draws are generated in chunks for speed; a chunk of r rows is exactly the r
rows that r single draws would give, so chunking never changes a number.

Mean-type statistics never build a resampled frame: each caller reduces its items to per-cluster sums once
(``cluster_sums``), and a resample is then a row of cluster counts, so all resamples of a chunk are one matrix
product (``resample``). Statistics that are not linear in the items use ``resampled_rows``.

Intervals are percentile intervals over the resamples; the rule that turns the resamples into the two bounds is a
``PercentileRule``, and its ``method`` string is what a CI records. Two rules are in use, because unifying them
would move published numbers: ``LINEAR`` (every mean-type metric, paired comparison, correlation, and the drawn
best-of-n bands) and ``INVERTED_CDF`` (the overoptimization metrics, whose peak statistics can be +inf).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from rmbench.errors import RmbenchError

MIN_RESAMPLES = 1000
"""METRICS.md §9: no CI or paired test rests on fewer resamples."""


def check_resamples(resamples: int) -> None:
    """Refuse a ``--resamples`` below ``MIN_RESAMPLES`` (compare, correlate; MetricOptions checks its own field)."""
    if resamples < MIN_RESAMPLES:
        raise RmbenchError(
            f"--resamples {resamples}: at least {MIN_RESAMPLES} bootstrap resamples are needed (METRICS.md §9)"
        )

_CHUNK_CELLS = 1_000_000
"""Resamples × clusters cells held at once (32 MB of float64 counts)."""


# --- what is resampled: clusters --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clusters:
    """Items coded by cluster: ``codes[i]`` is item i's cluster, in sorted-label order (0..n-1)."""

    codes: np.ndarray
    labels: np.ndarray  # sorted unique labels; labels[code] is the label of a code

    @property
    def n(self) -> int:
        return len(self.labels)

    def code_of(self, labels: Iterable[str]) -> np.ndarray:
        """Codes of further items (e.g. pairs built from the coded items); every label must be known."""
        lookup = {label: code for code, label in enumerate(self.labels)}
        return np.array([lookup[str(label)] for label in labels], dtype=np.int64)


def cluster_codes(labels: Iterable[object] | pd.Series) -> Clusters:
    """Code cluster labels (read as strings) in sorted order, so the draws never depend on the order of the items."""
    series = labels if isinstance(labels, pd.Series) else pd.Series(list(labels), dtype=object)
    codes, uniques = pd.factorize(series.astype(str), sort=True)
    return Clusters(codes=codes.astype(np.int64), labels=np.asarray(uniques, dtype=object))


def cluster_sums(codes: np.ndarray, n_cells: int, values: np.ndarray) -> np.ndarray:
    """Per-cluster (or per cell, e.g. cluster × subset) sums of ``values``: (items,) or (items, m) → (n_cells, m)."""
    values = np.asarray(values, dtype=float)
    columns = values[:, None] if values.ndim == 1 else values
    return np.stack([np.bincount(codes, weights=columns[:, j], minlength=n_cells) for j in range(columns.shape[1])], -1)


def cluster_counts(codes: np.ndarray, n_cells: int) -> np.ndarray:
    """Items per cluster (or per cell), as floats ready for the resample matrix products."""
    return np.bincount(codes, minlength=n_cells).astype(float)


# --- the draws ----------------------------------------------------------------------------------------------------


def resample_indices(n_clusters: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """(rows × n_clusters) chunks of cluster indices drawn with replacement; row r is resample r.

    All draws come from ``numpy.random.default_rng(seed)``, resample after resample; ``Generator.integers`` with
    a (rows, n) size gives the same numbers as rows calls of size n, so the chunk size is invisible.
    """
    rng = np.random.default_rng(seed)
    chunk = max(1, min(resamples, _CHUNK_CELLS // max(n_clusters, 1)))
    for start in range(0, resamples, chunk):
        yield rng.integers(0, n_clusters, size=(min(chunk, resamples - start), n_clusters))


def resample_counts(n_clusters: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """The same draws as ``resample_indices``, as (rows × n_clusters) counts: how often each cluster was drawn."""
    for draws in resample_indices(n_clusters, resamples, seed):
        rows = len(draws)
        offsets = (np.arange(rows) * n_clusters)[:, None]
        yield np.bincount((draws + offsets).ravel(), minlength=rows * n_clusters).reshape(rows, n_clusters)


def resample(statistic: Callable[[np.ndarray], np.ndarray], n_clusters: int, resamples: int, seed: int) -> np.ndarray:
    """``statistic`` at every resample, stacked along axis 0.

    ``statistic`` maps (rows × n_clusters) float cluster weights (draw counts) to (rows, ...) values; for a
    mean it is ``(w @ sums) / (w @ counts)``. Its value on the sample itself is ``statistic(np.ones((1, n)))``.
    """
    if not resamples:
        return statistic(np.zeros((0, n_clusters)))
    return np.concatenate([statistic(w.astype(float)) for w in resample_counts(n_clusters, resamples, seed)])


def resampled_rows(clusters: Clusters, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Per resample, the item positions it holds: every item of every drawn cluster, once per draw.

    For statistics that are not linear in the items (the caller applies them to ``frame.iloc[rows]``).
    """
    order = np.argsort(clusters.codes, kind="stable")
    sizes = np.bincount(clusters.codes, minlength=clusters.n)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    for chunk in resample_indices(clusters.n, resamples, seed):
        for chosen in chunk:
            lengths = sizes[chosen]
            within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            yield order[np.repeat(starts[chosen], lengths) + within]


# --- from resamples to an interval ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PercentileRule:
    """How the resamples become the two bounds of a CI; ``method`` is recorded with every CI it makes.

    Both bounds are the ``(1 − confidence)/2`` and ``1 − (1 − confidence)/2`` quantiles of the resamples, NaN
    resamples (a subset a resample left empty, an undefined statistic) left out. ``quantile`` is numpy's
    quantile method (Hyndman & Fan 1996 definitions).
    """

    method: str
    quantile: Literal["linear", "inverted_cdf"]
    description: str

    def interval(self, samples: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
        """Bounds along axis 0; NaN where a column has no non-NaN resample."""
        tail = (1.0 - confidence) / 2.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: reported as None by the caller
            low, high = np.nanquantile(
                np.asarray(samples, dtype=float), [tail, 1.0 - tail], axis=0, method=self.quantile
            )
        return low, high


LINEAR = PercentileRule(
    method="bootstrap-percentile",
    quantile="linear",
    description="percentile interval, linear interpolation between order statistics (Hyndman & Fan type 7, "
    "numpy's default)",
)
"""The rule of every mean-type metric, paired comparison and correlation."""

INVERTED_CDF = PercentileRule(
    # Its own recorded name: the same seed and draws as LINEAR, but a CI made by this rule says so.
    method="bootstrap-percentile-inverted-cdf",
    quantile="inverted_cdf",
    description="percentile interval, the order statistic itself without interpolation (Hyndman & Fan type 1), so "
    "statistics that can be +inf in a resample (a best-of-n peak not reached) give an open bound, not NaN",
)
"""The rule of the overoptimization metrics (METRICS.md §8), whose peak statistics can be +inf."""


def bound(value: float | np.ndarray) -> float | None:
    """A CI bound (a float, or a 0-d array from ``interval``) as recorded: None where no resample gave a finite
    value, or where the bound is open (±inf)."""
    return float(value) if np.isfinite(value) else None


# --- paired differences -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairedDifference:
    """CI and bootstrap p-values of a paired difference B − A (None when no resample gave a finite difference)."""

    ci_low: float | None
    ci_high: float | None
    p_value: float | None  # two-sided: is B − A different from 0
    p_drop: float | None  # one-sided: evidence that B < A


def paired_difference(draws: np.ndarray, confidence: float, rule: PercentileRule = LINEAR) -> PairedDifference:
    """Interval and p-values of B − A from its resamples.

    The draws must come from resampling the clusters *once for both runs* (the difference is computed inside each
    resample), so the correlation between the two runs on the same prompts is kept. The p-values invert the
    percentile interval: the share of resamples on the far side of 0, with the +1 correction so p is never 0.
    """
    finite = np.asarray(draws, dtype=float)
    finite = finite[np.isfinite(finite)]
    if not finite.size:
        return PairedDifference(None, None, None, None)
    low, high = rule.interval(finite, confidence)
    at_or_above = (np.count_nonzero(finite >= 0) + 1) / (finite.size + 1)
    at_or_below = (np.count_nonzero(finite <= 0) + 1) / (finite.size + 1)
    return PairedDifference(
        ci_low=float(low),
        ci_high=float(high),
        p_value=min(1.0, 2 * min(at_or_above, at_or_below)),
        p_drop=min(1.0, at_or_above),
    )
