"""Tie-aware ranking metrics and seeded cluster-bootstrap CIs (METRICS.md §0–§2 and §9).

Everything here works on plain arrays and per-item frames; nothing knows about items, requests or models. CIs
come from ``rmbench.metrics.bootstrap``: it resamples *clusters* (items that share a prompt), never single items,
and takes every random draw from one seeded ``numpy.random.Generator``, so the same input and seed give the same
floats. This module only says which statistic is resampled (sectioned means, or any frame statistic).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import comb

from rmbench.errors import SuiteError
from rmbench.metrics.bootstrap import (
    LINEAR,
    bound,
    cluster_codes,
    cluster_counts,
    cluster_sums,
    resample,
    resampled_rows,
)
from rmbench.metrics.options import MetricOptions, MetricValue, Section, TiePolicy

METHOD = LINEAR.method
"""Recorded with every CI made here: ``rmbench.metrics.bootstrap.LINEAR``."""


# --- §0–§2: one good response against N bad ones --------------------------------------------------------------------


def win_tie_counts(good: np.ndarray, bad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: g = #{bad > good} and t = #{bad == good}.

    ``good`` has shape (n,), ``bad`` (n, N); ragged rows are padded with NaN, which compares neither greater nor
    equal and so counts as absent.
    """
    good = np.asarray(good, dtype=float)[:, None]
    bad = np.asarray(bad, dtype=float)
    return (bad > good).sum(axis=1), (bad == good).sum(axis=1)


def one_vs_many_accuracy(g: np.ndarray, t: np.ndarray, policy: TiePolicy) -> np.ndarray:
    """§2 accuracy: expected = 1/(t+1) when nothing beats the good response; strict = 1 only without ties."""
    g, t = np.asarray(g), np.asarray(t)
    if policy == "strict":
        return ((g == 0) & (t == 0)).astype(float)
    return np.where(g == 0, 1.0 / (t + 1.0), 0.0)


def subsampled_accuracy(g: np.ndarray, t: np.ndarray, n_bad: np.ndarray, k: int, policy: TiePolicy) -> np.ndarray:
    """§2 accuracy against k of the N bad responses, averaged exactly over all C(N, k) draws without replacement.

    This turns a one-vs-N item into the RewardBench 2 format (k = 3: one chosen vs three rejected) without sampling
    noise. A draw scores 0 if it holds any of the g better responses; otherwise, holding j of the t tied ones, it
    scores 1/(j+1) (expected) or 1 only when j = 0 (strict). So with l = N − g − t losers,
    expected = Σ_j C(t, j)·C(l, k−j) / C(N, k) / (j+1) and strict = C(l, k) / C(N, k).
    """
    g, t, n_bad = (np.asarray(a, dtype=int) for a in (g, t, n_bad))
    if k < 1 or np.any(n_bad < k):
        raise ValueError(f"cannot draw k = {k} bad responses from items with as few as {n_bad.min()}")
    losers = n_bad - g - t
    draws = comb(n_bad, k)
    if policy == "strict":
        return comb(losers, k) / draws
    ties_drawn = np.arange(k + 1)[:, None]
    shares = comb(t, ties_drawn) * comb(losers, k - ties_drawn) / (ties_drawn + 1.0)
    return shares.sum(axis=0) / draws


def reciprocal_rank(g: np.ndarray, t: np.ndarray, policy: TiePolicy) -> np.ndarray:
    """§2 reciprocal rank: expected = mean of 1/r over the t+1 ranks the tied block can take; strict = 1/(g+t+1)."""
    g, t = np.asarray(g), np.asarray(t)
    if policy == "strict":
        return 1.0 / (g + t + 1.0)
    largest = int(np.max(g + t, initial=0)) + 1
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, largest + 1))])
    return (harmonic[g + t + 1] - harmonic[g]) / (t + 1.0)


def pairwise_outcome(good: np.ndarray, bad: np.ndarray, policy: TiePolicy) -> np.ndarray:
    """§1: 1 if good > bad, 0.5 (expected) or 0 (strict) on a tie, else 0 — elementwise, with broadcasting.

    This is §2 with N = 1, and is computed that way so the two can never drift apart.
    """
    good, bad = np.broadcast_arrays(np.asarray(good, dtype=float), np.asarray(bad, dtype=float))
    return one_vs_many_accuracy((bad > good).astype(int), (bad == good).astype(int), policy)


def padded(rows: Sequence[np.ndarray]) -> np.ndarray:
    """Stack ragged 1-d arrays into an (n, max_len) matrix, padding with NaN (see ``win_tie_counts``)."""
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), np.nan)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


# --- §9: seeded cluster bootstrap (the draws and intervals are rmbench.metrics.bootstrap's) -------------------------


@dataclass(frozen=True)
class Estimate:
    """A point value with its percentile CI (None when no resample gave a value) and the n it rests on."""

    value: float
    ci_low: float | None
    ci_high: float | None
    n: int


def bootstrap(
    frame: pd.DataFrame,
    statistic: Callable[[pd.DataFrame], Mapping[str, float]],
    *,
    cluster: str = "cluster",
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Estimate]:
    """Generic cluster bootstrap for statistics that are not means (e.g. the RewardBench 2 Ties score).

    ``statistic`` maps a frame to named values; it is applied to ``frame`` and to ``resamples`` frames built from
    clusters drawn with replacement (a cluster drawn twice contributes its rows twice). ``n`` = rows of ``frame``.
    The draws are those of ``sectioned_means`` with the same seed, so a mean gets the same CI either way.
    """
    point = dict(statistic(frame))
    draws = np.full((resamples, len(point)), np.nan)
    for r, rows in enumerate(resampled_rows(cluster_codes(frame[cluster]), resamples, seed)):
        values = statistic(frame.iloc[rows])
        draws[r] = [values[name] for name in point]
    low, high = LINEAR.interval(draws, confidence) if resamples else (np.full(len(point), np.nan),) * 2
    return {
        name: Estimate(float(value), bound(low[i]), bound(high[i]), len(frame))
        for i, (name, value) in enumerate(point.items())
    }


# --- §1 sectioned means, vectorized ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scope:
    """How one reported scope combines subset (sums, counts) into a value."""

    label: str
    subsets: tuple[int, ...]  # subset codes
    weights: tuple[float, ...] | None = None  # explicit subset weights; None = weight by example count
    sections: tuple[_Scope, ...] = ()  # set for "overall" with sections: unweighted mean of these

    def values(self, sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Scope value per resample: sums (r, K, M), counts (r, K) → (r, M); NaN where a resample has no data."""
        if self.sections:
            return np.mean(np.stack([s.values(sums, counts) for s in self.sections]), axis=0)
        idx = list(self.subsets)
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.weights is None:
                return sums[:, idx].sum(axis=1) / counts[:, idx].sum(axis=1)[:, None]
            # A subset that a resample left empty drops out and the other weights are renormalised.
            present = counts[:, idx] > 0
            means = np.where(present[:, :, None], sums[:, idx] / counts[:, idx][:, :, None], 0.0)
            weights = present * np.asarray(self.weights)
            return np.einsum("rkm,rk->rm", means, weights) / weights.sum(axis=1)[:, None]


@dataclass
class SectionedMeans:
    """Point values and CIs of mean-type per-item metrics for overall, each section and each subset.

    ``empty_sections`` had no evaluated item and are left out of the overall mean; ``unsectioned_subsets`` belong
    to no section, so they are reported on their own but do not count towards overall (RewardBench v1 style).
    """

    estimates: dict[str, dict[str, Estimate]]  # scope label -> metric -> estimate
    empty_sections: list[str] = field(default_factory=list)
    unsectioned_subsets: list[str] = field(default_factory=list)
    subsets_without_items: dict[str, list[str]] = field(default_factory=dict)  # section -> listed but absent

    def metric_values(self, method: str = METHOD) -> list[MetricValue]:
        return [
            MetricValue(name, e.value, e.ci_low, e.ci_high, e.n, method=method, scope=scope)
            for scope, by_metric in self.estimates.items()
            for name, e in by_metric.items()
        ]

    def notes(self) -> dict[str, object]:
        """What ``extra`` should record so a reader sees which sections and subsets made the overall value."""
        notes: dict[str, object] = {}
        if self.empty_sections:
            notes["empty_sections"] = list(self.empty_sections)
        if self.unsectioned_subsets:
            notes["unsectioned_subsets"] = list(self.unsectioned_subsets)
        if self.subsets_without_items:
            notes["subsets_without_items"] = dict(self.subsets_without_items)
        return notes


def _plan_scopes(
    subsets: list[str], counts: np.ndarray, sections: Mapping[str, Section] | None
) -> tuple[list[_Scope], SectionedMeans]:
    """Scopes in report order (overall, sections, subsets) plus the bookkeeping of what was left out."""
    code = {name: i for i, name in enumerate(subsets)}
    notes = SectionedMeans(estimates={})
    subset_scopes = [_Scope(f"subset:{name}", (i,)) for i, name in enumerate(subsets)]
    if not sections:
        return [_Scope("overall", tuple(range(len(subsets)))), *subset_scopes], notes

    section_scopes = []
    covered: set[str] = set()
    for name, section in sections.items():
        present = [s for s in section.subsets if s in code and counts[code[s]] > 0]
        covered.update(section.subsets)
        absent = [s for s in section.subsets if s not in present]
        if absent:
            notes.subsets_without_items[name] = absent
        if not present:
            notes.empty_sections.append(name)
            continue
        weights = None
        if section.weights == "equal":
            weights = (1.0,) * len(present)
        elif section.weights is not None:
            missing = [s for s in present if s not in section.weights]
            if missing:
                raise SuiteError(
                    f"section '{name}': explicit weights give no weight for subset(s) {', '.join(missing)}"
                )
            weights = tuple(float(section.weights[s]) for s in present)
        section_scopes.append(_Scope(f"section:{name}", tuple(code[s] for s in present), weights))
    notes.unsectioned_subsets = [s for s in subsets if s not in covered]
    if not section_scopes:
        raise SuiteError(
            f"no evaluated item belongs to any section ({', '.join(sections)}); subsets present: {', '.join(subsets)}"
        )
    overall = _Scope("overall", tuple(c for s in section_scopes for c in s.subsets), sections=tuple(section_scopes))
    return [overall, *section_scopes, *subset_scopes], notes


@dataclass(frozen=True)
class ScopeDraws:
    """Sectioned means per scope: point values (scopes × metrics) and every resample (R × scopes × metrics).

    ``plan`` holds what the scope planning left out (empty sections, unsectioned subsets); its estimates are empty.
    """

    labels: list[str]
    subsets: list[tuple[str, ...]]  # the subsets each scope is computed over
    n: list[int]
    point: np.ndarray
    draws: np.ndarray
    plan: SectionedMeans


@dataclass(frozen=True)
class ClusterCells:
    """Per-item ``columns`` reduced to per-(cluster, subset) item counts and value sums, once: a bootstrap resample
    or a sign-flip pattern is then a row of per-cluster weights, and every scope's sectioned mean under all rows is
    one matrix product (100k items × 1000 resamples stay fast)."""

    subsets: list[str]
    n_clusters: int
    item_counts: np.ndarray  # (clusters, subsets)
    value_sums: np.ndarray  # (clusters, subsets * columns)
    n_columns: int

    @classmethod
    def of(cls, frame: pd.DataFrame, columns: Sequence[str]) -> ClusterCells:
        subsets = sorted(frame["subset"].astype(str).unique())
        subset_codes = pd.Categorical(frame["subset"].astype(str), categories=subsets).codes.astype(np.int64)
        clusters = cluster_codes(frame["cluster"])
        n_cells = clusters.n * len(subsets)
        cell = clusters.codes * len(subsets) + subset_codes
        values = np.stack([frame[c].to_numpy(float) for c in columns], axis=-1)
        return cls(
            subsets=subsets,
            n_clusters=clusters.n,
            item_counts=cluster_counts(cell, n_cells).reshape(clusters.n, len(subsets)),
            value_sums=cluster_sums(cell, n_cells, values).reshape(clusters.n, len(subsets) * len(columns)),
            n_columns=len(columns),
        )

    @property
    def subset_n(self) -> np.ndarray:
        """Items per subset."""
        return self.item_counts.sum(axis=0)

    def scope_values(self, scopes: Sequence[_Scope], weights: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """(rows, scopes, columns): each scope's mean for every row of per-cluster ``weights`` (draw counts or
        ±1 signs), given the per-subset item ``counts`` (rows, subsets) those rows imply."""
        sums = (weights @ self.value_sums).reshape(-1, len(self.subsets), self.n_columns)
        return np.stack([s.values(sums, counts) for s in scopes], axis=1)


def sectioned_mean_draws(
    frame: pd.DataFrame,
    columns: Sequence[str],
    sections: Mapping[str, Section] | None,
    *,
    resamples: int,
    seed: int,
) -> ScopeDraws:
    """Sectioned means of per-item ``columns`` for every scope, at the sample and at every cluster resample.

    A resample is a row of cluster draw counts (``ClusterCells``). A sectioned mean is linear in the per-item values
    for a fixed resample, so the draws of a column B − A are the paired draws of the difference of two runs' means
    (``rmbench.analysis.compare``).
    """
    cells = ClusterCells.of(frame, columns)
    scopes, plan = _plan_scopes(cells.subsets, cells.subset_n, sections)

    def scope_values(weights: np.ndarray) -> np.ndarray:  # (r, clusters) -> (r, scopes, metrics)
        return cells.scope_values(scopes, weights, weights @ cells.item_counts)

    point = scope_values(np.ones((1, cells.n_clusters)))[0]
    draws = resample(scope_values, cells.n_clusters, resamples, seed)
    return ScopeDraws(
        labels=[s.label for s in scopes],
        subsets=[tuple(cells.subsets[i] for i in s.subsets) for s in scopes],
        n=[int(cells.subset_n[list(s.subsets)].sum()) for s in scopes],
        point=point,
        draws=draws,
        plan=plan,
    )


@dataclass(frozen=True)
class SignFlips:
    """A paired permutation test's null distribution (METRICS.md §9, small samples): per scope and column, the
    sectioned mean of the B − A differences with the sign of every cluster's differences flipped at random
    (swapping which run is A and which is B, prompt by prompt). ``exact`` when every one of the 2^clusters sign
    patterns was enumerated, otherwise ``flips`` holds seeded random patterns."""

    labels: list[str]
    point: np.ndarray  # (scopes, columns)
    flips: np.ndarray  # (patterns, scopes, columns)
    exact: bool

    def p_lower(self, scope: int, column: int) -> float:
        """One-sided p that the observed mean is this low by chance: the share of patterns at or below it (with
        the observed pattern counted once more when the patterns are random, so p is never 0)."""
        observed = self.point[scope, column]
        null = self.flips[:, scope, column]
        slack = 1e-9 * max(1.0, abs(observed))
        at_or_below = int(np.count_nonzero(null <= observed + slack))
        if self.exact:
            return at_or_below / len(null)
        return (at_or_below + 1) / (len(null) + 1)


def sectioned_mean_sign_flips(
    frame: pd.DataFrame,
    columns: Sequence[str],
    sections: Mapping[str, Section] | None,
    *,
    resamples: int,
    seed: int,
) -> SignFlips:
    """Sign-flip permutation draws of sectioned means of per-item difference ``columns`` (see ``SignFlips``).

    A sectioned mean is linear in the item values for fixed counts, so a pattern is a row of ±1 cluster signs
    (``ClusterCells``). Valid at any n: with one cluster the two patterns give
    p = 1/2 at best, never a "significant" drop from one flipped item.
    """
    cells = ClusterCells.of(frame, columns)
    scopes, _ = _plan_scopes(cells.subsets, cells.subset_n, sections)
    counts = cells.subset_n[None, :].astype(float)  # a sign pattern flips values, never item counts
    n_clusters = cells.n_clusters

    def scope_values(signs: np.ndarray) -> np.ndarray:  # (r, clusters) -> (r, scopes, metrics)
        return cells.scope_values(scopes, signs, np.repeat(counts, len(signs), axis=0))

    exact = n_clusters <= 20 and 2**n_clusters <= max(resamples, 1)
    rows = 2**n_clusters if exact else resamples
    rng = np.random.default_rng(seed)
    chunk = max(1, 4_000_000 // max(n_clusters, 1))  # bounded memory for 100k-prompt suites
    parts = []
    for start in range(0, rows, chunk):
        size = min(chunk, rows - start)
        if exact:
            bits = (np.arange(start, start + size)[:, None] >> np.arange(n_clusters)[None, :]) & 1
        else:
            bits = rng.integers(0, 2, size=(size, n_clusters))
        parts.append(scope_values(bits * 2.0 - 1.0))
    return SignFlips(
        labels=[s.label for s in scopes],
        point=scope_values(np.ones((1, n_clusters)))[0],
        flips=np.concatenate(parts),
        exact=exact,
    )


def sectioned_means(
    frame: pd.DataFrame,
    columns: Sequence[str],
    sections: Mapping[str, Section] | None = None,
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> SectionedMeans:
    """Means of per-item ``columns`` for overall / each section / each subset, with cluster-bootstrap CIs.

    A section is the example-count-weighted mean of its subsets (explicit weights: the weighted mean of subset
    means); overall is the unweighted mean of sections, or the mean over all items without sections.
    ``resamples=0`` gives point values only.
    """
    for column in columns:
        if not np.isfinite(frame[column].to_numpy(float)).all():
            raise ValueError(f"column '{column}' has NaN or inf values; exclude those items before averaging")
    table = sectioned_mean_draws(frame, columns, sections, resamples=resamples, seed=seed)
    if resamples:
        low, high = LINEAR.interval(table.draws, confidence)
    else:
        low = high = np.full_like(table.point, np.nan)
    result = table.plan
    for i, label in enumerate(table.labels):
        result.estimates[label] = {
            name: Estimate(float(table.point[i, m]), bound(low[i, m]), bound(high[i, m]), table.n[i])
            for m, name in enumerate(columns)
        }
    return result


def sectioned_metrics(
    frame: pd.DataFrame, columns: Sequence[str], options: MetricOptions, sections: Mapping[str, Section] | None = None
) -> SectionedMeans:
    """``sectioned_means`` with the bootstrap settings of ``options`` (sections default to ``options.sections``)."""
    return sectioned_means(
        frame,
        columns,
        options.sections if sections is None else sections,
        resamples=options.bootstrap_resamples,
        confidence=options.confidence,
        seed=options.seed,
    )


def estimates_to_metrics(estimates: Mapping[str, Estimate], scope: str = "overall") -> list[MetricValue]:
    """``MetricValue``s for estimates of one scope (e.g. from ``bootstrap``)."""
    return [
        MetricValue(name, e.value, e.ci_low, e.ci_high, e.n, method=METHOD, scope=scope)
        for name, e in estimates.items()
    ]
