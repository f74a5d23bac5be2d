"""Protocol-typed items: what a suite's records become after field mapping.

Items hold text only. They never hold scores; protocols look scores up by request key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Message = tuple[str, str]
"""One conversation turn as (role, content)."""

Conversation = tuple[Message, ...]

#: ``PreferenceItem.meta`` key: where a prompt shows an item's responses together (a pairwise judge's single-order
#: presentation), show them in the reverse of the usual order. Set by the ``response_order`` perturbation; texts,
#: ids and labels stay as they are.
REVERSED_ORDER = "reversed_order"


def user_turn(text: str) -> Conversation:
    """A single-turn conversation holding one user message."""
    return (("user", text),)


@dataclass(frozen=True)
class Response:
    """A candidate response. ``steps`` is set for step-split solutions (process reward models score each step)."""

    text: str
    steps: tuple[str, ...] = ()

    @classmethod
    def from_steps(cls, steps: tuple[str, ...] | list[str], separator: str = "\n\n") -> Response:
        steps = tuple(steps)
        return cls(text=separator.join(steps), steps=steps)


@dataclass(frozen=True)
class PreferenceItem:
    """One prompt with responses known to be better (``chosen``) and worse (``rejected``).

    Covers pairwise (1 vs 1), one-good-vs-N-bad (1 vs N), RewardBench 2 Ties (many vs many) and the RM-Bench
    style grid (chosen[i] and rejected[j] are the same content in style i / j).
    """

    id: str
    prompt: Conversation
    chosen: tuple[Response, ...]
    rejected: tuple[Response, ...]
    subset: str = "default"
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def cluster(self) -> str:
        """Resampling unit for bootstrap CIs: items that share a prompt are resampled together."""
        return str(self.meta.get("cluster", self.prompt))

    @property
    def reversed_order(self) -> bool:
        """Whether a prompt presenting the responses together shows them in the reverse order (``REVERSED_ORDER``)."""
        return bool(self.meta.get(REVERSED_ORDER, False))


@dataclass(frozen=True)
class ContrastItem:
    """Two lexically similar instructions q1, q2 with their own responses r1, r2 (METRICS.md §6)."""

    id: str
    q1: Conversation
    q2: Conversation
    r1: Response
    r2: Response
    subset: str = "default"
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def cluster(self) -> str:
        return self.id


@dataclass(frozen=True)
class ProbeItem:
    """A (prompt, response) with a label for one dimension, in a train or test split (METRICS.md §7)."""

    id: str
    prompt: Conversation
    response: Response
    label: int
    dimension: str
    split: str
    subset: str = "default"
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def cluster(self) -> str:
        return self.id


@dataclass(frozen=True)
class SampleSet:
    """A prompt with a pool of K sampled responses and optional gold scores (METRICS.md §8)."""

    id: str
    prompt: Conversation
    responses: tuple[Response, ...]
    gold: tuple[float, ...] | None = None
    subset: str = "default"
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def cluster(self) -> str:
        return self.id


@dataclass(frozen=True)
class StepItem:
    """One step-split solution with its erroneous steps labelled (METRICS.md §10); no error step = a correct one.

    ``error_steps`` are 1-based, as in PRMBench. ``first_error_only`` marks data that labels only the earliest error
    (ProcessBench, generated solutions): steps after it carry no label, so only first-error metrics apply.
    """

    id: str
    prompt: Conversation
    response: Response
    error_steps: tuple[int, ...] = ()
    first_error_only: bool = False
    subset: str = "default"
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def cluster(self) -> str:
        """Resampling unit: the source question (PRMBench perturbs one solution several ways)."""
        return str(self.meta.get("cluster", self.id))


Item = PreferenceItem | ContrastItem | ProbeItem | SampleSet | StepItem


def response_count_problem(
    item: PreferenceItem, protocol: str, chosen: int | None, rejected: int | None
) -> tuple[str, str] | None:
    """(field, why) when ``item`` has not exactly ``chosen`` / ``rejected`` responses (None: at least one)."""
    for field_name, want in (("chosen", chosen), ("rejected", rejected)):
        have = len(getattr(item, field_name))
        if (want is None and have < 1) or (want is not None and have != want):
            expected = "at least 1" if want is None else f"exactly {want}"
            return field_name, f"protocol '{protocol}' needs {expected} {field_name} response(s), got {have}"
    return None
