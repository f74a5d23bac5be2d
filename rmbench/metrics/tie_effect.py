"""How much ties move a number (METRICS.md §0): per scope, the tied comparisons and the value under the other policy.

A tie-aware protocol computes each per-item outcome under both policies. Beside a metric column ``accuracy`` its
per-item frame then holds ``accuracy@other_policy`` and a ``ties`` column (the item's tied comparisons);
``with_tie_effect`` folds those into the suite-level ``MetricValue``s (same scopes, same sections and weights as
the reported value) and ``without_tie_columns`` drops them from the frame a run keeps, so per-item files and paired
comparisons see only the metrics themselves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from rmbench.metrics.options import OTHER_POLICY, MetricValue, Section, TiePolicy
from rmbench.metrics.stats import sectioned_mean_draws

TIES = "ties"
SUFFIX = "@other_policy"


def other_column(metric: str) -> str:
    """The per-item column that holds ``metric`` under the other tie policy."""
    return f"{metric}{SUFFIX}"


def other_policy(policy: TiePolicy) -> TiePolicy:
    return OTHER_POLICY[policy]


def with_tie_effect(
    metrics: Sequence[MetricValue], frame: pd.DataFrame, sections: Mapping[str, Section] | None
) -> list[MetricValue]:
    """``metrics`` with ``ties`` and ``other_policy_value`` set wherever ``frame`` has the other-policy column.

    ``sections`` must be those the values were computed with, so the other-policy value of a scope is the same
    (weighted) mean over the same subsets. Metrics without such a column are returned unchanged.
    """
    names = list(dict.fromkeys(m.name for m in metrics if other_column(m.name) in frame.columns))
    if not names or TIES not in frame.columns:
        return list(metrics)
    table = sectioned_mean_draws(frame, [other_column(n) for n in names], sections, resamples=0, seed=0)
    ties_by_subset = frame.groupby(frame["subset"].astype(str))[TIES].sum()
    other = {
        (label, name): float(table.point[i, j]) for i, label in enumerate(table.labels) for j, name in enumerate(names)
    }
    ties = {
        label: int(sum(ties_by_subset.get(s, 0) for s in subsets))
        for label, subsets in zip(table.labels, table.subsets)
    }
    out = []
    for metric in metrics:
        value = other.get((metric.scope, metric.name))
        if value is None or not np.isfinite(value):
            out.append(metric)
        else:
            out.append(dataclasses.replace(metric, ties=ties[metric.scope], other_policy_value=value))
    return out


def without_tie_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The per-item frame less the columns ``with_tie_effect`` reads."""
    return frame.drop(columns=[c for c in frame.columns if c == TIES or c.endswith(SUFFIX)])
