"""Contrast-instruction consistency (METRICS.md §6; Shen et al. 2023): does the RM tell two similar instructions apart?

Each item (q1, q2, r1, r2) is four requests: R(q1,r1), R(q1,r2), R(q2,r2), R(q2,r1). Per item, strictly (a tie is
a failure whatever tie policy the suite names, because the question is whether the RM separates the two):

- ``response_consistency``: R(q1,r1) > R(q1,r2) and R(q2,r2) > R(q2,r1) (each instruction prefers its response);
- ``instruction_consistency``: R(q1,r1) > R(q2,r1) and R(q2,r2) > R(q1,r2) (each response prefers its instruction);
- the one-direction rates ``response_q1``, ``response_q2``, ``instruction_r1``, ``instruction_r2``.

Items whose two instructions or two responses are identical cannot be consistent by construction: by default they
count as failures, as METRICS.md §6 reads (a fraction of all items) and as upstream's scores count them; a suite may
set ``params: {degenerate: exclude}`` to leave them out and count them instead. Either way their number is reported.
Items with a missing or NaN score are excluded and counted, never scored as 0.

Bootstrap clusters: items that share an instruction share scores (upstream sets repeat instructions, and hold
mirrored (q2, q1) copies of items), so they are resampled together: a cluster is a connected component of the
"shares an instruction" graph, unless the suite maps ``fields.cluster``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rmbench.errors import ScoreError, SuiteError
from rmbench.items import ContrastItem, Conversation
from rmbench.metrics.stats import sectioned_metrics
from rmbench.protocols.aggregate import per_item_frame, scalar
from rmbench.protocols.base import Aggregation, MetricOptions, ProtocolResult, SuiteProtocol
from rmbench.requests import Score, ScoreRequest

METRICS = (
    "response_consistency",
    "instruction_consistency",
    "response_q1",
    "response_q2",
    "instruction_r1",
    "instruction_r2",
)


class ContrastParams(BaseModel):
    """``metrics.params`` of a contrast suite."""

    model_config = ConfigDict(extra="forbid")

    degenerate: Literal["fail", "exclude"] = Field(
        "fail",
        description="Items with q1 == q2 or r1 == r2: keep them as failures, or exclude and count them.",
    )


def four_requests(item: ContrastItem) -> tuple[ScoreRequest, ScoreRequest, ScoreRequest, ScoreRequest]:
    """R(q1,r1), R(q1,r2), R(q2,r2), R(q2,r1), in this order everywhere."""
    return (
        ScoreRequest.of(item.q1, item.r1),
        ScoreRequest.of(item.q1, item.r2),
        ScoreRequest.of(item.q2, item.r2),
        ScoreRequest.of(item.q2, item.r1),
    )


def consistency_outcomes(scores: np.ndarray) -> dict[str, np.ndarray]:
    """Per-item 0/1 outcomes from an (n, 4) array of [R(q1,r1), R(q1,r2), R(q2,r2), R(q2,r1)]; ties fail."""
    own1, cross1, own2, cross2 = np.asarray(scores, dtype=float).T
    response_q1, response_q2 = own1 > cross1, own2 > cross2
    instruction_r1, instruction_r2 = own1 > cross2, own2 > cross1
    outcomes = {
        "response_consistency": response_q1 & response_q2,
        "instruction_consistency": instruction_r1 & instruction_r2,
        "response_q1": response_q1,
        "response_q2": response_q2,
        "instruction_r1": instruction_r1,
        "instruction_r2": instruction_r2,
    }
    return {name: values.astype(float) for name, values in outcomes.items()}


class ContrastProtocol(SuiteProtocol):
    """Metrics: response and instruction consistency (both directions) and the four one-direction rates."""

    name: ClassVar[str] = "contrast"
    item_type: ClassVar[type] = ContrastItem

    def requests(self, items: Sequence[ContrastItem]) -> list[ScoreRequest]:
        return [request for item in items for request in four_requests(item)]

    def evaluate(
        self, items: Sequence[ContrastItem], scores: Mapping[str, Score], options: MetricOptions
    ) -> ProtocolResult:
        params = _params(options)
        clusters = instruction_clusters(items)
        kept, rows, excluded, degenerate = [], [], Counter[str](), 0
        for item in items:
            values = [_value(request, scores, options.aggregate) for request in four_requests(item)]
            if any(v is None for v in values):
                excluded["missing_score"] += 1
            elif not all(math.isfinite(v) for v in values):  # type: ignore[arg-type]
                excluded["invalid_score"] += 1
            else:
                if item.q1 == item.q2 or item.r1 == item.r2:
                    degenerate += 1
                    if params.degenerate == "exclude":
                        excluded["identical_instructions" if item.q1 == item.q2 else "identical_responses"] += 1
                        continue
                kept.append(item)
                rows.append(values)
        if not kept:
            raise ScoreError(f"no contrast item could be evaluated (excluded: {dict(sorted(excluded.items()))})")

        values = np.asarray(rows, dtype=float)
        frame = per_item_frame(kept, **consistency_outcomes(values))  # type: ignore[arg-type]
        frame["cluster"] = [clusters[item.id] for item in kept]
        table = sectioned_metrics(frame, list(METRICS), options)
        own1, cross1, own2, cross2 = values.T
        return ProtocolResult(
            metrics=table.metric_values(),
            per_item=frame,
            excluded=dict(sorted(excluded.items())),
            extra={
                "tie_policy": "strict",
                **(
                    {}
                    if options.tie_policy == "strict"
                    else {
                        "tie_policy_note": "METRICS.md §6 counts ties as failures; "
                        f"the requested policy '{options.tie_policy}' does not apply"
                    }
                ),
                "aggregate": options.aggregate,
                "degenerate": {"policy": params.degenerate, "items": degenerate},
                "items_with_ties": {
                    "response": int(np.sum((own1 == cross1) | (own2 == cross2))),
                    "instruction": int(np.sum((own1 == cross2) | (own2 == cross1))),
                },
                "clusters": int(frame["cluster"].nunique()),
                "cluster_rule": "suite fields.cluster"
                if any("cluster" in item.meta for item in kept)
                else "items sharing an instruction (connected components)",
                **table.notes(),
            },
        )


def _params(options: MetricOptions) -> ContrastParams:
    try:
        return ContrastParams.model_validate(options.params)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise SuiteError(f"metrics.params of protocol 'contrast': {problems}") from None


def _value(request: ScoreRequest, scores: Mapping[str, Score], how: Aggregation) -> float | None:
    score = scores.get(request.key)
    if score is None:
        return None
    if score.steps and not score.is_valid:
        return math.nan
    return scalar(score, how)


def instruction_clusters(items: Sequence[ContrastItem]) -> dict[str, str]:
    """item id → bootstrap cluster: the suite's mapped cluster, else ``contrast:<first item id>`` of the connected
    component of items linked by a shared instruction (union-find over the instructions)."""
    parent: dict[Conversation, Conversation] = {}

    def root(node: Conversation) -> Conversation:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for item in items:
        parent[root(item.q2)] = root(item.q1)
    first: dict[Conversation, str] = {}
    clusters = {}
    for item in items:
        component = first.setdefault(root(item.q1), item.id)
        clusters[item.id] = str(item.meta["cluster"]) if "cluster" in item.meta else f"contrast:{component}"
    return clusters

