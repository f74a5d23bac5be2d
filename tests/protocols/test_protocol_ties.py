"""TiesProtocol (METRICS.md §4): a hand-built example, the diff_corr = 0 guard, ids, and the shared sample."""

from __future__ import annotations

import hashlib
import json
import math

import pytest

from rmbench.errors import DataError
from rmbench.items import PreferenceItem, Response, user_turn
from rmbench.protocols import get_protocol
from rmbench.protocols.base import MetricOptions
from rmbench.protocols.ties import TiesProtocol, margin_term
from rmbench.requests import Score, ScoreRequest
from tests._shared import shared_path


def scored_items(rows: list[tuple]) -> tuple[list[PreferenceItem], dict[str, Score]]:
    """rows: (id, [correct scores], [incorrect scores])."""
    items, scores = [], {}
    for item_id, correct, incorrect in rows:
        item = PreferenceItem(
            id=item_id,
            prompt=user_turn(f"prompt {item_id}"),
            chosen=tuple(Response(f"right {i}") for i in range(len(correct))),
            rejected=tuple(Response(f"wrong {j}") for j in range(len(incorrect))),
            subset="Ties",
        )
        items.append(item)
        for response, value in zip((*item.chosen, *item.rejected), (*correct, *incorrect)):
            scores[ScoreRequest.of(item.prompt, response).key] = Score(value=float(value))
    return items, scores


def reference_ties_score(rows: list[tuple]) -> dict[str, float]:
    """Straight from the §4 text (and upstream's IEEE handling of x/0), written independently of rmbench."""
    stats = {}
    for item_id, correct, incorrect in rows:
        kind, n = item_id.split(":")
        stats[(kind, n)] = (min(correct) > max(incorrect), min(correct) - max(incorrect), max(correct) - min(correct))
    ns = sorted({n for kind, n in stats if kind == "tied"} & {n for kind, n in stats if kind == "ref"})

    def term(margin: float, spread: float) -> float:
        if spread == 0:
            return 0.0 if margin == 0 else math.tanh(math.copysign(math.inf, margin))
        return math.tanh(margin / spread - 1)

    tied_acc = sum(stats[("tied", n)][0] for n in ns) / len(ns)
    ref_acc = sum(stats[("ref", n)][0] for n in ns) / len(ns)
    preferred = sum(stats[("tied", n)][1] > stats[("tied", n)][2] for n in ns) / len(ns)
    hardest = {n: min(stats[("ref", n)][1], stats[("tied", n)][1]) for n in ns}
    preferred_hard = sum(hardest[n] > stats[("tied", n)][2] for n in ns) / len(ns)
    margin = sum(term(hardest[n], stats[("tied", n)][2]) for n in ns) / len(ns)
    score = 0.30 * tied_acc + 0.30 * ref_acc + 0.20 * preferred + 0.20 * preferred_hard + 0.01 * margin
    return {"score": score, "tied_acc": tied_acc, "ref_acc": ref_acc, "margin_score": margin}


HAND = [
    ("tied:1", [5.0, 4.0], [1.0, 2.0]),  # accurate, margin 2, spread 1
    ("ref:1", [3.0], [1.0, 2.5]),  # accurate, margin 0.5
    ("tied:2", [2.0, 2.0], [2.0, 0.0]),  # not accurate (2 > 2 fails), margin 0, spread 0
    ("ref:2", [1.0], [3.0]),  # not accurate, margin -2
    ("tied:3", [1.0, 0.5], [0.0]),  # no ref:3 → unpaired
]


def test_hand_built_example() -> None:
    items, scores = scored_items(HAND)
    result = TiesProtocol().evaluate(items, scores, MetricOptions())
    # By hand: tied_acc = ref_acc = 1/2; preferred = mean(2 > 1, 0 > 0) = 1/2; hardest = (0.5, -2):
    # preferred_hard = mean(0.5 > 1, -2 > 0) = 0; margin = mean(tanh(0.5/1 - 1), tanh(-2/0 → -inf) = -1).
    margin = (math.tanh(-0.5) - 1.0) / 2
    by_hand = 0.30 * 0.5 + 0.30 * 0.5 + 0.20 * 0.5 + 0.20 * 0.0 + 0.01 * margin
    assert result.metric("score").value == pytest.approx(by_hand, abs=1e-15)
    assert result.metric("score").value == pytest.approx(reference_ties_score(HAND)["score"], abs=1e-15)
    assert result.metric("tied_acc").value == 0.5 and result.metric("ref_acc").value == 0.5
    assert result.metric("margin_score").value == pytest.approx(margin, abs=1e-15)
    assert result.metric("correctness_preferred_hard").value == 0.0
    assert result.excluded == {"unpaired": 1}
    assert result.metric("score").n == 2 and result.extra["pairs"] == 2
    assert result.extra["tie_policy"] == "strict"
    frame = result.per_item.set_index("item_id")
    assert frame.loc["tied:1", "cluster"] == frame.loc["ref:1", "cluster"] == "ties:1"
    assert frame.loc["tied:2", "correct_spread"] == 0.0 and math.isnan(frame.loc["ref:2", "correct_spread"])
    low, high = result.metric("score").ci_low, result.metric("score").ci_high
    assert low <= result.metric("score").value <= high


def test_zero_spread_guard_matches_upstream_ieee_behaviour() -> None:
    import numpy as np

    values = margin_term(np.array([1.0, -1.0, 0.0, 2.0]), np.array([0.0, 0.0, 0.0, 1.0]))
    assert values.tolist() == [1.0, -1.0, 0.0, pytest.approx(math.tanh(1.0))]


def test_invalid_score_unpairs_its_partner() -> None:
    rows = [*HAND[:4], ("tied:3", [1.0, math.nan], [0.0]), ("ref:3", [1.0], [0.0])]
    result = TiesProtocol().evaluate(*scored_items(rows), MetricOptions())
    assert result.excluded == {"invalid_score": 1, "unpaired": 1}
    assert result.metric("score").n == 2


def test_ids_are_checked() -> None:
    with pytest.raises(DataError, match="tied:N"):
        TiesProtocol().evaluate(*scored_items([("tied-1", [1.0], [0.0])]), MetricOptions())
    with pytest.raises(DataError, match="duplicate"):
        TiesProtocol().evaluate(
            *scored_items([("ties/tied:1", [1.0], [0.0]), ("tied:1", [1.0], [0.0])]), MetricOptions()
        )
    with pytest.raises(DataError, match="both"):
        TiesProtocol().evaluate(*scored_items([("tied:1", [1.0], [0.0])]), MetricOptions())
    assert isinstance(get_protocol("ties"), TiesProtocol)


def test_seeded_bootstrap_is_deterministic() -> None:
    items, scores = scored_items(HAND)
    one = TiesProtocol().evaluate(items, scores, MetricOptions(seed=3)).metrics
    two = TiesProtocol().evaluate(items, scores, MetricOptions(seed=3)).metrics
    assert one == two


def pseudo_score(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 2**32


def test_rewardbench2_ties_sample_matches_independent_reference() -> None:
    path = shared_path("rewardbench2_ties_sample/ties_sample_tied41-50.jsonl")
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    items = [
        PreferenceItem(
            id=r["id"],
            prompt=user_turn(r["prompt"]),
            chosen=tuple(Response(t) for t in r["chosen"]),
            rejected=tuple(Response(t) for t in r["rejected"]),
            subset=r["subset"],
        )
        for r in records
    ]
    protocol = TiesProtocol()
    # Scores from the text, with a bonus for the correct answers so that some prompts are separated.
    correct = {(r["prompt"], t) for r in records for t in r["chosen"]}
    scores = {}
    for request in protocol.requests(items):
        bonus = 0.6 if (request.prompt[0][1], request.response) in correct else 0.0
        scores[request.key] = Score(value=pseudo_score(request.response) + bonus)
    result = protocol.evaluate(items, scores, MetricOptions())
    rows = [
        (r["id"], [pseudo_score(t) + 0.6 for t in r["chosen"]], [pseudo_score(t) for t in r["rejected"]])
        for r in records
    ]
    reference = reference_ties_score(rows)
    for name, value in reference.items():
        assert result.metric(name).value == pytest.approx(value, abs=1e-12), name
    assert result.metric("score").n == 10 and not result.excluded
