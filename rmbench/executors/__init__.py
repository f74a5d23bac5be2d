"""Where batches are scored: in this process (``local``) or on Ray actors (``ray``), by name.

An executor owns the engines and hands finished batches back; the scheduler (``rmbench.scoring``) keeps the cache,
the counts and the progress bar in the driver, so both executors write the same cache and the same results.json.
Factories are lazy: ``import rmbench`` never imports torch or Ray.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from rmbench.errors import ModelSpecError
from rmbench.modelspec import ModelSpec
from rmbench.registry import Registry

if TYPE_CHECKING:
    from rmbench.batching import ScoredBatch
    from rmbench.engines.base import Engine
    from rmbench.requests import ScoreRequest

__all__ = ["EXECUTORS", "Executor", "ExecutorClass", "as_executor", "create_executor"]

class ExecutorClass(Protocol):
    """What the registry holds: an executor class, built from a model spec and executor options."""

    def from_spec(self, spec: ModelSpec, **options: Any) -> Executor: ...


#: executor name -> executor class (with a ``from_spec`` constructor); imported only when the executor is created.
EXECUTORS: Registry[ExecutorClass] = Registry("executor", ModelSpecError)
EXECUTORS.lazy("local", "rmbench.executors.local:LocalExecutor", "Score batches in this process.")
EXECUTORS.lazy("ray", "rmbench.executors.ray:RayExecutor", "Shard batches over Ray actors (an engine per GPU or node).")


@runtime_checkable
class Executor(Protocol):
    """Scores batches of one model somewhere. Use as a context manager: leaving it frees the workers."""

    #: The engine's fingerprint (the cache key) and its default padded-token budget per batch (read-only: a lazy
    #: executor, ``rmbench.executors.lazy``, may look it up).
    fingerprint: str

    @property
    def default_batch_tokens(self) -> int: ...

    def info(self) -> dict[str, Any]:
        """The engine's ``info()`` (results.json): the same whichever executor ran it."""
        ...

    def describe(self) -> dict[str, Any]:
        """How this run was executed (run.json, not results.json: it must not change the results)."""
        ...

    def scored_batches(
        self, todo: Sequence[ScoreRequest], token_budget: int, *, hidden: bool = False
    ) -> Iterator[ScoredBatch]:
        """Score every request of ``todo`` once, yielding batches as they finish (in any order)."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...


def as_executor(engine_or_executor: Engine | Executor) -> Executor:
    """An executor as is; an engine wrapped to run here (so ``score_requests(requests, engine, cache)`` works)."""
    if isinstance(engine_or_executor, Executor):
        return engine_or_executor
    from rmbench.executors.local import LocalExecutor

    return LocalExecutor(engine_or_executor)


def create_executor(name: str, spec: ModelSpec, **options: Any) -> Executor:
    """The executor ``name`` for ``spec``, with a 'did you mean' error for unknown names; ``options`` that are not
    None go to it (so a CLI can pass every flag through)."""
    factory = EXECUTORS.get(name)
    executor: Executor = factory.from_spec(spec, **{k: v for k, v in options.items() if v is not None})
    return executor
