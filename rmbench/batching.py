"""Packing requests into token-budget batches and running them through one engine.

The low half of scoring, used by every executor (here, or on Ray actors): chunks of at most ``CHUNK_REQUESTS``
requests, sorted by token length and packed so that each batch's padded size (batch size × longest member) stays
under a token budget. The scheduler above (``rmbench.scoring``) owns the cache and picks the executor.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from rmbench.engines.base import Encoded, Engine
from rmbench.requests import Score, ScoreRequest

#: Requests per scoring chunk: each chunk is encoded, sorted and packed on its own, so memory stays flat.
CHUNK_REQUESTS = 4096


@dataclass
class Batch:
    members: list[Encoded] = field(default_factory=list)

    def _rows(self) -> list[int]:
        """Token length of each model input row: a prefix-sharing group (``Encoded.group``) is one row holding its
        shared prefix once; any other request is a row of its own."""
        rows: dict[object, int] = {}
        for index, member in enumerate(self.members):
            group = getattr(member, "group", None)
            key = ("group", group) if group is not None else index
            shared = getattr(member, "shared_tokens", 0) if group is not None else 0
            rows[key] = rows.get(key, shared) + member.n_tokens - shared
        return list(rows.values())

    @property
    def padded_tokens(self) -> int:
        rows = self._rows()
        return len(rows) * max(rows, default=0)

    @property
    def real_tokens(self) -> int:
        return sum(self._rows())


@dataclass
class ScoredBatch:
    """One scored batch as an executor hands it back: request keys with their scores, and its token counts.
    Plain data, so it pickles cheaply from a Ray actor to the driver."""

    keys: list[str]
    scores: list[Score]
    real_tokens: int
    padded_tokens: int


def pack_batches(encoded: Sequence[Encoded], token_budget: int) -> list[Batch]:
    """Sort by token length (longest first, so an out-of-memory shows up at once) and pack greedily while
    batch size × longest member ≤ budget. A request longer than the budget gets a batch of its own.

    A prefix-sharing group (``Encoded.group``, set by engines that run a prompt once for all its responses) is
    packed as one unit, by the length of its shared row."""
    units: dict[object, list[Encoded]] = {}
    for index, member in enumerate(encoded):
        group = getattr(member, "group", None)
        units.setdefault(("group", group) if group is not None else index, []).append(member)
    sized = [(Batch(unit).real_tokens, unit) for unit in units.values()]
    ordered = sorted(sized, key=lambda u: (-u[0], u[1][0].request.key))
    return [
        Batch([m for i in group for m in ordered[i][1]])
        for group in _pack_sorted([length for length, _ in ordered], token_budget)
    ]


def planned_padding(lengths: Sequence[int], token_budget: int) -> tuple[int, int]:
    """(real, padded) tokens of the batches a fresh run would form for requests of these lengths, in this order.

    A resumed run only packs what was not cached, so its own batches differ; this plan does not, which keeps the
    padding efficiency in results.json the same however the run was interrupted."""
    real = padded = 0
    for start in range(0, len(lengths), CHUNK_REQUESTS):
        ordered = sorted(lengths[start : start + CHUNK_REQUESTS], reverse=True)
        for group in _pack_sorted(ordered, token_budget):
            real += sum(ordered[i] for i in group)
            padded += len(group) * ordered[group[0]]
    return real, padded


def _pack_sorted(lengths: Sequence[int], token_budget: int) -> list[list[int]]:
    """Greedy packing of lengths sorted longest first: index groups whose size × first length ≤ budget."""
    groups: list[list[int]] = []
    for index in range(len(lengths)):
        if groups and lengths[groups[-1][0]] * (len(groups[-1]) + 1) <= token_budget:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


def _chunks(items: Sequence[ScoreRequest], size: int) -> Iterator[Sequence[ScoreRequest]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def score_batches(
    engine: Engine,
    todo: Sequence[ScoreRequest],
    token_budget: int,
    *,
    hidden: bool = False,
    share: int = 0,
    shares: int = 1,
) -> Iterator[ScoredBatch]:
    """Score ``todo`` (unique, uncached requests) chunk by chunk, each chunk length-sorted and packed by
    ``token_budget``; yields every batch as soon as it is scored. Runs wherever the engine is (here or a Ray actor).

    With ``shares`` > 1 only every ``shares``-th batch from ``share`` on is scored: workers that split a chunk this
    way run exactly the batches one local engine would, and so give bit-identical scores (a score may differ in its
    last float bits with the batch it was padded into)."""
    for chunk in _chunks(todo, CHUNK_REQUESTS):
        for batch in pack_batches(engine.encode(chunk), token_budget)[share::shares]:
            results = engine.score(batch.members, hidden=hidden)
            if len(results) != len(batch.members):
                raise RuntimeError(f"engine returned {len(results)} scores for {len(batch.members)} requests")
            keys = [member.request.key for member in batch.members]
            yield ScoredBatch(keys, list(results), batch.real_tokens, batch.padded_tokens)
