"""A default run of a published benchmark's suite equals that benchmark's own computation (METRICS.md §0).

The reference numbers here are computed by plain loops written for these tests from each benchmark's *rule* as its
released scoring code applies it (nothing is imported or copied from that code):

- RM-Bench (github.com/THU-KEG/RM-Bench at 73c52d7, scripts/utils.py ``compute_accuracy``): a grid cell counts when
  ``score_chosen[i] > score_rejected[j]``; hard / normal / easy = upper triangle / diagonal / lower triangle.
- RewardMATH (github.com/kimsh0507/RewardMATH_official at cde06ab, src/evaluation/eval.py): "reward Acc" is
  ``min(chosen) > max(rejected)``; "reward MRR" ranks by score with rejected solutions first among equal scores;
  PRM step scores are aggregated by min, max, prod, geometric_mean, mean, mean_logit, mean_odd or last.

Both count a tie as wrong, which is what the shipped suites now default to.
"""

from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pytest

from rmbench.external.rewardmath import evaluate_score_file
from rmbench.metrics.options import MetricOptions, Section
from rmbench.protocols.aggregate import aggregate_steps
from rmbench.protocols.grid import StyleGridProtocol
from rmbench.protocols.pairwise import PairwiseProtocol
from rmbench.requests import Score, ScoreRequest
from rmbench.suite import list_suites, load_suite
from tests._shared import SHARED_DATA, shared_path
from tests.protocols import test_protocol_pairwise as pairwise_helpers

#: Each published benchmark's own tie rule (METRICS.md §0). RewardBench 2's best-of-4 credit 1/#max is the expected
#: policy of a one-vs-many item; its Ties subset has its own score (§4) whatever the policy says.
OFFICIAL = {
    "rewardbench": "strict",
    "rewardbench-prior-sets": "strict",
    "rm-bench": "strict",
    "rm-bench-chat": "strict",
    "rm-bench-code": "strict",
    "rm-bench-math": "strict",
    "rm-bench-safety": "strict",
    "rmb-pairwise": "strict",
    "rmb-bon": "strict",
    "rmb-pairwise-by-scenario": "strict",
    "rmb-bon-by-scenario": "strict",
    "rewardmath": "strict",
    "rewardbench2": "expected",
}


def test_published_benchmark_suites_default_to_their_own_rule_and_user_suites_to_expected() -> None:
    suites = {s.name: s for s in list_suites()}
    assert set(OFFICIAL) <= set(suites)
    for name, suite in suites.items():
        if name in OFFICIAL:
            assert suite.metrics.tie_policy == OFFICIAL[name], name
        elif suite.protocol != "contrast":  # contrast consistency is strict by definition (METRICS.md §6)
            assert suite.metrics.tie_policy == "expected", name


# --- RM-Bench --------------------------------------------------------------------------------------------------------


def _rm_bench_reference(chosen: np.ndarray, rejected: np.ndarray) -> dict[str, float]:
    matrix = np.zeros((3, 3))
    for c, r in zip(chosen, rejected):
        for i in range(3):
            for j in range(3):
                if c[i] > r[j]:
                    matrix[i][j] += 1
    matrix /= len(chosen)
    hard = np.mean([matrix[i][j] for i in range(3) for j in range(3) if i < j])
    normal = np.mean([matrix[i][i] for i in range(3)])
    easy = np.mean([matrix[i][j] for i in range(3) for j in range(3) if i > j])
    return {"hard": hard, "normal": normal, "easy": easy}


@pytest.mark.shared_data
def test_rm_bench_chat_default_equals_the_benchmark_rule_on_shipped_data() -> None:
    from rmbench.data import load_items

    shared_path("rm_bench/chat_filtered.json")
    suite = load_suite("rm-bench-chat")
    items = load_items(suite, data_dir=SHARED_DATA).items
    # identical scores for both computations: response length in words, which ties often (issue 17: 28 of 1161)
    scores = {
        ScoreRequest.of(item.prompt, r).key: Score(value=float(len(r.text.split())))
        for item in items
        for r in (*item.chosen, *item.rejected)
    }
    chosen = np.array([[len(r.text.split()) for r in item.chosen] for item in items], dtype=float)
    rejected = np.array([[len(r.text.split()) for r in item.rejected] for item in items], dtype=float)
    reference = _rm_bench_reference(chosen, rejected)
    result = StyleGridProtocol().evaluate(items, scores, suite.metrics)
    for name, value in reference.items():
        assert result.metric(name).value == pytest.approx(value, abs=1e-12), name
    assert any(m.ties for m in result.metrics), "word counts tie somewhere: the comparison must exercise ties"


def test_pairwise_default_of_published_suites_is_the_strict_comparison_on_synthetic_ties() -> None:
    rng = np.random.default_rng(7)
    pairs = rng.integers(0, 4, size=(200, 2))
    items, scores = pairwise_helpers.scored_items([(f"p{i}", c, r) for i, (c, r) in enumerate(pairs)])
    for name in ("rewardbench", "rmb-pairwise"):
        options = load_suite(name).metrics.model_copy(update={"sections": None})
        result = PairwiseProtocol().evaluate(items, scores, options)
        assert result.metric("accuracy").value == pytest.approx(np.mean([c > r for c, r in pairs]), abs=1e-12)


# --- RewardMATH: the published score files ---------------------------------------------------------------------------


def _records(path) -> list[dict]:
    records = json.loads(gzip.decompress(path.read_bytes()))
    seen, kept = set(), []
    for record in records:  # rmbench keeps the first of a duplicated problem (upstream would count it twice)
        if record["problem"] not in seen:
            seen.add(record["problem"])
            kept.append(record)
    return kept


def _upstream_like(records: list[dict], reduce) -> tuple[float, float]:
    """(accuracy, MRR) by the benchmark's rule: strict win over every rejected solution; rejected first on ties."""
    accuracy, mrr = [], []
    for record in records:
        values = [reduce(v) for v in record["score"]]
        chosen = values[0]
        rejected = [v for ref, v in zip(record["solution_reference"], values) if ref != "human_to_GPT-4"]
        accuracy.append(chosen > max(rejected))
        mrr.append(1 / (1 + sum(r >= chosen for r in rejected)))
    return float(np.mean(accuracy)), float(np.mean(mrr))


def _direct_files() -> list:
    folder = SHARED_DATA / "rewardmath" / "model_scores"
    return sorted(p for p in folder.glob("*_reward.json.gz") if "_pairwise_" not in p.name) if folder.exists() else []


def _reducer(how: str):
    def reduce(value):
        if not isinstance(value, list):
            return value
        p = np.array(value, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return {
                "min": lambda: p.min(),
                "geometric_mean": lambda: math.prod(value) ** (1 / len(value)),
                "mean_logit": lambda: 1 / (1 + np.exp(-np.mean(np.log(p / (1 - p))))),
                "mean_odd": lambda: max(0.0, float(np.mean(p / (1 - p)))),
            }[how]()

    return reduce


@pytest.mark.shared_data
@pytest.mark.parametrize("path", _direct_files(), ids=lambda p: p.name.split("_reward")[0])
def test_rewardmath_default_reproduces_the_benchmark_rule_on_every_published_direct_file(path) -> None:
    options = load_suite("rewardmath").metrics  # what evaluate-scores uses by default
    records = _records(path)
    is_prm = isinstance(records[0]["score"][0], list)
    for how in ("min", "geometric_mean", "mean_logit", "mean_odd") if is_prm else ("min",):
        evaluation = evaluate_score_file(path, options.model_copy(update={"aggregate": how}))
        valid = [r for r in records if all(np.isfinite(_reducer(how)(v)) for v in r["score"])]
        accuracy, mrr = _upstream_like(valid, _reducer(how))
        result = evaluation.result
        assert result.metric("accuracy").value == pytest.approx(accuracy, abs=1e-12), how
        assert result.metric("mrr").value == pytest.approx(mrr, abs=1e-12), how
        assert result.metric("accuracy").ties is not None


def test_rewardmath_step_aggregations_by_hand() -> None:
    steps = [0.9, 0.2, 0.8]
    assert aggregate_steps(steps, "geometric_mean") == pytest.approx(0.144 ** (1 / 3))
    logits = [math.log(9), math.log(0.25), math.log(4)]
    assert aggregate_steps(steps, "mean_logit") == pytest.approx(1 / (1 + math.exp(-sum(logits) / 3)))
    assert aggregate_steps(steps, "mean_odd") == pytest.approx((9 + 0.25 + 4) / 3)
    # a step scored exactly 1 has infinite odds: not a number to rank by, so the item is excluded, never scored 0
    assert math.isinf(aggregate_steps([0.5, 1.0], "mean_odd"))
    items, scores = pairwise_helpers.scored_items(
        [("a", Score(value=0.0, steps=(0.5, 1.0)), Score(value=0.0, steps=(0.5,))), ("b", 0.6, 0.4)]
    )
    result = PairwiseProtocol().evaluate(items, scores, MetricOptions(aggregate="mean_odd"))
    assert result.excluded == {"invalid_score": 1} and result.metric("accuracy").n == 1


# --- RMB: the per-scenario breakdown and both averagings -------------------------------------------------------------


def test_rmb_suites_break_down_by_scenario_and_the_variants_only_average_differently() -> None:
    for name in ("rmb-pairwise", "rmb-bon"):
        pooled, by_scenario = load_suite(name), load_suite(f"{name}-by-scenario")
        sections = pooled.metrics.sections
        assert sections is not None and list(sections) == ["Harmlessness", "Helpfulness"]
        assert [len(s.subsets) for s in sections.values()] == [12, 37]  # RMB's 49 scenario files
        assert all(s.weights is None for s in sections.values())  # pooled over pairs / prompts
        assert pooled.fields["subset"] is not None and pooled.fields["subset"].path == "goal_scenario"
        other = by_scenario.metrics.sections
        assert other is not None and all(s.weights == "equal" for s in other.values())
        assert {k: v.subsets for k, v in other.items()} == {k: v.subsets for k, v in sections.items()}
        assert by_scenario.model_dump(exclude={"name", "version", "description", "metrics"}) == pooled.model_dump(
            exclude={"name", "version", "description", "metrics"}
        )


def test_pooled_and_scenario_mean_sections_by_hand() -> None:
    # scenario x: 3 pairs, 1 correct; scenario y: 1 pair, correct → pooled 2/4, scenario mean (1/3 + 1) / 2
    rows = [("a", 0, 1, "G/x"), ("b", 0, 1, "G/x"), ("c", 1, 0, "G/x"), ("d", 1, 0, "G/y")]
    items, scores = pairwise_helpers.scored_items(rows)
    pooled = PairwiseProtocol().evaluate(items, scores, MetricOptions(sections={"G": Section(subsets=["G/x", "G/y"])}))
    equal = Section(subsets=["G/x", "G/y"], weights="equal")
    mean = PairwiseProtocol().evaluate(items, scores, MetricOptions(sections={"G": equal}))
    assert pooled.metric("accuracy", "section:G").value == pytest.approx(0.5)
    assert mean.metric("accuracy", "section:G").value == pytest.approx((1 / 3 + 1) / 2)
    assert mean.metric("accuracy", "subset:G/x").value == pytest.approx(1 / 3)
