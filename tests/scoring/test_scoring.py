"""The scheduler: token-budget packing, de-duplication, the cache round trip and padding efficiency."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rmbench.cache import ScoreCache
from rmbench.engines.base import Encoded, Engine
from rmbench.items import user_turn
from rmbench.modelspec import ModelSpec
from rmbench.requests import Score, ScoreRequest
from rmbench.scoring import pack_batches, planned_padding, score_requests


class FakeEngine:
    """Token count = number of words; score = token count; records every batch it is asked to score."""

    def __init__(self, batch_tokens: int = 1024) -> None:
        self.spec = ModelSpec(model="", engine="length")
        self.default_batch_tokens = batch_tokens
        self.batches: list[list[str]] = []

    @classmethod
    def fingerprint_of(cls, spec: ModelSpec) -> str:
        return "fake-engine-v1"

    @classmethod
    def default_batch_tokens_of(cls, spec: ModelSpec) -> int:
        return 1024

    @property
    def fingerprint(self) -> str:
        return self.fingerprint_of(self.spec)

    def encode(self, requests: Sequence[ScoreRequest]) -> list[Encoded]:
        return [Encoded(request=r, n_tokens=len(r.response.split())) for r in requests]

    def score(self, batch: Sequence[Encoded], *, hidden: bool = False) -> list[Score]:
        self.batches.append([e.request.key for e in batch])
        return [
            Score(
                value=float(e.n_tokens),
                n_tokens=e.n_tokens,
                truncated=e.n_tokens > 500,
                hidden=np.full(4, e.n_tokens, dtype=np.float32) if hidden else None,
            )
            for e in batch
        ]

    def info(self) -> dict[str, Any]:
        return {"engine": "fake"}


def _requests(lengths: Sequence[int]) -> list[ScoreRequest]:
    return [ScoreRequest(user_turn(f"prompt {i}"), " ".join(["w"] * n)) for i, n in enumerate(lengths)]


def _realistic_lengths(n: int, seed: int = 0) -> list[int]:
    """Log-normal lengths like chat RM inputs (median ~150 tokens, a long tail), capped at max_length 512."""
    rng = np.random.default_rng(seed)
    return [int(x) for x in np.clip(rng.lognormal(mean=5.0, sigma=0.6, size=n), 8, 512)]


def test_fake_engine_satisfies_the_protocol() -> None:
    assert isinstance(FakeEngine(), Engine)


@pytest.mark.parametrize("budget", [64, 300, 1024])
def test_pack_batches_respects_the_budget_and_sorts_by_length(budget: int) -> None:
    lengths = _realistic_lengths(500, seed=1) + [budget + 600]  # the longest request exceeds the budget
    encoded = FakeEngine().encode(_requests(lengths))
    batches = pack_batches(encoded, budget)
    packed = [m.request.key for b in batches for m in b.members]
    assert Counter(packed) == Counter(e.request.key for e in encoded)  # every request exactly once
    for batch in batches:
        assert batch.padded_tokens <= budget or len(batch.members) == 1
    flat = [m.n_tokens for b in batches for m in b.members]
    assert flat == sorted(flat, reverse=True)  # longest first, so an out-of-memory shows at once
    assert batches[0].members[0].n_tokens == budget + 600 and len(batches[0].members) == 1
    assert all(len(b.members) == 1 for b in batches if b.members[0].n_tokens > budget)
    assert len(batches) < len(lengths)  # (budget 64 packs the short ones two and more to a batch)


def test_duplicates_are_scored_once_and_a_second_run_is_served_from_cache(tmp_path: Path) -> None:
    unique = _requests([5, 17, 3, 40, 9, 9, 120])  # two requests of equal length, different keys
    requests = unique + unique[:4] + [ScoreRequest(unique[0].prompt, unique[0].response)]  # same content = same key
    cache_path = tmp_path / "scores.sqlite"

    engine = FakeEngine(batch_tokens=128)
    with ScoreCache(cache_path) as cache:
        first, stats = score_requests(requests, engine, cache, show_progress=False)
    scored_keys = [k for batch in engine.batches for k in batch]
    assert sorted(scored_keys) == sorted(r.key for r in unique)  # each unique request exactly once
    assert stats.requests == len(requests) and stats.unique_requests == len(unique)
    assert stats.scored == len(unique) and stats.cache_hits == 0
    assert set(first) == {r.key for r in unique}
    assert all(first[r.key].value == len(r.response.split()) for r in unique)

    class MustNotScore(FakeEngine):
        def score(self, batch: Sequence[Encoded], *, hidden: bool = False) -> list[Score]:
            raise AssertionError("engine called on a fully cached run")

    with ScoreCache(cache_path) as cache:  # a fresh connection: the scores really are on disk
        second, stats2 = score_requests(requests, MustNotScore(), cache, show_progress=False)
    assert stats2.cache_hits == stats2.unique_requests == len(unique)
    assert stats2.scored == 0 and stats2.batches == 0 and stats2.padding_efficiency is None
    assert {k: (s.value, s.n_tokens, s.truncated) for k, s in second.items()} == {
        k: (s.value, s.n_tokens, s.truncated) for k, s in first.items()
    }


def test_asking_for_hidden_states_rescores_rows_cached_without_them(tmp_path: Path) -> None:
    requests = _requests([4, 8, 15])
    with ScoreCache(tmp_path / "scores.sqlite") as cache:
        score_requests(requests, FakeEngine(), cache, show_progress=False)
        engine = FakeEngine()
        scores, stats = score_requests(requests, engine, cache, hidden=True, show_progress=False)
        assert stats.cache_hits == 0 and stats.scored == 3
        assert all(s.hidden is not None and s.hidden.shape == (4,) for s in scores.values())
        _, stats3 = score_requests(requests, FakeEngine(), cache, hidden=True, show_progress=False)
        assert stats3.cache_hits == 3


def test_padding_efficiency_on_a_realistic_spread_of_lengths(tmp_path: Path) -> None:
    lengths = _realistic_lengths(3000, seed=2)
    engine = FakeEngine(batch_tokens=1024)
    with ScoreCache(tmp_path / "scores.sqlite") as cache:
        _, stats = score_requests(_requests(lengths), engine, cache, show_progress=False)
    assert stats.padding_efficiency is not None and stats.padding_efficiency >= 0.9
    assert stats.real_tokens == sum(lengths)
    assert stats.batches == len(engine.batches) < len(lengths) // 4  # real batching, not one at a time
    assert planned_padding(lengths, 1024) == (stats.real_tokens, stats.padded_tokens)  # a fresh run's plan
    # Data order with a fixed batch size (what the peer tools do) wastes far more.
    fixed = [lengths[i : i + 8] for i in range(0, len(lengths), 8)]
    naive = sum(lengths) / sum(len(b) * max(b) for b in fixed)
    assert naive < 0.75 < stats.padding_efficiency


def test_truncated_and_invalid_scores_are_counted(tmp_path: Path) -> None:
    class SometimesNaN(FakeEngine):
        def score(self, batch: Sequence[Encoded], *, hidden: bool = False) -> list[Score]:
            return [
                Score(value=float("nan") if e.n_tokens == 7 else 1.0, n_tokens=e.n_tokens, truncated=e.n_tokens > 500)
                for e in batch
            ]

    with ScoreCache(tmp_path / "scores.sqlite") as cache:
        scores, stats = score_requests(_requests([7, 7, 600, 3]), SometimesNaN(), cache, show_progress=False)
        assert stats.invalid_scores == 2 and stats.truncated == 1
        again, stats2 = score_requests(_requests([7, 7, 600, 3]), SometimesNaN(), cache, show_progress=False)
    assert stats2.cache_hits == 4 and stats2.invalid_scores == 2  # NaN survives the cache round trip
