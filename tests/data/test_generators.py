"""The math_robustness generator: deterministic, right where it says so, and wrong for the stated reason."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest
from pydantic import ValidationError

from rmbench.data import load_items
from rmbench.errors import SuiteError
from rmbench.generators import GENERATORS, generate, get_generator
from rmbench.generators.math_robustness import ERROR_TYPES, TEMPLATES, Params, fmt
from rmbench.suite import load_suite

NUMBER = r"\$?\d+(?:\.\d+)?"
EQUATION = re.compile(rf"((?:{NUMBER}\s*[×÷+−]\s*)+{NUMBER})\s*=\s*\$?(-?\d+(?:\.\d+)?(?:/\d+)?)")


def evaluate(expression: str) -> Fraction:
    python = expression.replace("$", "").replace("×", "*").replace("÷", "/").replace("−", "-")
    return eval(re.sub(r"\d+(?:\.\d+)?", lambda m: f"Fraction('{m.group()}')", python), {"Fraction": Fraction})


def equations(lines: list[str]) -> list[tuple[int, bool]]:
    """(line index, whether it holds) for every arithmetic 'a op b = c' shown in a solution."""
    return [(n, evaluate(lhs) == Fraction(rhs)) for n, line in enumerate(lines) for lhs, rhs in EQUATION.findall(line)]


def final_answer(lines: list[str]) -> Fraction:
    match = re.fullmatch(r"The answer is (-?[\d./]+)\.", lines[-1])
    assert match, lines[-1]
    return Fraction(match.group(1))


def expected_answer(template: str, question: str) -> Fraction:
    """The right answer recomputed from the question text alone, independently of the generator's steps."""
    n = [Fraction(x) for x in re.findall(r"\d+", question)]
    if template == "shopping":
        a, p, b, q, bill = n
        return bill - (a * p + b * q)
    if template == "travel":
        v, t1, w, t2 = n
        return (v * t1 + w * t2) / (t1 + t2)
    if template == "equation":
        a, b, c, d = n
        return (d - b) / (a - c)
    if template == "percent":
        p, d, t = n
        return p * (1 - d / 100) * (1 + t / 100)
    if template == "bakery":
        a, b, c, d, e = n
        return (a * b - c - d) / e
    k, y, s = n  # ages: older = k * younger, (younger + y) + (older + y) = s
    return k * (s - 2 * y) / (k + 1)


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return generate("math_robustness", {"n_problems": 120, "seed": 3})


def test_registry() -> None:
    assert "math_robustness" in GENERATORS
    with pytest.raises(SuiteError, match="did you mean 'math_robustness'"):
        get_generator("math_robustnes")


def test_same_seed_same_records_and_different_seed_different() -> None:
    first = generate("math_robustness", {"n_problems": 30, "seed": 0})
    assert first == generate("math_robustness", {"n_problems": 30, "seed": 0})
    assert first != generate("math_robustness", {"n_problems": 30, "seed": 1})
    # problem i depends on (seed, i) only: a longer run extends a shorter one
    assert generate("math_robustness", {"n_problems": 45, "seed": 0})[:30] == first


def test_shape_and_balance(records: list[dict]) -> None:
    assert len(records) == 120 and len({r["id"] for r in records}) == 120
    assert {t: sum(r["subset"] == t for r in records) for t in TEMPLATES} == {t: 20 for t in TEMPLATES}
    for record in records:
        assert len(record["chosen"]) == 1 and len(record["rejected"]) == len(ERROR_TYPES)
        assert record["rejected_error_types"] == list(ERROR_TYPES)
        assert all(isinstance(step, str) and step.strip() for s in record["chosen"] + record["rejected"] for step in s)


def test_correct_solution_is_right_and_every_step_holds(records: list[dict]) -> None:
    for record in records:
        solution = record["chosen"][0]
        answer = expected_answer(record["subset"], record["prompt"])
        assert final_answer(solution) == answer == Fraction(record["answer"]), record["id"]
        checks = equations(solution)
        assert checks and all(ok for _, ok in checks), (record["id"], solution)


def test_every_incorrect_solution_is_wrong(records: list[dict]) -> None:
    for record in records:
        answer = expected_answer(record["subset"], record["prompt"])
        for solution, stated in zip(record["rejected"], record["rejected_answers"]):
            assert final_answer(solution) == Fraction(stated) != answer, (record["id"], solution)


def test_each_error_is_of_its_stated_kind(records: list[dict]) -> None:
    for record in records:
        correct = record["chosen"][0]
        kinds = zip(record["rejected_error_types"], record["rejected"], record["rejected_first_error_step"])
        for kind, solution, first_error in kinds:
            wrong_lines = [n for n, ok in equations(solution) if not ok]
            assert solution[:first_error] == correct[:first_error], (kind, record["id"])
            if kind == "final_answer_slip":
                assert len(solution) == len(correct) and wrong_lines == [len(solution) - 2] == [first_error]
            elif kind == "propagated_error":
                assert wrong_lines == [first_error] and first_error < len(solution) - 2
            elif kind == "skipped_step":
                assert not wrong_lines and len(solution) == len(correct) - 1
            else:  # hallucinated_step: an extra, arithmetically fine step about something the problem never says
                assert not wrong_lines and len(solution) == len(correct) + 1
                assert solution[first_error] not in correct


def test_params_are_validated() -> None:
    with pytest.raises(ValidationError):
        Params.model_validate({"n_problems": 0})
    with pytest.raises(ValidationError):
        Params.model_validate({"templates": ["geometry"]})
    records = generate("math_robustness", {"n_problems": 4, "templates": ["equation"], "error_types": ["skipped_step"]})
    assert {r["subset"] for r in records} == {"equation"} and all(len(r["rejected"]) == 1 for r in records)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Fraction(12), "12"),
        (Fraction(25, 2), "12.5"),
        (Fraction(7, 3), "7/3"),
        (Fraction(-3), "-3"),
        (Fraction(1, 8), "0.125"),
    ],
)
def test_number_format(value: Fraction, text: str) -> None:
    assert fmt(value) == text


def test_the_shipped_suite_loads_as_step_split_items() -> None:
    data = load_items(load_suite("math-robustness"))
    assert len(data.items) == 60
    item = data.items[0]
    assert len(item.chosen) == 1 and len(item.rejected) == 4
    assert all(response.steps for response in item.chosen + item.rejected)
    assert item.meta["rejected_error_types"] == list(ERROR_TYPES)
    assert data.provenance[0]["kind"] == "generator" and len(data.provenance[0]["sha256"]) == 64
