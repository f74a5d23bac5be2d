"""An executor created when the first uncached batch appears, so a fully cached run loads no model.

Until then the fingerprint and the default batch budget come from the engine class (``rmbench.engines.lazy``), and
what results.json takes from a live engine (``info()``) from the score cache's engine facts, written when the engine
was first created. A first run and its fully cached re-run therefore write the same results.json.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from rmbench.cache import ScoreCache
from rmbench.errors import ModelSpecError
from rmbench.modelspec import ModelSpec
from rmbench.requests import ScoreRequest

if TYPE_CHECKING:
    from rmbench.batching import ScoredBatch
    from rmbench.executors import Executor

INFO = "info"
BATCH_TOKENS = "default_batch_tokens"


class LazyExecutor:
    """Any executor (``create_executor(name, spec, **options)``), created on first need."""

    def __init__(self, name: str, spec: ModelSpec, cache: ScoreCache, **options: Any):
        from rmbench.engines.lazy import fingerprint_of

        self.name, self.spec, self.cache, self.options = name, spec, cache, options
        self._executor: Executor | None = None
        #: Seconds spent creating the executor (loading the model), when it was created.
        self.load_s = 0.0
        self.fingerprint: str = fingerprint_of(spec)

    @property
    def loaded(self) -> bool:
        return self._executor is not None

    def _create(self) -> Executor:
        """Create the executor (loads the model) and record its facts in the cache on first creation."""
        if self._executor is None:
            from rmbench.executors import create_executor

            clock = time.perf_counter()
            executor = create_executor(self.name, self.spec, **self.options)
            self.load_s = time.perf_counter() - clock
            fingerprint = self.fingerprint
            if executor.fingerprint != fingerprint:
                # Scores written under a key that does not say how they were computed would later be served for
                # inputs cut differently: refuse. The usual cause is a hub model this run downloaded, whose limit
                # could not be read before (rmbench.engines.encoding.declared_limits); the next run reads it.
                executor.close()
                from rmbench.engines.lazy import fingerprint_of

                why = (
                    "the model's input limit (its effective max_length) could not be read before loading (a hub "
                    "model this run downloaded); run again: its config files are now in the hub cache"
                    if fingerprint_of(self.spec) == executor.fingerprint
                    else "the cache key would be wrong"
                )
                raise ModelSpecError(
                    f"engine '{self.spec.engine}' loaded fingerprint {executor.fingerprint}, but its class computed "
                    f"{fingerprint} without loading: {why}"
                )
            self.cache.put_fact(executor.fingerprint, INFO, executor.info())
            self.cache.put_fact(executor.fingerprint, BATCH_TOKENS, executor.default_batch_tokens)
            self._executor = executor
        return self._executor

    @property
    def default_batch_tokens(self) -> int:
        from rmbench.engines.lazy import default_batch_tokens_of

        return default_batch_tokens_of(self.spec)

    def info(self) -> dict[str, Any]:
        """The engine's ``info()`` as first recorded in the cache (the same on a first run and a cached re-run)."""
        recorded = self.cache.get_fact(self.fingerprint, INFO)
        if recorded is None:
            self._create()
            recorded = self.cache.get_fact(self.fingerprint, INFO)
        return dict(recorded)

    def describe(self) -> dict[str, Any]:
        if self._executor is None:
            return {"executor": self.name, "engine_loaded": False}
        return self._executor.describe()

    def scored_batches(
        self, todo: Sequence[ScoreRequest], token_budget: int, *, hidden: bool = False
    ) -> Iterator[ScoredBatch]:
        if not todo:
            return iter(())
        return self._create().scored_batches(todo, token_budget, hidden=hidden)

    def close(self) -> None:
        """Close the executor if it was created (a Ray executor frees its actors and GPUs)."""
        if self._executor is not None:
            self._executor.close()

    def __enter__(self) -> LazyExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
