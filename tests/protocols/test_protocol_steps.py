"""Step-level PRM protocol (METRICS.md §10): worked example, and equality with PRMBench's and ProcessBench's own
released scoring code (tests/reference) on identical step scores, synthetic and shipped."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from rmbench.data import load_items
from rmbench.engines import create_engine
from rmbench.engines.base import Encoded
from rmbench.errors import ScoreError, SuiteError
from rmbench.items import Response, StepItem, user_turn
from rmbench.metrics.steps import COUNTS, count_row, scope_metrics, solution_counts
from rmbench.modelspec import ModelSpec
from rmbench.protocols.base import MetricOptions, Section
from rmbench.protocols.steps import StepLevelProtocol
from rmbench.requests import Score, ScoreRequest
from rmbench.suite import load_suite
from tests._shared import SHARED_DATA, shared_path
from tests.reference import official_step_scoring as official

GROUPS = {
    "simplicity": ["redundency", "circular"],
    "soundness": ["counterfactual", "step_contradiction", "domain_inconsistency", "confidence"],
    "sensitivity": ["missing_condition", "deception", "multi_solutions"],
}
OPTIONS = MetricOptions(sections={g: Section(subsets=s) for g, s in GROUPS.items()}, bootstrap_resamples=1000)


def _item(i: int, n_steps: int, errors: Sequence[int], subset: str, first_only: bool = False) -> StepItem:
    steps = tuple(f"step {k} of {i}" for k in range(n_steps))
    return StepItem(
        id=f"{subset}:{i}",
        prompt=user_turn(f"question {i}"),
        response=Response.from_steps(steps),
        error_steps=tuple(errors),
        first_error_only=first_only,
        subset=subset,
        meta={"cluster": f"q{i % 40}"},
    )


def _scores(items: Sequence[StepItem], steps: Sequence[Sequence[float]]) -> dict[str, Score]:
    return {
        ScoreRequest.of(item.prompt, item.response).key: Score(value=min(s), steps=tuple(s))
        for item, s in zip(items, steps)
    }


def _official_prmbench(items: Sequence[StepItem], steps: Sequence[Sequence[float]], threshold: float = 0.5):  # type: ignore[no-untyped-def]
    meta = [{"idx": it.id, "classification": it.subset, "error_steps": list(it.error_steps)} for it in items]
    results = [
        {"idx": it.id, "scores": {"step_level_validity_labels": [x > threshold for x in s]}}
        for it, s in zip(items, steps)
    ]
    return official.evaluate_function(results, meta)


def _synthetic(seed: int = 0, n: int = 240) -> tuple[list[StepItem], list[list[float]]]:
    rng = np.random.default_rng(seed)
    categories = [c for group in GROUPS.values() for c in group]
    items, steps = [], []
    for i in range(n):
        subset = categories[i % len(categories)]
        n_steps = int(rng.integers(1, 12))
        errors: list[int] = []
        if subset != "multi_solutions":
            errors = sorted({int(e) for e in rng.integers(1, n_steps + 3, size=int(rng.integers(1, 4)))})
        items.append(_item(i, n_steps, errors, subset))
        # Scores on a 0.1 grid, so some sit exactly at the threshold (strictly above = correct).
        steps.append([round(float(x), 1) for x in rng.uniform(0, 1, n_steps)])
    return items, steps


def test_worked_example_of_the_spec() -> None:
    # truth [+, +, -, -], predicted [+, -, -, +] -> F1_pos 0.5, F1_neg 0.5, PRMScore 0.5
    counts = solution_counts([0.9, 0.2, 0.1, 0.7], [3, 4], threshold=0.5)
    values = scope_metrics(np.array([count_row(counts)[c] for c in COUNTS], dtype=float), positive_only=False)
    assert (counts.tp, counts.fp, counts.tn, counts.fn) == (1, 1, 1, 1)
    assert values["f1_correct_steps"] == pytest.approx(0.5)
    assert values["f1_error_steps"] == pytest.approx(0.5)
    assert values["prm_score"] == pytest.approx(0.5)
    assert (counts.label, counts.prediction) == (2, 1)


def test_threshold_is_strict() -> None:
    assert solution_counts([0.5, 0.51], [], 0.5).prediction == 0
    assert solution_counts([0.51, 0.6], [], 0.5).prediction == -1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prmscore_equals_prmbench_released_code_on_synthetic_scores(seed: int) -> None:
    items, steps = _synthetic(seed)
    result = StepLevelProtocol().evaluate(items, _scores(items, steps), OPTIONS)
    reference = _official_prmbench(items, steps)
    assert result.metric("prm_score").value == pytest.approx(official.get_prmscore_from_current_res_dict(reference))
    for group, categories in GROUPS.items():
        for category in categories:
            want = official.get_prmscore_from_current_res_dict(reference, category)
            assert result.metric("prm_score", f"subset:{category}").value == pytest.approx(want), category
        want = official.get_avg_prmscore_from_current_res_dict(reference, categories)
        assert result.metric("prm_score", f"section:{group}").value == pytest.approx(want), group
    assert result.extra["items_with_error_steps_past_the_end"] > 0  # the upstream quirk is exercised


def test_processbench_metrics_equal_its_released_code() -> None:
    rng = np.random.default_rng(3)
    items, steps = [], []
    for i in range(300):
        n_steps = int(rng.integers(2, 10))
        label = int(rng.integers(-1, n_steps))  # ProcessBench: -1 or a 0-based step
        items.append(_item(i, n_steps, [] if label == -1 else [label + 1], "math", first_only=True))
        steps.append(list(rng.uniform(0, 1, n_steps) ** 0.3))  # mostly "correct" steps, so both accuracies are > 0
    result = StepLevelProtocol().evaluate(items, _scores(items, steps), MetricOptions())
    res_data = []
    for item, s in zip(items, steps):
        label = min(item.error_steps) - 1 if item.error_steps else -1
        prediction = official.processbench_prediction([x > 0.5 for x in s])
        res_data.append({"label": label, "match": prediction == label})
    acc_error, acc_correct, f1 = official.processbench_metrics(res_data)
    assert result.metric("first_error_acc_error").value * 100 == pytest.approx(acc_error)
    assert result.metric("first_error_acc_correct").value * 100 == pytest.approx(acc_correct)
    assert result.metric("first_error_f1").value * 100 == pytest.approx(f1)
    # first-error-only data: PRMBench's step F1 needs every erroneous step, so it is not reported
    assert not [m for m in result.metrics if m.name == "prm_score"]


def _engine_scores(engine: str, items: Sequence[StepItem]) -> tuple[dict[str, Score], list[list[float]]]:
    scorer = create_engine(ModelSpec(model="", engine=engine))
    requests = [ScoreRequest.of(item.prompt, item.response) for item in items]
    scored = scorer.score([Encoded(request=r, n_tokens=1) for r in requests])
    return {r.key: s for r, s in zip(requests, scored)}, [list(s.steps) for s in scored]


@pytest.mark.shared_data
@pytest.mark.parametrize("engine", ["random-prm", "arith-prm"])
def test_prmscore_equals_prmbench_released_code_on_shipped_data(engine: str) -> None:
    shared_path("prmbench/subset400_target_data.jsonl.gz")
    suite = load_suite("prmbench-quick")
    items = load_items(suite, data_dir=SHARED_DATA).items
    assert len(items) == 394
    scores, steps = _engine_scores(engine, items)
    result = StepLevelProtocol().evaluate(items, scores, suite.metrics)
    reference = _official_prmbench(items, steps)
    assert result.metric("prm_score").value == pytest.approx(official.get_prmscore_from_current_res_dict(reference))
    for group, categories in GROUPS.items():
        present = [c for c in categories if c in reference["hallucination_type_results"]["f1"]]
        for category in present:
            want = official.get_prmscore_from_current_res_dict(reference, category)
            assert result.metric("prm_score", f"subset:{category}").value == pytest.approx(want), category
        want = official.get_avg_prmscore_from_current_res_dict(reference, present)
        assert result.metric("prm_score", f"section:{group}").value == pytest.approx(want), group


@pytest.mark.shared_data
def test_random_step_baseline_lands_where_chance_predicts() -> None:
    """Random steps at τ = 0.5: each step is predicted correct with p = 1/2, independently. With π the share of
    correct steps, E[F1_pos] ≈ π/(π + 1/2) and E[F1_neg] ≈ (1 − π)/(3/2 − π); the earliest error at 0-based step k
    is found with probability 2^−(k+1) and a correct solution of S steps is passed with probability 2^−S."""
    shared_path("prmbench/subset400_target_data.jsonl.gz")
    suite = load_suite("prmbench-quick")
    items = load_items(suite, data_dir=SHARED_DATA).items
    scores, _ = _engine_scores("random-prm", items)
    result = StepLevelProtocol().evaluate(items, scores, suite.metrics)
    correct = sum(
        len(it.response.steps) - len({e for e in it.error_steps if e <= len(it.response.steps)}) for it in items
    )
    pi = correct / sum(len(it.response.steps) for it in items)
    expected = 0.5 * pi / (pi + 0.5) + 0.5 * (1 - pi) / (1.5 - pi)
    measured = result.metric("prm_score")
    assert measured.ci_low is not None and measured.ci_high is not None
    assert measured.ci_low <= expected <= measured.ci_high, (expected, measured)
    erroneous = [solution_counts([1.0] * len(it.response.steps), it.error_steps, 0.5).label for it in items]
    chance_error = np.mean([2.0 ** -(k + 1) for k in erroneous if k is not None and k >= 0])
    found = result.metric("first_error_acc_error")
    assert found.ci_low is not None and found.ci_high is not None
    assert found.ci_low <= chance_error <= found.ci_high, (chance_error, found)


def test_items_without_step_scores_are_counted_and_a_run_of_them_fails_clearly() -> None:
    items, steps = _synthetic(0, n=30)
    scores = _scores(items, steps)
    first = ScoreRequest.of(items[0].prompt, items[0].response).key
    second = ScoreRequest.of(items[1].prompt, items[1].response).key
    scores[first] = Score(value=0.3)
    scores[second] = Score(value=math.nan, steps=(math.nan,) * len(items[1].response.steps))
    result = StepLevelProtocol().evaluate(items, scores, OPTIONS)
    assert result.excluded == {"invalid_score": 1, "no_step_scores": 1}
    scalar = {k: Score(value=1.0) for k in scores}
    with pytest.raises(ScoreError, match="random-prm"):
        StepLevelProtocol().evaluate(items, scalar, OPTIONS)


def test_threshold_is_a_recorded_parameter_and_the_sweep_a_curve() -> None:
    items, steps = _synthetic(1, n=60)
    options = MetricOptions(params={"threshold": 0.3, "threshold_source": "held-out tuning"})
    result = StepLevelProtocol().evaluate(items, _scores(items, steps), options)
    assert result.extra["threshold"] == 0.3 and result.extra["threshold_source"] == "held-out tuning"
    curve = result.extra["threshold_sweep"]
    at = curve["threshold"].index(0.3)
    assert curve["prm_score"][at] == pytest.approx(result.metric("prm_score").value)
    with pytest.raises(SuiteError, match="unknown key"):
        StepLevelProtocol().evaluate(items, _scores(items, steps), MetricOptions(params={"treshold": 0.3}))
