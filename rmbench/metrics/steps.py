"""Step-level PRM metrics (METRICS.md §10): PRMBench's PRMScore and ProcessBench's earliest-error accuracy and F1.

A step is predicted correct when its score is strictly above the threshold τ. Per solution this module reduces the
step predictions to counts (confusion counts over steps with positive = correct step; whether the earliest error
was found); every scope's metrics are functions of those counts summed over the scope. CIs resample clusters
(source questions) with the project's seeded bootstrap: a resample is a row of cluster draw counts, so every
scope's summed counts at every resample are one matrix product.

PRMBench's released code (mr_eval ``prmtest_classified``) is followed exactly, including its corner cases: an
undefined precision, recall or F1 counts as -1, PRMScore = 0.5·F1 + 0.5·F1_negative (F1 alone for a scope without
erroneous steps, e.g. ``multi_solutions``) floored at 0, error steps beyond the last step are ignored, and a group
(section) is the unweighted mean of its categories' PRMScores; the overall PRMScore pools counts over all steps.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rmbench.metrics.bootstrap import LINEAR, bound, cluster_codes, cluster_sums, resample
from rmbench.metrics.options import MetricValue, Section

#: Per-item count columns of the step-level per-item frame.
COUNTS = ("tp", "fp", "tn", "fn", "err_items", "err_hits", "ok_items", "ok_hits")
#: Metrics reported per scope (a metric whose value is undefined in a scope is left out there).
PRMBENCH_METRICS = ("prm_score", "f1_correct_steps", "f1_error_steps")
PROCESSBENCH_METRICS = ("first_error_acc_error", "first_error_acc_correct", "first_error_f1")
#: Default threshold sweep: reported as a curve, never used to pick the headline threshold.
DEFAULT_SWEEP = tuple(round(0.05 * k, 2) for k in range(1, 20))


@dataclass(frozen=True)
class SolutionCounts:
    """One solution's counts at one threshold (positive = correct step)."""

    tp: int
    fp: int
    tn: int
    fn: int
    label: int | None  # 0-based earliest error step, -1 for a correct solution, None when no labelled step is in range
    prediction: int  # 0-based first step predicted erroneous, or -1


def solution_counts(
    step_scores: Sequence[float] | np.ndarray, error_steps: Sequence[int], threshold: float
) -> SolutionCounts:
    """Counts of one solution. ``error_steps`` are 1-based; those past the last step are ignored (as upstream)."""
    predicted_correct = np.asarray(step_scores, dtype=float) > threshold
    erroneous = np.zeros(len(predicted_correct), dtype=bool)
    in_range = [e - 1 for e in error_steps if 1 <= e <= len(predicted_correct)]
    erroneous[in_range] = True
    wrong = np.flatnonzero(~predicted_correct)
    if not error_steps:
        label: int | None = -1
    else:
        label = min(in_range) if in_range else None
    return SolutionCounts(
        tp=int(np.sum(predicted_correct & ~erroneous)),
        fp=int(np.sum(predicted_correct & erroneous)),
        tn=int(np.sum(~predicted_correct & erroneous)),
        fn=int(np.sum(~predicted_correct & ~erroneous)),
        label=label,
        prediction=int(wrong[0]) if len(wrong) else -1,
    )


def mr_eval_f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """F1 as mr_eval computes it: precision, recall and F1 are -1 where their denominator is 0."""
    tp, fp, fn = (np.asarray(x, dtype=float) for x in (tp, fp, fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp != 0, tp / (tp + fp), -1.0)
        recall = np.where(tp + fn != 0, tp / (tp + fn), -1.0)
        return np.where(precision + recall != 0, 2 * precision * recall / (precision + recall), -1.0)


def prm_score(counts: np.ndarray, positive_only: bool) -> np.ndarray:
    """PRMScore from summed (…, ≥4) counts (tp, fp, tn, fn first), floored at 0 like the paper's tables."""
    tp, fp, tn, fn = (counts[..., i] for i in range(4))
    positive = mr_eval_f1(tp, fp, fn)
    score = positive if positive_only else 0.5 * positive + 0.5 * mr_eval_f1(tn, fn, fp)
    return np.where(score > 0, score, 0.0)


def _f1_or_nan(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """F1 of one class; NaN where the scope has no step of that class (tp + fn = 0) or mr_eval finds it undefined."""
    value = mr_eval_f1(tp, fp, fn)
    return np.where((value < 0) | (np.asarray(tp) + np.asarray(fn) == 0), np.nan, value)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def harmonic(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ProcessBench's F1 = 2ab/(a+b) of the two accuracies (0 when both are 0, NaN when either is undefined)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(a + b > 0, 2 * a * b / np.where(a + b > 0, a + b, 1.0), np.where(np.isnan(a + b), np.nan, 0.0))


def scope_metrics(counts: np.ndarray, positive_only: bool) -> dict[str, np.ndarray]:
    """Every metric of one scope from its summed counts (…, len(COUNTS)); NaN where undefined."""
    c = {name: counts[..., i] for i, name in enumerate(COUNTS)}
    acc_error = _ratio(c["err_hits"], c["err_items"])
    acc_correct = _ratio(c["ok_hits"], c["ok_items"])
    return {
        "prm_score": prm_score(counts, positive_only),
        "f1_correct_steps": _f1_or_nan(c["tp"], c["fp"], c["fn"]),
        "f1_error_steps": _f1_or_nan(c["tn"], c["fn"], c["fp"]),
        "first_error_acc_error": acc_error,
        "first_error_acc_correct": acc_correct,
        "first_error_f1": harmonic(acc_error, acc_correct),
    }


@dataclass(frozen=True)
class _Scope:
    label: str
    subsets: tuple[int, ...]
    mean_of_subsets: bool  # a section: unweighted (NaN-skipping) mean of its subsets' values


def step_metrics(
    frame: pd.DataFrame,
    metrics: Sequence[str],
    sections: Mapping[str, Section] | None,
    *,
    resamples: int,
    confidence: float,
    seed: int,
) -> list[MetricValue]:
    """Metrics for overall (counts pooled over every item), each section (mean of its subsets, PRMBench's groups)
    and each subset, with cluster-bootstrap percentile CIs. ``frame`` has ``subset``, ``cluster`` and ``COUNTS``."""
    subsets = sorted(frame["subset"].astype(str).unique())
    subset_codes = pd.Categorical(frame["subset"].astype(str), categories=subsets).codes.astype(np.int64)
    clusters = cluster_codes(frame["cluster"])
    n_sub, n_counts = len(subsets), len(COUNTS)
    cell = clusters.codes * n_sub + subset_codes
    values = frame[list(COUNTS)].to_numpy(float)
    sums = cluster_sums(cell, clusters.n * n_sub, values).reshape(clusters.n, n_sub * n_counts)
    items = np.bincount(subset_codes, minlength=n_sub)

    code = {name: i for i, name in enumerate(subsets)}
    scopes = [_Scope("overall", tuple(range(n_sub)), False)]
    for name, section in (sections or {}).items():
        present = tuple(code[s] for s in section.subsets if s in code)
        if present:
            scopes.append(_Scope(f"section:{name}", present, True))
    scopes += [_Scope(f"subset:{name}", (i,), False) for i, name in enumerate(subsets)]
    point_totals = sums.sum(axis=0).reshape(n_sub, n_counts)
    # A scope without any labelled erroneous step scores F1 of correct steps alone (PRMBench's multi_solutions).
    positive_only = [bool(point_totals[list(s.subsets), 1:3].sum() == 0) for s in scopes]
    per_subset_positive_only = [bool(point_totals[i, 1:3].sum() == 0) for i in range(n_sub)]

    def statistic(weights: np.ndarray) -> np.ndarray:  # (r, clusters) -> (r, scopes, metrics)
        totals = (weights @ sums).reshape(-1, n_sub, n_counts)
        per_subset = [scope_metrics(totals[:, i], per_subset_positive_only[i]) for i in range(n_sub)]
        out = np.full((len(weights), len(scopes), len(metrics)), np.nan)
        for s, scope in enumerate(scopes):
            if scope.mean_of_subsets:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: the metric is undefined here
                    for m, name in enumerate(metrics):
                        out[:, s, m] = np.nanmean(np.stack([per_subset[i][name] for i in scope.subsets]), axis=0)
            else:
                pooled = scope_metrics(totals[:, list(scope.subsets)].sum(axis=1), positive_only[s])
                for m, name in enumerate(metrics):
                    out[:, s, m] = pooled[name]
        return out

    point = statistic(np.ones((1, clusters.n)))[0]
    draws = resample(statistic, clusters.n, resamples, seed)
    low, high = LINEAR.interval(draws, confidence) if resamples else (np.full_like(point, np.nan),) * 2
    result = []
    for s, scope in enumerate(scopes):
        n = int(items[list(scope.subsets)].sum())
        for m, name in enumerate(metrics):
            if np.isfinite(point[s, m]):
                result.append(
                    MetricValue(
                        name, float(point[s, m]), bound(low[s, m]), bound(high[s, m]), n, LINEAR.method, scope.label
                    )
                )
    return result


def threshold_sweep(
    step_scores: Sequence[np.ndarray], error_steps: Sequence[Sequence[int]], thresholds: Sequence[float]
) -> dict[str, list[float | None]]:
    """Overall PRMScore and ProcessBench F1 at each threshold (point values: a curve to read, not to tune on)."""
    curve: dict[str, list[float | None]] = {
        "threshold": [float(t) for t in thresholds],
        "prm_score": [],
        "first_error_f1": [],
    }
    for threshold in thresholds:
        rows = [solution_counts(s, e, threshold) for s, e in zip(step_scores, error_steps)]
        counts = np.array([_count_row(r) for r in rows], dtype=float).sum(axis=0)
        positive_only = bool(counts[1:3].sum() == 0)
        values = scope_metrics(counts, positive_only)
        for name in ("prm_score", "first_error_f1"):
            value = float(values[name])
            curve[name].append(value if np.isfinite(value) else None)
    return curve


def _count_row(c: SolutionCounts) -> tuple[int, ...]:
    erroneous = c.label is not None and c.label >= 0
    correct = c.label == -1
    hit = c.label is not None and c.prediction == c.label
    return (c.tp, c.fp, c.tn, c.fn, int(erroneous), int(erroneous and hit), int(correct), int(correct and hit))


def count_row(c: SolutionCounts) -> dict[str, int]:
    """The per-item ``COUNTS`` columns of one solution."""
    return dict(zip(COUNTS, _count_row(c)))
