"""The offline step baselines: seeded per-step random scores and the arithmetic step check."""

from __future__ import annotations

import pytest

from rmbench.engines import create_engine
from rmbench.engines.base import Encoded
from rmbench.engines.step_baseline import OTHER_STEP, WRONG_STEP, false_equations
from rmbench.items import user_turn
from rmbench.modelspec import ModelSpec
from rmbench.requests import ScoreRequest

REQUEST = ScoreRequest(user_turn("q"), "a\n\nb\n\nc", steps=("9 × $5 = $46.", "So 46.", "100 − 85 = 15"))


def _score(engine: str, request: ScoreRequest = REQUEST, **options: int):  # type: ignore[no-untyped-def]
    scorer = create_engine(ModelSpec(model="", engine=engine, **options))
    (score,) = scorer.score([Encoded(request=request, n_tokens=1)])
    return score


def test_random_steps_are_seeded_per_step_and_in_unit_interval() -> None:
    first, again, other = _score("random-prm"), _score("random-prm"), _score("random-prm", seed=1)
    assert first.steps == again.steps and first.steps != other.steps
    assert len(first.steps) == 3 and len(set(first.steps)) == 3 and all(0 <= s < 1 for s in first.steps)
    assert first.value == min(first.steps)


def test_arithmetic_check_flags_false_equations_only() -> None:
    score = _score("arith-prm")
    assert score.steps == (WRONG_STEP, OTHER_STEP, OTHER_STEP)


@pytest.mark.parametrize(
    ("step", "wrong"),
    [
        ("80 × 10 ÷ 100 = $8", 0),  # a chain, left to right
        ("2 + 3 × 4 = 14", 0),  # precedence
        ("2 + 3 × 4 = 20", 1),
        ("1,200 + 3 = 1,203 and 5 - 2 = 4", 1),
        ("6 ÷ 0 = 1", 1),
        ("5 -3 = 2", 0),  # not an alternating chain: not checked
        ("no arithmetic here", 0),
    ],
)
def test_false_equations(step: str, wrong: int) -> None:
    assert false_equations(step) == wrong


def test_solution_level_requests_get_a_scalar() -> None:
    score = _score("arith-prm", ScoreRequest(user_turn("q"), "2 + 2 = 5"))
    assert score.steps == () and score.value == WRONG_STEP
