"""A run's items, scored and evaluated chunk by chunk, so a suite of any size runs in memory of one chunk.

For protocols whose per-item outcome depends on that item alone (``outcomes`` / ``summarize``, see
``rmbench.protocols.base.ItemOutcomes``) with one model: each chunk of items is turned into requests, scored
through the cache, reduced to its per-item outcomes, and its new unique scores are appended to scores.parquet;
then the items, requests and scores of that chunk are dropped. What is kept grows only by the small per-item frame
and one 128-bit digest per unique request (to write each exactly once). The result is the one the whole-suite path
gives: the same items in the same order, the same outcomes, the same scores.parquet rows and counts.
"""

from __future__ import annotations

import hashlib
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rmbench.cache import ScoreCache
from rmbench.data import iter_item_chunks
from rmbench.executors import Executor
from rmbench.protocols.base import ItemOutcomes, MetricOptions
from rmbench.requests import unique_requests
from rmbench.rundir import ScoresParquetWriter
from rmbench.scoring import ScoringStats, score_requests
from rmbench.suite import Suite


@dataclass
class StreamedScoring:
    """What a streamed run keeps: per-item outcomes, provenance, counts, and the unique requests' token lengths in
    first-seen order (for the padding plan in results.json)."""

    outcomes: ItemOutcomes
    provenance: list[dict[str, Any]]
    stats: ScoringStats
    n_items: int
    lengths: array


def score_streamed(
    suite: Suite,
    protocol: Any,
    options: MetricOptions,
    executor: Executor,
    cache: ScoreCache,
    scores_path: Path,
    *,
    data_dir: Path | None = None,
    limit: int | None = None,
    chunk_items: int,
    token_budget: int | None = None,
    show_progress: bool = True,
) -> StreamedScoring:
    """Score and evaluate ``suite`` chunk by chunk, writing scores.parquet to ``scores_path`` as it goes."""
    provenance: list[dict[str, Any]] = []
    parts: list[ItemOutcomes] = []
    stats = ScoringStats()
    written: set[int] = set()
    lengths = array("l")
    n_items = 0
    with ScoresParquetWriter(scores_path) as writer:
        for items in iter_item_chunks(suite, data_dir, limit, chunk_items=chunk_items, provenance=provenance):
            requests = protocol.requests(items)
            label = f"scoring items {n_items + 1:,}-{n_items + len(items):,}"
            scores, chunk = score_requests(requests, executor, cache, token_budget=token_budget,
                                           show_progress=show_progress, label=label)
            parts.append(protocol.outcomes(items, scores, options))
            unique = unique_requests(requests)
            digests = [_digest(r.key) for r in unique]
            new = [r for r, digest in zip(unique, digests) if digest not in written]
            written.update(digests)
            writer.write(new, scores)
            lengths.extend(scores[r.key].n_tokens for r in new)
            _add(stats, chunk, new_unique=len(new),
                 truncated=sum(scores[r.key].truncated for r in new),
                 invalid=sum(not scores[r.key].is_valid for r in new))
            n_items += len(items)
    outcomes = ItemOutcomes.concat(parts) if parts else ItemOutcomes(_empty_frame())
    return StreamedScoring(outcomes, provenance, stats, n_items, lengths)


def _digest(key: str) -> int:
    """A request key as one 128-bit integer (a third of the memory of the key string in a set)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=16).digest(), "big")


def _add(total: ScoringStats, chunk: ScoringStats, *, new_unique: int, truncated: int, invalid: int) -> None:
    """Add a chunk's counts; per-unique-request counts only for requests no earlier chunk had."""
    total.requests += chunk.requests
    total.unique_requests += new_unique
    total.cache_hits += chunk.cache_hits
    total.scored += chunk.scored
    total.batches += chunk.batches
    total.real_tokens += chunk.real_tokens
    total.padded_tokens += chunk.padded_tokens
    total.truncated += truncated
    total.invalid_scores += invalid


def _empty_frame() -> Any:
    import pandas as pd

    return pd.DataFrame({"item_id": [], "subset": [], "cluster": []})
