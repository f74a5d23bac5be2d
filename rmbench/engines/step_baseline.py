"""Step-level baselines that need no download: a score per solution step, so step-level suites run anywhere.

- ``random-prm``: each step gets uniform[0, 1) from sha256(seed, request key, step index), the chance floor. At the
  default threshold 0.5 every step is predicted correct with probability 1/2, independently.
- ``arith-prm``: checks every ``a op b = c`` it can read in a step (op in + − × * / ÷, numbers with an optional ``$``
  and thousands commas); a step with a false equation scores 0.1, any other step 0.9. It finds arithmetic slips,
  never a wrong method or a hallucinated premise: a cheap floor a real PRM should beat.

``Score.value`` is the minimum step score (the default step aggregation), so these also run on solution-level suites.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from rmbench.engines.base import Encoded
from rmbench.engines.baseline import _TextOnlyEngine
from rmbench.requests import Score, ScoreRequest

#: Scores of arith-prm: clearly below / above the default threshold 0.5.
WRONG_STEP, OTHER_STEP = 0.1, 0.9

_NUMBER = r"\$?\s*-?\d[\d,]*(?:\.\d+)?"
_OP = r"\s*[+\-−×*/÷x]\s*"
#: ``a op b (op c …) = d``: a chain of numbers and operators, then one number after "=".
_EQUATION = re.compile(rf"({_NUMBER}(?:{_OP}{_NUMBER})+)\s*=\s*({_NUMBER})")
_TOKEN = re.compile(rf"({_NUMBER})|([+\-−×*/÷x])")


class _StepEngine(_TextOnlyEngine):
    def score(self, batch: Sequence[Encoded], *, hidden: bool = False) -> list[Score]:
        scores = []
        for encoded in batch:
            request = encoded.request
            steps = request.steps or (request.response,)
            values = tuple(self.step_value(request, i, step) for i, step in enumerate(steps))
            scores.append(Score(value=min(values), steps=values if request.steps else (), n_tokens=encoded.n_tokens))
        return scores

    def step_value(self, request: ScoreRequest, index: int, step: str) -> float:
        raise NotImplementedError


class RandomStepEngine(_StepEngine):
    """Seeded uniform step scores: the same for one (seed, request, step) in every batch, process and run."""

    score_fields = ("seed",)

    def step_value(self, request: ScoreRequest, index: int, step: str) -> float:
        digest = hashlib.sha256(f"{self.spec.seed}:{request.key}:{index}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2.0**64

    def info(self) -> dict[str, Any]:
        return {"engine": self.spec.engine, "seed": self.spec.seed}


def _number(text: str) -> float:
    return float(text.replace("$", "").replace(",", "").replace(" ", ""))


def _evaluate(chain: str) -> float | None:
    """A chain of numbers and + − × ÷ with the usual precedence (× and ÷ first); NaN on a division by 0, None when
    the chain does not alternate number, operator, number (e.g. ``5 -3`` read as two numbers)."""
    tokens = [(n, o) for n, o in _TOKEN.findall(chain)]
    if len(tokens) % 2 == 0 or any(bool(n) != (i % 2 == 0) for i, (n, _) in enumerate(tokens)):
        return None
    terms: list[float] = [_number(tokens[0][0])]
    signs: list[float] = [1.0]
    for (_, op), (number, _) in zip(tokens[1::2], tokens[2::2]):
        value = _number(number)
        if op in "×*x":
            terms[-1] *= value
        elif op in "/÷":
            terms[-1] = terms[-1] / value if value else float("nan")
        else:
            terms.append(value)
            signs.append(1.0 if op == "+" else -1.0)
    return sum(s * t for s, t in zip(signs, terms))


def false_equations(step: str) -> int:
    """How many ``a op b … = c`` in ``step`` do not hold (relative tolerance 1e-6; a division by 0 is false)."""
    wrong = 0
    for chain, result in _EQUATION.findall(step):
        value, target = _evaluate(chain), _number(result)
        if value is not None and not abs(value - target) <= 1e-6 * max(1.0, abs(target)):
            wrong += 1
    return wrong


class ArithmeticStepEngine(_StepEngine):
    """0.1 for a step with a false equation, 0.9 otherwise (see the module docstring)."""

    def step_value(self, request: ScoreRequest, index: int, step: str) -> float:
        return WRONG_STEP if false_equations(step) else OTHER_STEP
