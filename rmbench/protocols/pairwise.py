"""Pairwise accuracy (METRICS.md §1): one chosen against one rejected response per item.

Used by RewardBench v1, RM-Bench pairs, LLMBar, HH-RLHF and RMB pairwise; sections (RewardBench v1 style) come
from the suite's metric options, never from code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np

from rmbench.items import PreferenceItem
from rmbench.metrics.stats import pairwise_outcome, sectioned_metrics
from rmbench.metrics.tie_effect import TIES, other_column, other_policy, with_tie_effect, without_tie_columns
from rmbench.protocols.aggregate import PreferenceScoring, checked_scores, per_item_frame, require_evaluated
from rmbench.protocols.base import ItemLocalProtocol, ItemOutcomes, MetricOptions, ProtocolResult, ResponseCounts
from rmbench.requests import Score


class PairwiseProtocol(PreferenceScoring, ItemLocalProtocol):
    """Metric ``accuracy``: per item 1 / 0.5 / 0 (expected tie policy) or 1 / 0 (strict)."""

    name: ClassVar[str] = "pairwise"
    headline: ClassVar[str | None] = "accuracy"
    response_counts: ClassVar[ResponseCounts | None] = (1, 1)

    def outcomes(
        self,
        items: Sequence[PreferenceItem],
        scores: Mapping[str, Score],
        options: MetricOptions,
        *,
        require_any: bool = False,
    ) -> ItemOutcomes:
        resolved = checked_scores(items, scores, options, self.name, self.counts, require_any=require_any)
        chosen = np.array([c[0] for c in resolved.chosen])
        rejected = np.array([r[0] for r in resolved.rejected])
        frame = per_item_frame(
            resolved.items,
            accuracy=pairwise_outcome(chosen, rejected, options.tie_policy),
            **{
                other_column("accuracy"): pairwise_outcome(chosen, rejected, other_policy(options.tie_policy)),
                TIES: chosen == rejected,
            },
        )
        return ItemOutcomes(frame, resolved.excluded)

    def summarize(self, outcomes: ItemOutcomes, options: MetricOptions) -> ProtocolResult:
        require_evaluated(outcomes)
        table = sectioned_metrics(outcomes.per_item, ["accuracy"], options)
        return ProtocolResult(
            metrics=with_tie_effect(table.metric_values(), outcomes.per_item, options.sections),
            per_item=without_tie_columns(outcomes.per_item),
            excluded=outcomes.excluded,
            extra={"tie_policy": options.tie_policy, "aggregate": options.aggregate, **table.notes()},
        )
