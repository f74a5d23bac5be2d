"""The engine interface: requests in, scores out. Engines never see items, protocols never see models.

An engine turns requests into ``Encoded`` inputs (so the scheduler can sort and pack them by token length) and
scores one packed batch at a time. Everything about batching, caching and progress lives in ``rmbench.scoring``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol, runtime_checkable

from rmbench.modelspec import ModelSpec
from rmbench.requests import Score, ScoreRequest


@dataclass
class Encoded:
    """A request made ready for a forward pass: its token count (after truncation) and engine-specific payload."""

    request: ScoreRequest
    n_tokens: int
    truncated: bool = False
    payload: Any = None


@runtime_checkable
class Engine(Protocol):
    """What every scoring backend provides."""

    spec: ModelSpec
    #: Padded-token budget per batch when the user gives none (small on CPU, large on GPU).
    default_batch_tokens: int

    @property
    def fingerprint(self) -> str:
        """Identifies the model and every option that changes a score: the score cache's key."""
        ...

    @classmethod
    def fingerprint_of(cls, spec: ModelSpec) -> str:
        """The ``fingerprint`` an engine of ``spec`` will have, computed without loading weights or building it,
        so a run whose scores are all cached loads no model."""
        ...

    @classmethod
    def default_batch_tokens_of(cls, spec: ModelSpec) -> int:
        """The ``default_batch_tokens`` an engine of ``spec`` will have, without building it."""
        ...

    def encode(self, requests: Sequence[ScoreRequest]) -> list[Encoded]:
        """Tokenize (apply the chat template, truncate) without running the model."""
        ...

    def score(self, batch: Sequence[Encoded], *, hidden: bool = False) -> list[Score]:
        """Score one batch. Each score must not depend on what else is in the batch."""
        ...

    def info(self) -> dict[str, Any]:
        """Facts for results.json (resolved dtype, device, library versions)."""
        ...


class SpecFingerprint:
    """Mixin: an engine's ``fingerprint`` is its class's ``fingerprint_of(spec)``, so the key a runner computes
    before building the engine and the key the built engine reports cannot differ."""

    spec: ModelSpec

    @classmethod
    def fingerprint_of(cls, spec: ModelSpec) -> str:
        raise NotImplementedError

    @cached_property
    def fingerprint(self) -> str:
        return self.fingerprint_of(self.spec)
