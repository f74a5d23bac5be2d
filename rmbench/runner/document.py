"""results.json's content from an evaluated run: the counts, and the document around the protocol's result.

Everything here is deterministic (same inputs, same bytes); what varies run to run goes to run.json instead."""

from __future__ import annotations

from typing import Any

from rmbench.protocols.base import MetricOptions
from rmbench.runner.loop import Evaluated
from rmbench.suite import Suite


def counts(evaluated: Evaluated, token_budget: int) -> dict[str, Any]:
    """results.json's counts; padding is that of the batches a fresh run would form (``planned_padding``), so it
    does not depend on what was cached."""
    from rmbench.scoring import planned_padding

    stats = evaluated.stats
    real, padded = planned_padding(evaluated.lengths, token_budget)
    return {
        "items": evaluated.n_items,
        "items_evaluated": int(evaluated.result.per_item.shape[0]),
        "requests": stats.requests,
        "unique_requests": stats.unique_requests,
        "real_tokens": real,
        "padded_tokens": padded,
        "padding_efficiency": real / padded if padded else None,
        "truncated": stats.truncated,
        "invalid_scores": stats.invalid_scores,
    }


def results_document(
    suite: Suite,
    evaluated: Evaluated,
    options: MetricOptions,
    *,
    model: dict[str, Any],
    models: list[dict[str, Any]] | None,
    token_budget: int,
    limit: int | None,
    perturbations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """results.json (less the schema and environment stamps ``rmbench.results.rundir`` adds)."""
    result = evaluated.result
    return {
        "suite": {
            "name": suite.name,
            "version": suite.version,
            "protocol": suite.protocol,
            "content_hash": suite.content_hash,
        },
        "data": evaluated.provenance,
        "model": model,
        "models": models,
        "engine_options": {"token_budget": token_budget},
        "metric_options": options.model_dump(),
        "limit": limit,
        "metrics": [m.as_dict() for m in result.metrics],
        "excluded": result.excluded,
        "counts": counts(evaluated, token_budget),
        "extra": result.extra,
        # Only when the run had perturbations: results.json of every other run stays byte for byte as it was.
        **({"perturbations": perturbations} if perturbations else {}),
    }


def execution_record(evaluated: Evaluated, **facts: Any) -> dict[str, Any]:
    """run.json: this execution's facts plus the main model's scheduler counts."""
    stats = evaluated.stats
    return facts | {
        "cache_hits": stats.cache_hits,
        "scored": stats.scored,
        "batches": stats.batches,
        "batch_real_tokens": stats.real_tokens,
        "batch_padded_tokens": stats.padded_tokens,
    }
