"""What a run needs to know about an engine before (or instead of) loading it: its fingerprint, the score cache's
key, and its default batch budget. A fully cached run reads every score by fingerprint and so loads no model."""

from __future__ import annotations

import importlib
from typing import Any

from rmbench.errors import ModelSpecError
from rmbench.modelspec import ModelSpec


def engine_class(spec: ModelSpec) -> Any:
    """The class (or factory) ``rmbench.engines.ENGINES`` names for ``spec.engine``, imported but not instantiated."""
    from rmbench.engines import ENGINES

    target = ENGINES.get(spec.engine)
    if target is None:
        raise ModelSpecError(f"unknown engine '{spec.engine}'. Known: {', '.join(sorted(ENGINES))}")
    module_name, attr = target.split(":")
    return getattr(importlib.import_module(module_name), attr)


def knows_fingerprint(spec: ModelSpec) -> bool:
    """Whether the engine computes its fingerprint without loading weights (``EngineClass.fingerprint_of``)."""
    # Bridge until the engines part's classmethods are merged (then every engine has them): drop with the fallback.
    return callable(getattr(engine_class(spec), "fingerprint_of", None))


def fingerprint_of(spec: ModelSpec) -> str:
    """The fingerprint the engine for ``spec`` would report, without loading its weights where the engine can."""
    cls = engine_class(spec)
    if knows_fingerprint(spec):
        return str(cls.fingerprint_of(spec))
    # Fallback until every engine has ``fingerprint_of`` (the engines part): load the engine for it. Drop after merging.
    from rmbench.engines import create_engine

    return create_engine(spec).fingerprint


def default_batch_tokens_of(spec: ModelSpec) -> int | None:
    """The engine's default padded-token budget without loading it, or None where the engine cannot say."""
    method = getattr(engine_class(spec), "default_batch_tokens_of", None)  # bridge: see ``knows_fingerprint``
    return None if method is None else int(method(spec))
