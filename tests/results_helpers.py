"""Small valid results documents for tests that need a ``RunResults`` without scoring anything."""

from __future__ import annotations

from typing import Any

from rmbench.protocols.base import MetricOptions
from rmbench.results.io import build_results
from rmbench.results.schema import RunResults


def minimal_results(
    *, suite: str = "x", protocol: str = "pairwise", metrics: list[dict[str, Any]] | None = None
) -> RunResults:
    """A one-model run of suite ``suite`` v1 with the given metric records and nothing scored."""
    return build_results(
        suite={"name": suite, "version": "1", "protocol": protocol, "content_hash": "0" * 64},
        data=[],
        model={"spec": {"model": "", "engine": "length"}, "fingerprint": "f", "engine": {}},
        engine_options={},
        metric_options=MetricOptions().model_dump(),
        limit=None,
        metrics=metrics or [],
        excluded={},
        counts={"items": 0, "items_evaluated": 0, "requests": 0, "unique_requests": 0, "padding_efficiency": None,
                "truncated": 0, "invalid_scores": 0},
        extra={},
        environment={"python": "3", "packages": {}, "git": {"commit": None, "dirty": None}},
    )
