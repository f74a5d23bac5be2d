"""The local executor: one engine in this process, batches scored in turn (the default)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from rmbench.batching import ScoredBatch, score_batches
from rmbench.engines.base import Engine
from rmbench.errors import ModelSpecError
from rmbench.modelspec import ModelSpec
from rmbench.requests import ScoreRequest


class LocalExecutor:
    """Runs ``rmbench.batching.score_batches`` on one engine here."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.fingerprint: str = engine.fingerprint
        self.default_batch_tokens: int = engine.default_batch_tokens

    @classmethod
    def from_spec(cls, spec: ModelSpec, **options: Any) -> LocalExecutor:
        if options:
            raise ModelSpecError(f"--workers and --ray-address need --executor ray (got {', '.join(sorted(options))})")
        from rmbench.engines import create_engine

        return cls(create_engine(spec))

    def info(self) -> dict[str, Any]:
        return self.engine.info()

    def describe(self) -> dict[str, Any]:
        """The executor, and a served engine's calls, retries, tokens and cost (``usage()``), which depend on this
        execution (what the cache already held), so they belong in run.json, not results.json."""
        usage = getattr(self.engine, "usage", None)
        return {"executor": "local", **({"usage": usage()} if callable(usage) else {})}

    def scored_batches(
        self, todo: Sequence[ScoreRequest], token_budget: int, *, hidden: bool = False
    ) -> Iterator[ScoredBatch]:
        return score_batches(self.engine, todo, token_budget, hidden=hidden)

    def close(self) -> None:
        """Nothing to free: the engine lives as long as the caller keeps it."""

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
