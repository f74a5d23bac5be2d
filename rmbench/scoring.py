"""The scoring scheduler: unique requests → cache lookup → length-sorted token-budget batches → engine → cache.

Requests stream through in chunks, so memory stays flat however large a suite is; inside a chunk they are sorted
by token length and packed so that each batch's padded size (batch size × longest member) stays under a token
budget. Each finished batch is written to the cache before the next starts: a killed run loses at most one batch.
Where batches run is an executor's business (``rmbench.executors``: here, or Ray actors); this driver alone writes
the cache, so every executor leaves the same cache and the same results.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from rmbench.cache import ScoreCache
from rmbench.engines.base import Encoded, Engine
from rmbench.requests import Score, ScoreRequest, unique_requests

if TYPE_CHECKING:
    from rmbench.executors import Executor

CHUNK_REQUESTS = 4096

#: Fault injection for the kill-and-resume tests: SIGKILL this process after this many batches were cached.
FAULT_ENV = "RMBENCH_FAULT_KILL_AFTER_BATCHES"


@dataclass
class ScoringStats:
    """Counts reported in results.json: how much work was asked for, cached, and how well it was packed."""

    requests: int = 0
    unique_requests: int = 0
    cache_hits: int = 0
    scored: int = 0
    batches: int = 0
    real_tokens: int = 0
    padded_tokens: int = 0
    truncated: int = 0
    invalid_scores: int = 0

    @property
    def padding_efficiency(self) -> float | None:
        """Real tokens / processed (padded) tokens over the batches run here; None when nothing was run."""
        return self.real_tokens / self.padded_tokens if self.padded_tokens else None

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "requests": self.requests,
            "unique_requests": self.unique_requests,
            "cache_hits": self.cache_hits,
            "scored": self.scored,
            "batches": self.batches,
            "real_tokens": self.real_tokens,
            "padded_tokens": self.padded_tokens,
            "padding_efficiency": self.padding_efficiency,
            "truncated": self.truncated,
            "invalid_scores": self.invalid_scores,
        }


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
    for index, length in enumerate(lengths):
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


def score_requests(
    requests: Sequence[ScoreRequest],
    engine: Engine | Executor,
    cache: ScoreCache,
    *,
    token_budget: int | None = None,
    hidden: bool = False,
    show_progress: bool = True,
    label: str = "scoring",
) -> tuple[dict[str, Score], ScoringStats]:
    """Score every request (cached ones are read back, the rest computed and cached). Returns key → Score.

    ``engine`` is an engine (scored here) or an executor (``rmbench.executors``: here, or sharded over Ray actors).
    Either way this driver alone writes the cache, batch by batch as results come back."""
    from rmbench.executors import as_executor

    executor = as_executor(engine)
    stats = ScoringStats(requests=len(requests))
    unique = unique_requests(list(requests))
    stats.unique_requests = len(unique)
    fingerprint = executor.fingerprint
    budget = token_budget or executor.default_batch_tokens

    scores = cache.get_many(fingerprint, [r.key for r in unique], need_hidden=hidden)
    stats.cache_hits = len(scores)
    todo = [r for r in unique if r.key not in scores]

    kill_after = int(os.environ[FAULT_ENV]) if os.environ.get(FAULT_ENV) else None
    with _progress(show_progress and bool(todo)) as progress:
        task = progress.add_task(label, total=len(todo))
        for batch in executor.scored_batches(todo, budget, hidden=hidden):
            cache.put_many(fingerprint, zip(batch.keys, batch.scores))
            scores.update(zip(batch.keys, batch.scores))
            stats.batches += 1
            stats.scored += len(batch.keys)
            stats.real_tokens += batch.real_tokens
            stats.padded_tokens += batch.padded_tokens
            progress.advance(task, len(batch.keys))
            if kill_after is not None and stats.batches >= kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

    for request in unique:
        score = scores[request.key]
        stats.truncated += int(score.truncated)
        stats.invalid_scores += int(not score.is_valid)
    return scores, stats


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    )
