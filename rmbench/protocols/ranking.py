"""One good response against N bad ones (METRICS.md §2): RewardMATH, RewardBench 2 best-of-4, RMB best-of-n.

Accuracy asks whether the good response ranks first; the reciprocal rank says how far down it landed. Both share
credit over ties according to the tie policy. The per-item column ``mrr`` holds the reciprocal rank, named after
the metric its mean is, so paired comparisons find it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np

from rmbench.items import PreferenceItem
from rmbench.metrics.stats import one_vs_many_accuracy, padded, reciprocal_rank, sectioned_metrics, win_tie_counts
from rmbench.metrics.tie_effect import TIES, other_column, other_policy, with_tie_effect, without_tie_columns
from rmbench.protocols.aggregate import PreferenceScoring, checked_scores, per_item_frame, require_evaluated
from rmbench.protocols.base import ItemLocalProtocol, ItemOutcomes, MetricOptions, ProtocolResult, ResponseCounts
from rmbench.requests import Score


class BestOfNProtocol(PreferenceScoring, ItemLocalProtocol):
    """Metrics ``accuracy`` and ``mrr`` over items with 1 chosen and N ≥ 1 rejected responses."""

    name: ClassVar[str] = "best_of_n"
    headline: ClassVar[str | None] = "accuracy"
    response_counts: ClassVar[ResponseCounts | None] = (1, None)

    def outcomes(
        self,
        items: Sequence[PreferenceItem],
        scores: Mapping[str, Score],
        options: MetricOptions,
        *,
        require_any: bool = False,
    ) -> ItemOutcomes:
        resolved = checked_scores(items, scores, options, self.name, self.counts, require_any=require_any)
        good = np.array([c[0] for c in resolved.chosen])
        g, t = win_tie_counts(good, padded(resolved.rejected))
        other = other_policy(options.tie_policy)
        frame = per_item_frame(
            resolved.items,
            accuracy=one_vs_many_accuracy(g, t, options.tie_policy),
            mrr=reciprocal_rank(g, t, options.tie_policy),
            **{
                other_column("accuracy"): one_vs_many_accuracy(g, t, other),
                other_column("mrr"): reciprocal_rank(g, t, other),
                TIES: t,
            },
        )
        return ItemOutcomes(frame, resolved.excluded, {"n_rejected": sorted({len(r) for r in resolved.rejected})})

    def summarize(self, outcomes: ItemOutcomes, options: MetricOptions) -> ProtocolResult:
        require_evaluated(outcomes)
        table = sectioned_metrics(outcomes.per_item, ["accuracy", "mrr"], options)
        return ProtocolResult(
            metrics=with_tie_effect(table.metric_values(), outcomes.per_item, options.sections),
            per_item=without_tie_columns(outcomes.per_item),
            excluded=outcomes.excluded,
            extra={
                "tie_policy": options.tie_policy,
                "aggregate": options.aggregate,
                "n_rejected": outcomes.extra.get("n_rejected", []),
                **table.notes(),
            },
        )
