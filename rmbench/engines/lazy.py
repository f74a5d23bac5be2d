"""What a run needs to know about an engine before (or instead of) loading it: its fingerprint, the score cache's
key, and its default batch budget. A fully cached run reads every score by fingerprint and so loads no model."""

from __future__ import annotations

from typing import Any

from rmbench.modelspec import ModelSpec


def engine_class(spec: ModelSpec) -> Any:
    """The class ``rmbench.engines.ENGINES`` names for ``spec.engine``, imported but not instantiated."""
    from rmbench.engines import ENGINES

    return ENGINES.get(spec.engine)


def fingerprint_of(spec: ModelSpec) -> str:
    """The fingerprint the engine for ``spec`` reports, computed without loading its weights."""
    return str(engine_class(spec).fingerprint_of(spec))


def default_batch_tokens_of(spec: ModelSpec) -> int:
    """The engine's default padded-token budget, without loading it."""
    return int(engine_class(spec).default_batch_tokens_of(spec))
