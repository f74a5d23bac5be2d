"""Pairwise judging: a generative judge compares chosen and rejected, once in each order.

Judges favour a position, so every pair is judged twice, chosen shown first and rejected shown first; each
ordered comparison is its own cached ``PairRequest`` whose score is the verdict (+1 first wins, -1 second wins,
0 tie, NaN unparseable). Per item, in METRICS.md §1 terms (the judge's preference stands in for a score margin):

- ``accuracy``: the verdict both orders agree on (1 chosen, 0 rejected, tie per the tie policy); a pair whose
  verdicts disagree across orders counts as a tie (0.5 expected, 0 strict).
- ``position_consistency``: 1 if both orders give the same verdict (ties included).
- ``single_order_accuracy``: the verdict of the first presentation alone, its order drawn per item from the
  seed (``options.seed``); what a judge asked once, in random order, would score. An item whose
  ``reversed_order`` is set (the ``response_order`` perturbation) is presented in the other order: the
  verdict of the other judged order, so nothing is judged again and ``accuracy``, ``position_consistency``
  and ``first_position_rate``, which read both orders, cannot change.
- ``first_position_rate``: the share of the two verdicts that picked whichever response was shown first
  (0.5 for a judge without position bias).

Items with an unparseable verdict in either order are excluded and counted as ``unparseable_verdict`` (or
``prompt_too_long`` when the judge prompt did not fit), never scored; ``extra`` gives the verdict counts over all
judgments.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np

from rmbench.errors import ScoreError
from rmbench.items import PreferenceItem
from rmbench.judges.pairs import FIRST_WINS, SECOND_WINS, TIE, PairRequest
from rmbench.metrics.stats import pairwise_outcome, sectioned_metrics
from rmbench.protocols.aggregate import per_item_frame, require_counts
from rmbench.protocols.base import MetricOptions, ProtocolResult, ResponseCounts, SuiteProtocol
from rmbench.requests import Score, ScoreRequest

METRICS = ["accuracy", "position_consistency", "single_order_accuracy", "first_position_rate"]


def chosen_shown_first(item_id: str, seed: int) -> bool:
    """The seeded order of an item's first presentation: a hash of (seed, item id), so it depends on neither the
    order of the items nor which other items a run keeps."""
    return hashlib.sha256(f"{seed}:{item_id}".encode()).digest()[0] % 2 == 0


def ordered_requests(item: PreferenceItem) -> tuple[PairRequest, PairRequest]:
    """(chosen shown first, rejected shown first)."""
    chosen, rejected = item.chosen[0], item.rejected[0]
    return PairRequest.ordered(item.prompt, chosen, rejected), PairRequest.ordered(item.prompt, rejected, chosen)


class PairwiseJudgeProtocol(SuiteProtocol):
    """Metrics ``accuracy``, ``position_consistency``, ``single_order_accuracy`` and ``first_position_rate``."""

    name: ClassVar[str] = "pairwise_judge"
    item_type: ClassVar[type] = PreferenceItem
    headline: ClassVar[str | None] = "accuracy"
    order_outcome: ClassVar[str | None] = "single_order_accuracy"
    response_counts: ClassVar[ResponseCounts | None] = (1, 1)

    def requests(self, items: Sequence[PreferenceItem]) -> list[ScoreRequest]:
        for item in items:
            require_counts(item, self.name, self.counts)
        return [request for item in items for request in ordered_requests(item)]

    def evaluate(
        self, items: Sequence[PreferenceItem], scores: Mapping[str, Score], options: MetricOptions
    ) -> ProtocolResult:
        kept: list[PreferenceItem] = []
        verdicts: list[tuple[float, float]] = []  # (chosen-first verdict, rejected-first verdict)
        excluded: Counter[str] = Counter()
        tally: Counter[str] = Counter()
        for item in items:
            require_counts(item, self.name, self.counts)
            found = [scores.get(r.key) for r in ordered_requests(item)]
            values = [math.nan if s is None else float(s.value) for s in found]
            _check_verdicts(item, values)
            tally.update(_verdict_name(s) for s in found if s is not None)
            if any(s is None for s in found):
                excluded["missing_score"] += 1
            elif any(s is not None and s.truncated and not math.isfinite(s.value) for s in found):
                excluded["prompt_too_long"] += 1  # the judge engine does not cut prompts; it skips them
            elif not all(math.isfinite(v) for v in values):
                excluded["unparseable_verdict"] += 1
            else:
                kept.append(item)
                verdicts.append((values[0], values[1]))
        if not kept:
            hint = (
                "; a judge prompt plus the template's max_new_tokens must fit the max length (raise --max-length "
                "up to the model's limit, or lower max_new_tokens in the judge template)"
                if excluded["prompt_too_long"] else ""
            )
            raise ScoreError(
                f"no pair has a verdict in both orders (excluded: {dict(sorted(excluded.items()))}){hint}"
            )

        as_shown = np.array(verdicts)
        chosen_pref = np.column_stack([as_shown[:, 0], -as_shown[:, 1]])  # +1 = chosen preferred, in both orders
        consistent = chosen_pref[:, 0] == chosen_pref[:, 1]
        agreed = np.where(consistent, chosen_pref[:, 0], TIE)  # disagreement across orders is a tie
        first = np.array([chosen_shown_first(item.id, options.seed) != item.reversed_order for item in kept])
        single = np.where(first, chosen_pref[:, 0], chosen_pref[:, 1])
        frame = per_item_frame(
            kept,
            accuracy=pairwise_outcome(agreed, 0.0, options.tie_policy),
            position_consistency=consistent.astype(float),
            single_order_accuracy=pairwise_outcome(single, 0.0, options.tie_policy),
            first_position_rate=(as_shown == FIRST_WINS).mean(axis=1),
        )
        table = sectioned_metrics(frame, METRICS, options)
        return ProtocolResult(
            metrics=table.metric_values(),
            per_item=frame,
            excluded=dict(sorted(excluded.items())),
            extra={
                "tie_policy": options.tie_policy,
                "order_seed": options.seed,
                "judgments": sum(tally.values()),
                "verdicts": dict(sorted(tally.items())),
                **table.notes(),
            },
        )


def _check_verdicts(item: PreferenceItem, values: Sequence[float]) -> None:
    """A reward model's scores are not verdicts: scoring pair requests with one would silently judge only the
    first response, so anything but +1 / 0 / -1 / NaN is refused."""
    for value in values:
        if math.isfinite(value) and value not in (FIRST_WINS, TIE, SECOND_WINS):
            raise ScoreError(
                f"item '{item.id}': score {value} is not a judge verdict (+1, 0, -1); protocol 'pairwise_judge' "
                "needs a pairwise judge engine (judge, judge-vllm)"
            )


def _verdict_name(score: Score) -> str:
    if math.isfinite(score.value):
        return {FIRST_WINS: "first", SECOND_WINS: "second", TIE: "tie"}[score.value]
    return "prompt_too_long" if score.truncated else "unparseable"
