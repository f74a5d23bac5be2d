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
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

# Re-exported: the scheduler's callers have always imported these from here.
from rmbench.batching import CHUNK_REQUESTS, Batch, ScoredBatch, pack_batches, planned_padding, score_batches  # noqa: F401
from rmbench.cache import ScoreCache
from rmbench.engines.base import Engine
from rmbench.requests import Score, ScoreRequest, unique_requests

if TYPE_CHECKING:
    from rmbench.executors import Executor

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

    try:
        _score_todo(todo, executor, cache, fingerprint, budget, hidden, show_progress, label, scores, stats)
    except KeyboardInterrupt:
        # Say what was kept: every finished batch is in the cache, so the same command resumes from there.
        sys.stderr.write(
            f"interrupted: {len(scores)} of {stats.unique_requests} scores for this model are cached in "
            f"{cache.path}; run the same command again to resume from them\n"
        )
        raise

    for request in unique:
        score = scores[request.key]
        stats.truncated += int(score.truncated)
        stats.invalid_scores += int(not score.is_valid)
    return scores, stats


def _score_todo(
    todo: list[ScoreRequest],
    executor: Executor,
    cache: ScoreCache,
    fingerprint: str,
    budget: int,
    hidden: bool,
    show_progress: bool,
    label: str,
    scores: dict[str, Score],
    stats: ScoringStats,
) -> None:
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


class LogProgress:
    """Progress as periodic log lines on stderr (done/total, rate, ETA), for logs and pipes where a live bar would
    be either invisible or a wall of redraws: one line at the start, then at most one every ``interval`` seconds,
    and one at the end."""

    def __init__(self, interval: float = 10.0, stream: Any = None, clock: Any = time.monotonic) -> None:
        self.interval, self.stream, self.clock = interval, stream, clock
        self.label, self.total, self.done = "", 0, 0
        self.start = self.last = 0.0

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.total and not exc[0]:
            self._line()

    def add_task(self, label: str, total: int) -> int:
        self.label, self.total, self.done = label, total, 0
        self.start = self.last = self.clock()
        self._line()
        return 0

    def advance(self, task: int, n: int) -> None:
        self.done += n
        if self.clock() - self.last >= self.interval and self.done < self.total:
            self._line()

    def _line(self) -> None:
        now = self.clock()
        self.last = now
        elapsed = now - self.start
        rate = self.done / elapsed if elapsed > 0 and self.done else 0.0
        eta = f"{_clock_text((self.total - self.done) / rate)}" if rate else "?"
        percent = 100 * self.done / self.total if self.total else 100.0
        stream = self.stream if self.stream is not None else sys.stderr
        print(
            f"{self.label}: {self.done:,}/{self.total:,} ({percent:.0f}%) · {rate:,.1f}/s · "
            f"elapsed {_clock_text(elapsed)} · ETA {eta}",
            file=stream,
            flush=True,
        )


def _clock_text(seconds: float) -> str:
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _progress(enabled: bool) -> Progress | LogProgress:
    """A live bar on a terminal, log lines when stderr is not one (CI logs, pipes), nothing when disabled."""
    if enabled and not sys.stderr.isatty():
        return LogProgress()
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    )
