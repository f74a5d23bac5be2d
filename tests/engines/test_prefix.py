"""Shared-prefix scoring (``rmbench.engines.prefix``): a prompt run once for all its responses gives the same
scores as full sequences, for both padding sides and however requests are batched; and the row planning rules."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rmbench.cache import ScoreCache
from rmbench.engines import create_engine, prefix
from rmbench.engines.hf import HFClassifierEngine
from rmbench.items import user_turn
from rmbench.modelspec import ModelSpec
from rmbench.requests import ScoreRequest
from rmbench.scoring import pack_batches, score_requests

TOLERANCE = 1e-5  # fp32

_LONG = (
    ("system", "You are a careful assistant who answers questions about geography and history."),
    ("user", "I am planning a trip through western Europe next spring and want to see old cities. " * 3),
    ("assistant", "Happy to help. Which countries are you considering, and how long will you travel?"),
    ("user", "France and Italy, about two weeks. Which cities would you recommend first?"),
)
REQUESTS = [
    ScoreRequest(_LONG, "Paris, Lyon and Avignon in France; then Florence, Siena and Rome in Italy."),
    ScoreRequest(_LONG, "Rome."),
    ScoreRequest(_LONG, "Start in Paris for four days, take the train south to Nice, then Genoa and Florence. " * 2),
    ScoreRequest(user_turn("Name a prime number larger than ten, and explain why it is prime, step by step."), "11"),
    ScoreRequest(user_turn("Name a prime number larger than ten, and explain why it is prime, step by step."),
                 "Thirteen: it has no divisor between 2 and its square root."),
    ScoreRequest(user_turn("Hi"), "Hello there, how can I help you today?"),
]


def _engine(path: Path, padding_side: str, sharing: bool) -> HFClassifierEngine:
    engine = create_engine(ModelSpec(model=str(path), padding_side=padding_side))
    assert isinstance(engine, HFClassifierEngine)
    assert engine.prefix_sharing  # a decoder sequence classifier shares by default
    engine.prefix_sharing = sharing
    return engine


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_prefix_shared_scores_equal_full_sequence_scores(tiny_rm: Path, padding_side: str) -> None:
    shared_engine = _engine(tiny_rm, padding_side, sharing=True)
    plain_engine = _engine(tiny_rm, padding_side, sharing=False)
    encoded = shared_engine.encode(REQUESTS)
    groups = [getattr(e, "group", None) for e in encoded]
    assert groups[0] is not None and groups[0] == groups[1] == groups[2]  # the long prompt's three responses
    assert shared_engine._shared_states(encoded) is not None  # the shared path really runs

    shared = shared_engine.score(encoded, hidden=True)
    alone = [plain_engine.score([e], hidden=True)[0] for e in plain_engine.encode(REQUESTS)]
    padded = plain_engine.score(plain_engine.encode(REQUESTS))
    for s, a, p in zip(shared, alone, padded):
        assert s.n_tokens == a.n_tokens
        assert s.value == pytest.approx(a.value, abs=TOLERANCE)
        assert p.value == pytest.approx(a.value, abs=TOLERANCE)
        assert s.hidden is not None and a.hidden is not None
        assert abs(s.hidden - a.hidden).max() <= TOLERANCE


@pytest.mark.parametrize("budget", [1, 64, 256, 100_000])
def test_scores_do_not_depend_on_the_token_budget(tiny_rm: Path, tmp_path: Path, budget: int) -> None:
    engine = _engine(tiny_rm, "right", sharing=True)
    reference = {r.key: engine.score([e])[0].value for r, e in zip(REQUESTS, _engine(tiny_rm, "right", False).encode(REQUESTS))}
    scores, stats = score_requests(REQUESTS, engine, ScoreCache(tmp_path / "cache"), token_budget=budget,
                                   show_progress=False)
    for key, value in reference.items():
        assert scores[key].value == pytest.approx(value, abs=TOLERANCE)
    assert stats.padding_efficiency is not None and 0 < stats.padding_efficiency <= 1


def test_scheduler_keeps_a_group_in_one_batch_and_counts_its_prefix_once(tiny_rm: Path) -> None:
    engine = _engine(tiny_rm, "right", sharing=True)
    encoded = engine.encode(REQUESTS)
    batches = pack_batches(encoded, token_budget=1)  # one row per batch: a group is still never split
    for batch in batches:
        assert len({getattr(m, "group", None) or m.request.key for m in batch.members}) == 1
    group = [e for e in encoded if getattr(e, "group", None) == encoded[0].group]
    (batch,) = [b for b in batches if encoded[0] in b.members]
    shared = group[0].shared_tokens
    assert shared > 0
    assert batch.real_tokens == batch.padded_tokens == shared + sum(e.n_tokens - shared for e in group)
    assert sum(b.real_tokens for b in batches) < sum(e.n_tokens for e in encoded)


def test_each_member_keeps_a_token_of_its_own() -> None:
    assert prefix.common_prefix_length([[1, 2, 3], [1, 2, 3, 4]]) == 3
    assert prefix.shared_length([[1, 2, 3], [1, 2, 3, 4]]) == 2  # the reward token of [1,2,3] stays in its suffix
    assert prefix.shared_length([[5, 2], [1, 2]]) == 0


def test_sharing_is_planned_only_where_it_pays() -> None:
    cost = prefix.CostModel(per_token=1000.0, per_pair=1.0)
    assert prefix.worth_sharing(100, [20, 30], cost)
    assert not prefix.worth_sharing(0, [20, 30], cost)
    assert not prefix.worth_sharing(100, [20], cost)
    attention_heavy = prefix.CostModel(per_token=1.0, per_pair=1000.0)
    assert not prefix.worth_sharing(1, [500, 500], attention_heavy)
    seqs = [[9, 9, 9, 1], [9, 9, 9, 2, 2], [7, 7]]
    rows = prefix.plan_rows(seqs, ["a", "a", "b"], cost)
    assert [r.members for r in rows] == [(0, 1), (2,)]
    assert rows[0].prefix == (9, 9, 9) and rows[0].suffixes == ((1,), (2, 2))


def test_row_mask_hides_one_response_from_another() -> None:
    row = prefix.Row(members=(0, 1), prefix=(5, 6), suffixes=((7, 8), (9,)))
    batch = prefix.build_row_batch([row], 2, pad_id=0, dtype=torch.float32, device=torch.device("cpu"))
    allowed = batch.attention_mask[0, 0] == 0
    assert batch.input_ids.tolist() == [[5, 6, 7, 8, 9]]
    assert batch.position_ids.tolist() == [[0, 1, 2, 3, 2]]  # the second response restarts after the prefix
    assert allowed[4].tolist() == [True, True, False, False, True]
    assert allowed[3].tolist() == [True, True, True, True, False]
    assert (batch.read_row.tolist(), batch.read_col.tolist()) == ([0, 0], [3, 4])
