"""The protocol interface: items → score requests, and (items, scores) → metrics with CIs.

A protocol never touches a model: it asks for requests and reads scores back by request key. Metric definitions
follow ../shared/spec/METRICS.md exactly; which tie policy and aggregation produced a number is recorded with it.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd

# Re-exported: protocols have always named these from here.
from rmbench.metrics.options import Aggregation, MetricOptions, MetricValue, Section, TiePolicy  # noqa: F401
from rmbench.requests import Score, ScoreRequest

#: (chosen, rejected) responses a preference item must have; None: at least one.
ResponseCounts = tuple[int | None, int | None]


@dataclass
class ProtocolResult:
    """What ``evaluate`` returns.

    ``per_item`` has one row per item with columns ``item_id``, ``subset``, ``cluster`` and one float column per
    per-item metric; the gate and compare commands pair runs on it. ``excluded`` counts items left out and why
    (e.g. ``invalid_score``); they are never silently scored as 0.
    """

    metrics: list[MetricValue]
    per_item: pd.DataFrame
    excluded: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def metric(self, name: str, scope: str = "overall") -> MetricValue:
        for value in self.metrics:
            if value.name == name and value.scope == scope:
                return value
        raise KeyError(f"{name} ({scope})")


@dataclass
class ItemOutcomes:
    """Per-item outcomes of some items, before any suite-level statistic: what a streamed run keeps of each chunk.

    Protocols whose per-item metrics depend on one item alone (pairwise, best-of-n) implement
    ``outcomes(items, scores, options) -> ItemOutcomes`` and ``summarize(outcomes, options) -> ProtocolResult``, with
    ``evaluate`` = ``summarize(outcomes(...))``; a run then scores and evaluates the items chunk by chunk and keeps
    only these small frames."""

    per_item: pd.DataFrame
    excluded: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def concat(cls, parts: Sequence[ItemOutcomes]) -> ItemOutcomes:
        """The outcomes of consecutive chunks as one (item order kept, counts added, ``extra`` lists merged)."""
        frames = [p.per_item for p in parts if len(p.per_item)] or [parts[0].per_item]
        excluded: dict[str, int] = {}
        extra: dict[str, Any] = {}
        for part in parts:
            for reason, n in part.excluded.items():
                excluded[reason] = excluded.get(reason, 0) + n
            for key, values in part.extra.items():
                extra[key] = sorted(set(extra.get(key, [])) | set(values))
        return cls(pd.concat(frames, ignore_index=True), dict(sorted(excluded.items())), extra)


class ScoringProtocol(abc.ABC):
    """One per module under rmbench/protocols; registered by name in ``rmbench.protocols.PROTOCOLS``.

    A protocol declares what it needs by what it subclasses and by class attributes, read once by the runner
    (``capabilities``), never probed with ``hasattr``: ``ItemLocalProtocol`` (outcomes of one item depend on that item
    alone, so a run streams chunk by chunk) or ``SuiteProtocol`` (all items at once: one chunk), ``MultiModelProtocol``
    (several RMs and/or a gold RM), and ``needs_hidden`` (the scheduler then asks for and caches hidden states)."""

    name: ClassVar[str]
    item_type: ClassVar[type]
    #: The per-item column that is this protocol's headline outcome (pairwise accuracy, the RM-Bench grid score);
    #: protocols with one can be run under perturbations (``rmbench.runner.perturb``), which pair it item by item.
    headline: ClassVar[str | None] = None
    #: The per-item column that depends on the order in which one prompt presents the responses together (a pairwise
    #: judge's single-order verdict); None where each response is scored alone, so the order is no part of the input.
    #: The ``response_order`` perturbation pairs on it, and is refused by protocols without one.
    order_outcome: ClassVar[str | None] = None
    #: Protocols that read the RM's hidden states (probing) set this; the scheduler then caches them too.
    needs_hidden: ClassVar[bool] = False
    #: Chosen and rejected responses each preference item must have (None: at least one); loading the suite
    #: checks every record against it, so a wrong one is named by file, line and field before anything is scored.
    response_counts: ClassVar[ResponseCounts | None] = None

    @property
    def counts(self) -> ResponseCounts:
        """``response_counts`` of a protocol that declares them (the ones its own checks use)."""
        if self.response_counts is None:
            raise TypeError(f"protocol '{self.name}' declares no response_counts")
        return self.response_counts

    @abc.abstractmethod
    def requests(self, items: Sequence[Any]) -> list[ScoreRequest]:
        """The score requests of these items (duplicates allowed; the scheduler scores each key once)."""

    @abc.abstractmethod
    def evaluate(self, items: Sequence[Any], scores: Mapping[str, Score], options: MetricOptions) -> ProtocolResult:
        """Metrics of all items from one model's scores."""


class ItemLocalProtocol(ScoringProtocol):
    """Protocols whose per-item outcome depends on that item alone (see ``ItemOutcomes``): a run scores and reduces
    the items chunk by chunk; evaluating all items at once is the one-chunk case, so both share every line."""

    @abc.abstractmethod
    def outcomes(
        self, items: Sequence[Any], scores: Mapping[str, Score], options: MetricOptions, *, require_any: bool = False
    ) -> ItemOutcomes:
        """Per-item outcomes of one chunk (``require_any``: fail when no item could be evaluated)."""

    @abc.abstractmethod
    def summarize(self, outcomes: ItemOutcomes, options: MetricOptions) -> ProtocolResult:
        """Suite-level metrics and CIs from the outcomes of every chunk."""

    def evaluate(self, items: Sequence[Any], scores: Mapping[str, Score], options: MetricOptions) -> ProtocolResult:
        return self.summarize(self.outcomes(items, scores, options, require_any=True), options)


class SuiteProtocol(ScoringProtocol):
    """Protocols that need every item at once (contrast, probing, grid, ties, judges): a run is one chunk."""


class MultiModelProtocol(SuiteProtocol):
    """Protocols that compare several RMs and/or a gold RM (overoptimization, ensembles)."""

    @abc.abstractmethod
    def evaluate_models(
        self,
        items: Sequence[Any],
        proxies: Mapping[str, Mapping[str, Score]],
        gold: Mapping[str, Score] | None,
        options: MetricOptions,
    ) -> ProtocolResult:
        """Metrics from every proxy's scores (by model label) and the gold RM's (None: gold from the data)."""


@dataclass(frozen=True)
class Capabilities:
    """What a protocol needs from a run, read once from its declarations."""

    item_local: bool
    multi_model: bool
    needs_hidden: bool


def capabilities(protocol: object) -> Capabilities:
    """The declarations of ``protocol``; a clear error for a class that does not declare itself a protocol."""
    if not isinstance(protocol, ScoringProtocol):
        raise TypeError(
            f"{type(protocol).__name__} is not a scoring protocol: subclass rmbench.protocols.base.ItemLocalProtocol, "
            "SuiteProtocol or MultiModelProtocol"
        )
    if isinstance(protocol, ItemLocalProtocol) and isinstance(protocol, SuiteProtocol):
        raise TypeError(f"{type(protocol).__name__} declares itself both item-local and whole-suite")
    return Capabilities(
        item_local=isinstance(protocol, ItemLocalProtocol),
        multi_model=isinstance(protocol, MultiModelProtocol),
        needs_hidden=bool(type(protocol).needs_hidden),
    )
