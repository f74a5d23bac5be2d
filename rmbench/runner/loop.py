"""The one run loop: items in chunks → requests → scores (through the cache) → outcomes, scores.parquet appended.

Every protocol runs through it. An item-local protocol (``ItemLocalProtocol``: pairwise, best-of-n) gets chunks of
``chunk_items`` items and keeps only its small per-item frames, so a suite of any size runs in the memory of one
chunk; a protocol that needs every item at once (``SuiteProtocol``, ``MultiModelProtocol``) is the single-chunk case.
What is kept across chunks grows only by the per-item frame and one 128-bit digest per unique request (to write each
to scores.parquet exactly once); the result is the same however the items were chunked.
"""

from __future__ import annotations

import hashlib
import time
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rmbench.cache import ScoreCache
from rmbench.executors import Executor
from rmbench.protocols.base import (
    Capabilities,
    ItemLocalProtocol,
    ItemOutcomes,
    MetricOptions,
    MultiModelProtocol,
    ProtocolResult,
    ScoringProtocol,
)
from rmbench.requests import Score, unique_requests
from rmbench.results.rundir import ScoresParquetWriter
from rmbench.scoring import ScoringStats, score_requests
from rmbench.suite import Suite


@dataclass
class Evaluated:
    """A scored and evaluated run: the result, the main model's counts, and the unique requests' token lengths in
    first-seen order (for the padding plan in results.json)."""

    result: ProtocolResult
    stats: ScoringStats
    n_items: int
    provenance: list[dict[str, Any]]
    lengths: array[int]


def score_and_evaluate(
    suite: Suite,
    protocol: ScoringProtocol,
    needs: Capabilities,
    options: MetricOptions,
    executors: Mapping[str, Executor],
    cache: ScoreCache,
    scores_path: Path,
    *,
    gold: str | None = None,
    data_dir: Path | None = None,
    limit: int | None = None,
    chunk_items: int,
    token_budget: int | None = None,
    show_progress: bool = True,
    timings: dict[str, float] | None = None,
    rewrite: Callable[[list[Any]], list[Any]] | None = None,
) -> Evaluated:
    """Score ``suite`` with every executor (the first is the main model, ``gold`` labels the gold RM) and evaluate
    it, writing the main model's scores.parquet to ``scores_path`` as it goes. Seconds spent scoring (per model
    label, engine loading included) and evaluating are added to ``timings``."""
    timings = timings if timings is not None else {}
    if needs.item_local and len(executors) != 1:
        raise ValueError("an item-local protocol scores one model")
    provenance: list[dict[str, Any]] = []
    parts: list[ItemOutcomes] = []
    result: ProtocolResult | None = None
    stats = ScoringStats()
    written: set[int] = set()
    lengths = array("l")
    n_items = 0
    extra_correct: dict[str, int] = {}
    main = next(iter(executors))
    with ScoresParquetWriter(scores_path) as writer:
        for items in _chunks(suite, data_dir, limit, chunk_items if needs.item_local else None, provenance):
            items = rewrite(items) if rewrite is not None else items
            _count_extra_correct(items, extra_correct)
            requests = protocol.requests(items)
            scored: dict[str, Mapping[str, Score]] = {}
            for label, executor in executors.items():
                clock = time.perf_counter()
                what = f"scoring items {n_items + 1:,}-{n_items + len(items):,}" if needs.item_local else f"scoring {label}"
                scored[label], chunk = score_requests(
                    requests, executor, cache, token_budget=token_budget, hidden=needs.needs_hidden,
                    show_progress=show_progress, label=what,
                )
                if label == main:
                    main_stats = chunk
                if not needs.item_local and len(executors) > 1:
                    # The one chunk: free this model's workers (GPUs) before the next model loads. A lone model stays
                    # loaded for the run (perturbed passes score with it again); the run closes it at the end.
                    executor.close()
                _time(timings, f"scoring_s:{label}", clock)
            clock = time.perf_counter()
            scores = scored[main]
            if isinstance(protocol, ItemLocalProtocol):
                parts.append(protocol.outcomes(items, scores, options))
            elif isinstance(protocol, MultiModelProtocol):
                proxies = {label: s for label, s in scored.items() if label != gold}
                result = protocol.evaluate_models(items, proxies, scored[gold] if gold else None, options)
            else:
                result = protocol.evaluate(items, scores, options)
            _time(timings, "evaluate_s", clock)
            unique = unique_requests(requests)
            digests = [_digest(r.key) for r in unique]
            new = [r for r, digest in zip(unique, digests) if digest not in written]
            written.update(digests)
            writer.write(new, scores)
            lengths.extend(scores[r.key].n_tokens for r in new)
            _add(stats, main_stats, new_unique=len(new),
                 truncated=sum(scores[r.key].truncated for r in new),
                 invalid=sum(not scores[r.key].is_valid for r in new))
            n_items += len(items)
    if isinstance(protocol, ItemLocalProtocol):
        clock = time.perf_counter()
        result = protocol.summarize(ItemOutcomes.concat(parts) if parts else ItemOutcomes(_empty_frame()), options)
        _time(timings, "evaluate_s", clock)
    assert result is not None  # a suite protocol's one chunk always runs (an empty suite is one empty chunk)
    if extra_correct:
        result.extra[EXTRA_CORRECT] = {"items": sum(extra_correct.values()), "by_subset": dict(sorted(extra_correct.items()))}
    return Evaluated(result, stats, n_items, provenance, lengths)


#: Item meta (and results.json ``extra`` key) of rows with more than one correct answer, scored with the extra ones
#: as rejected ones (RewardBench 2, ``rmbench.transforms.rewardbench2``): results.json counts them per subset.
EXTRA_CORRECT = "extra_correct"


def _count_extra_correct(items: list[Any], counts: dict[str, int]) -> None:
    for item in items:
        meta = getattr(item, "meta", None)
        if meta and meta.get(EXTRA_CORRECT):
            subset = str(getattr(item, "subset", "default"))
            counts[subset] = counts.get(subset, 0) + 1


def _chunks(
    suite: Suite, data_dir: Path | None, limit: int | None, chunk_items: int | None, provenance: list[dict[str, Any]]
) -> Iterator[list[Any]]:
    """Chunks of ``chunk_items`` items, or (None) every item in one chunk."""
    from rmbench.data import iter_item_chunks

    chunks = iter_item_chunks(suite, data_dir, limit, chunk_items=chunk_items, provenance=provenance)
    if chunk_items is not None:
        yield from chunks
    else:
        yield [item for chunk in chunks for item in chunk]


def _time(timings: dict[str, float], key: str, since: float) -> None:
    timings[key] = timings.get(key, 0.0) + time.perf_counter() - since


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
