"""From engine ``Score``s to the scalars protocols compare (METRICS.md §3), shared by the preference protocols.

A process reward model scores each step; its solution score is an aggregation of the steps chosen by the suite or
CLI (``min`` by default). An item whose scores are missing or not finite after aggregation is excluded and counted,
never scored as 0. Nothing here computes a metric.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd

from rmbench.errors import DataError, ScoreError
from rmbench.items import PreferenceItem, Response, response_count_problem
from rmbench.protocols.base import Aggregation, ItemOutcomes, MetricOptions, ResponseCounts
from rmbench.requests import Score, ScoreRequest


def _geometric_mean(s: np.ndarray) -> float:
    return float(np.prod(s) ** (1.0 / len(s)))


def _mean_logit(s: np.ndarray) -> float:
    """sigmoid(mean(logit p)): 0 or 1 steps give ±inf logits (one of each: NaN, an invalid score)."""
    return float(1.0 / (1.0 + np.exp(-np.mean(np.log(s / (1.0 - s))))))


def _mean_odd(s: np.ndarray) -> float:
    """max(0, mean(p / (1 − p))): a step with p = 1 has infinite odds (an invalid score)."""
    return float(np.maximum(0.0, np.mean(s / (1.0 - s))))


_AGGREGATIONS: dict[str, Callable[[np.ndarray], float]] = {
    "min": lambda s: float(np.min(s)),
    "prod": lambda s: float(np.prod(s)),
    "last": lambda s: float(s[-1]),
    "mean": lambda s: float(np.mean(s)),
    "max": lambda s: float(np.max(s)),
    # RewardMATH's other aggregations (RewardMATH_official src/evaluation/eval.py, _calculate_final_reward); they
    # read step scores as probabilities.
    "geometric_mean": _geometric_mean,
    "mean_logit": _mean_logit,
    "mean_odd": _mean_odd,
}


def aggregate_steps(steps: Sequence[float], how: Aggregation) -> float:
    """One solution score from per-step scores: min (default), prod, last, mean, max, geometric_mean, mean_logit
    or mean_odd (METRICS.md §3; the last three as RewardMATH defines them). A value that is not finite (e.g. the
    logit of a step scored exactly 1) is returned as is: callers count it as an invalid score."""
    if how not in _AGGREGATIONS:
        raise ValueError(f"unknown step aggregation '{how}'; known: {', '.join(_AGGREGATIONS)}")
    if len(steps) == 0:
        raise ValueError("cannot aggregate an empty list of step scores")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _AGGREGATIONS[how](np.asarray(steps, dtype=float))


def scalar(score: Score, how: Aggregation) -> float:
    """The number a protocol compares: the aggregated steps of a PRM score, else the scalar value."""
    return aggregate_steps(score.steps, how) if score.steps else float(score.value)


def preference_requests(items: Sequence[PreferenceItem]) -> list[ScoreRequest]:
    """One request per response (chosen first, then rejected), in item order."""
    return [ScoreRequest.of(item.prompt, response) for item in items for response in (*item.chosen, *item.rejected)]


class PreferenceScoring:
    """Mixin for the protocols over ``PreferenceItem`` that score each response once (placed before the protocol
    base, so its ``requests`` fills the abstract one): the item type and requests are then declared in one place."""

    item_type: ClassVar[type] = PreferenceItem

    def requests(self, items: Sequence[PreferenceItem]) -> list[ScoreRequest]:
        return preference_requests(items)


def checked_scores(
    items: Sequence[PreferenceItem],
    scores: Mapping[str, Score],
    options: MetricOptions,
    protocol: str,
    counts: ResponseCounts,
    *,
    require_any: bool = True,
) -> ResolvedScores:
    """``require_counts`` on every item, then ``resolve_scores`` with the suite's aggregation."""
    for item in items:
        require_counts(item, protocol, counts)
    return resolve_scores(items, scores, options.aggregate, require_any=require_any)


def require_counts(item: PreferenceItem, protocol: str, counts: ResponseCounts) -> None:
    """Check an item's shape: exactly ``counts`` = (chosen, rejected) responses (None: at least one). Loading a suite
    checks this already, naming the file and line (``ScoringProtocol.response_counts``); this guards items built
    in code."""
    problem = response_count_problem(item, protocol, *counts)
    if problem is not None:
        raise DataError(problem[1], record=item.id, field=problem[0])


@dataclass
class ResolvedScores:
    """Scalar scores of the items that could be evaluated, in input order, and counts of the others by reason."""

    items: list[PreferenceItem] = field(default_factory=list)
    chosen: list[np.ndarray] = field(default_factory=list)
    rejected: list[np.ndarray] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=dict)


def resolve_scores(
    items: Sequence[PreferenceItem], scores: Mapping[str, Score], how: Aggregation, *, require_any: bool = True
) -> ResolvedScores:
    """Look every response's score up by request key and aggregate it.

    Items with a missing score (``missing_score``) or any NaN/inf score after aggregation (``invalid_score``) are
    left out and counted. Raises ScoreError when no item is left: a metric over nothing is no metric (a chunk of
    a streamed run passes ``require_any=False``; the whole run is checked when it is summarized).
    """
    if not items and require_any:
        raise DataError("no items to evaluate")
    resolved, excluded = ResolvedScores(), Counter[str]()
    for item in items:
        values = [_value(item, r, scores, how) for r in (*item.chosen, *item.rejected)]
        if any(v is None for v in values):
            excluded["missing_score"] += 1
        elif not all(math.isfinite(v) for v in values):  # type: ignore[arg-type]
            excluded["invalid_score"] += 1
        else:
            array = np.asarray(values, dtype=float)
            resolved.items.append(item)
            resolved.chosen.append(array[: len(item.chosen)])
            resolved.rejected.append(array[len(item.chosen) :])
    resolved.excluded = dict(sorted(excluded.items()))
    if not resolved.items and require_any:
        raise ScoreError(f"no item has valid scores for every response (excluded: {resolved.excluded})")
    return resolved


def _value(item: PreferenceItem, response: Response, scores: Mapping[str, Score], how: Aggregation) -> float | None:
    score = scores.get(ScoreRequest.of(item.prompt, response).key)
    if score is None:
        return None
    if score.steps and not score.is_valid:
        return math.nan
    return scalar(score, how)


def per_item_frame(items: Sequence[PreferenceItem], **columns: Sequence[float] | np.ndarray) -> pd.DataFrame:
    """The ``ProtocolResult.per_item`` frame: item_id, subset, cluster, then one float column per metric."""
    frame = pd.DataFrame(
        {
            "item_id": [item.id for item in items],
            "subset": [item.subset for item in items],
            "cluster": [item.cluster for item in items],
        }
    )
    for name, values in columns.items():
        frame[name] = np.asarray(values, dtype=float)
    return frame


def require_evaluated(outcomes: ItemOutcomes) -> None:
    """A suite result needs at least one evaluated item (chunks of a streamed run may have none on their own)."""
    if not len(outcomes.per_item):
        raise ScoreError(f"no item has valid scores for every response (excluded: {outcomes.excluded})")
