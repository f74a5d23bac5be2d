"""RewardMATH score files: format detection, record checks, duplicates, and agreement with an independent
plain-loop implementation of METRICS.md §2 on every published file."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import pytest

from rmbench.errors import DataError, ScoreError
from rmbench.external.rewardmath import evaluate_score_file
from rmbench.protocols.base import MetricOptions
from tests._shared import SHARED_DATA, shared_path

REF = ["human_to_GPT-4", "modified_with_GPT-4", "model-x"]


def write(tmp_path: Path, records: list, name: str = "scores.json", compress: bool = False) -> Path:
    path = tmp_path / name
    data = json.dumps(records).encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def direct(problem: str, scores: list) -> dict:
    return {"problem": problem, "solution_reference": REF[: len(scores)], "score": scores}


def pairwise(problem: str, verdicts: list, positions: list) -> dict:
    return {
        "problem": problem,
        "solution_reference": ["m"] * len(verdicts),
        "score": verdicts,
        "chosen_position": positions,
    }


# --- small files ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_direct_float_file_plain_or_gzip(tmp_path: Path, compress: bool) -> None:
    path = write(tmp_path, [direct("p1", [2.0, 1.0, 2.0]), direct("p2", [0.9, 0.5, 1.2])], compress=compress)
    evaluation = evaluate_score_file(path)
    result, info = evaluation.result, evaluation.info
    assert (info.format, info.score_type, info.n_problems, info.candidates) == ("direct", "float", 2, [3])
    assert result.per_item["accuracy"].tolist() == [0.5, 0.0]
    assert result.per_item["mrr"].tolist() == pytest.approx([0.75, 0.5])
    assert result.metric("accuracy").value == 0.25 and result.metric("accuracy").n == 2
    assert {m.scope for m in result.metrics} == {"overall"}
    assert result.extra["tie_policy"] == "expected" and result.extra["format"] == "direct"


def test_int_ratings_and_step_lists(tmp_path: Path) -> None:
    ints = evaluate_score_file(write(tmp_path, [direct("p", [9, 9, 8])], "ints.json"))
    assert ints.info.score_type == "int" and ints.result.metric("accuracy").value == 0.5
    steps = write(tmp_path, [direct("p", [[0.9, 0.2, 0.8], [0.5], [0.3, 0.9]]), direct("q", [[], [1.0]])], "steps.json")
    by_min = evaluate_score_file(steps, MetricOptions(aggregate="min"))
    assert by_min.info.score_type == "steps" and by_min.result.metric("mrr").value == pytest.approx(1 / 3)
    assert by_min.result.excluded == {"invalid_score": 1}  # an empty step list is a missing score
    assert by_min.result.extra["aggregate"] == "min"
    by_last = evaluate_score_file(steps, MetricOptions(aggregate="last"))
    assert by_last.result.metric("accuracy").value == 0.0 and by_last.result.metric("mrr").value == 0.5


def test_missing_scores_exclude_the_problem(tmp_path: Path) -> None:
    path = write(tmp_path, [direct("p1", [2.0, 1.0]), direct("p2", [None, 1.0]), direct("p3", [1.0, float("nan")])])
    result = evaluate_score_file(path).result
    assert result.excluded == {"invalid_score": 2}
    assert result.metric("accuracy").value == 1.0 and result.metric("accuracy").n == 1


def test_pairwise_file_has_no_mrr(tmp_path: Path) -> None:
    path = write(tmp_path, [pairwise("p1", ["A", "B"], ["A", "B"]), pairwise("p2", ["A", "A"], ["A", "B"])])
    evaluation = evaluate_score_file(path)
    assert evaluation.info.format == "pairwise" and evaluation.info.score_type == "verdict"
    assert evaluation.result.metric("accuracy").value == 0.5
    assert evaluation.result.metric("pairwise_accuracy").value == 0.75
    with pytest.raises(KeyError):
        evaluation.result.metric("mrr")
    assert any("mrr is not defined" in note for note in evaluation.info.notes)
    with pytest.raises(KeyError):  # a draw of 3 comparisons needs at least 3
        evaluation.result.metric("best_of_4_accuracy")


def test_best_of_4_accuracy_averages_every_draw_of_three_incorrect(tmp_path: Path) -> None:
    # c=2 vs [1, 2, 2, 3]: the C(4,3) = 4 draws are {1,2,2} (two ties: 1/3) and three holding the 3 (0 each),
    # so 1/12 under the expected policy and 0 under strict.
    references = ["human_to_GPT-4"] + ["x"] * 4
    records = [{"problem": "p", "solution_reference": references, "score": [2.0, 1.0, 2.0, 2.0, 3.0]}]
    path = write(tmp_path, records)
    assert evaluate_score_file(path).result.metric("best_of_4_accuracy").value == pytest.approx(1 / 12)
    assert evaluate_score_file(path, MetricOptions(tie_policy="strict")).result.metric("best_of_4_accuracy").value == 0
    # Pairwise: 4 comparisons with one lost; only the draw of the 3 won ones counts: 1/4.
    verdicts = write(tmp_path, [pairwise("p", ["A", "A", "A", "A"], ["A", "A", "A", "B"])], "pairwise.json")
    assert evaluate_score_file(verdicts).result.metric("best_of_4_accuracy").value == 0.25


def test_null_verdicts_excluded_by_default_or_counted_wrong_on_request(tmp_path: Path) -> None:
    path = write(tmp_path, [pairwise("p1", ["A", "B"], ["A", "B"]), pairwise("p2", [None, "B"], ["A", "B"])])
    excluded = evaluate_score_file(path)
    assert excluded.result.excluded == {"missing_verdict": 1}
    assert excluded.result.metric("accuracy").value == 1.0 and excluded.info.missing_verdicts == 1
    assert excluded.info.warnings
    as_wrong = evaluate_score_file(path, missing_verdict="incorrect")
    assert as_wrong.result.metric("accuracy").value == 0.5
    assert as_wrong.result.metric("pairwise_accuracy").value == 0.75
    assert as_wrong.result.excluded == {}


def test_duplicate_problems_keep_the_first_and_warn(tmp_path: Path) -> None:
    records = [direct("p1", [2.0, 1.0]), direct("p2", [0.0, 1.0]), direct("p1", [2.0, 1.0]), direct("p2", [5.0, 1.0])]
    evaluation = evaluate_score_file(write(tmp_path, records))
    assert evaluation.result.per_item["item_id"].tolist() == ["0", "1"]
    assert evaluation.result.metric("accuracy").value == 0.5  # p2 scored by its first record, not its second
    assert evaluation.result.excluded == {"duplicate_problem": 2}
    assert evaluation.info.duplicates == [
        {"kept_record": 0, "dropped_record": 2, "identical": True},
        {"kept_record": 1, "dropped_record": 3, "identical": False},
    ]
    assert len(evaluation.info.warnings) == 2 and "DIFFERENT scores" in evaluation.info.warnings[1]


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ({"problem": "p"}, "non-empty JSON array"),
        ([], "non-empty JSON array"),
        (["text"], "record 0: expected an object"),
        ([direct("p", [1.0, 0.0]), {"solution_reference": REF[:2], "score": [1, 0]}], "record 1, field 'problem'"),
        ([direct("p", [1.0, "high"])], "record 0, field 'score\\[1\\]'"),
        ([direct("p", [1.0, True])], "record 0, field 'score\\[1\\]'"),
        ([{"problem": "p", "solution_reference": REF, "score": [1.0, 2.0]}], "record 0, field 'score'.*common"),
        ([direct("p", [1.0])], "record 0, field 'score'.*at least one other"),
        ([direct("p", [1.0, 0.0]), direct("q", [[0.5], [0.1]])],
         "record 1, field 'score\\[0\\]': a step list, but record 0, field 'score\\[0\\]' is a single score"),
        ([pairwise("p", ["A", "C"], ["A", "B"])], "record 0, field 'score\\[1\\]'"),
        ([pairwise("p", ["A", "B"], ["A", None])], "record 0, field 'chosen_position\\[1\\]'"),
        ([pairwise("p", ["A"], ["A"]), direct("q", [1.0, 0.0])], "record 1, field 'chosen_position'"),
        ([direct("p", [1.0, 0.0]), pairwise("q", ["A"], ["A"])], "record 1, field 'chosen_position'"),
        ([direct("p", [1.0, 0.0]), direct("p", [1.0, "x"])], "record 1, field 'score\\[1\\]'"),  # dropped copy too
    ],
)
def test_malformed_files_name_file_record_and_field(tmp_path: Path, records: object, message: str) -> None:
    path = write(tmp_path, records)  # type: ignore[arg-type]
    with pytest.raises(DataError, match=message) as error:
        evaluate_score_file(path)
    assert str(path) in str(error.value)


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json.gz"
    path.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match="broken.json.gz"):
        evaluate_score_file(path)
    with pytest.raises(DataError):
        evaluate_score_file(tmp_path / "absent.json")


def test_nothing_valid_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ScoreError):
        evaluate_score_file(write(tmp_path, [direct("p", [None, 1.0])]))


# --- the published files, against an independent implementation -----------------------------------------------------


def independent(path: Path, policy: str, aggregate: str) -> dict[str, float]:
    """§2 written out with plain loops, sharing no code with rmbench: the first record of each problem counts."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        records = json.load(handle)
    seen, acc, rr, pair, best_of_4 = set(), [], [], [], []
    for record in records:
        if record["problem"] in seen:
            continue
        seen.add(record["problem"])
        if "chosen_position" in record:
            if None in record["score"]:
                continue
            correct = [v == p for v, p in zip(record["score"], record["chosen_position"])]
            acc.append(1.0 if all(correct) else 0.0)
            pair.append(sum(correct) / len(correct))
            draws = list(itertools.combinations(correct, 3))
            best_of_4.append(sum(1.0 for draw in draws if all(draw)) / len(draws))
            continue
        values = []
        for s in record["score"]:
            if isinstance(s, list):
                if aggregate == "min":
                    s = min(s)
                elif aggregate == "last":
                    s = s[-1]
                else:
                    product = 1.0
                    for x in s:
                        product *= x
                    s = product
            values.append(float(s))
        good, bad = values[0], values[1:]
        g = sum(1 for b in bad if b > good)
        t = sum(1 for b in bad if b == good)
        if policy == "strict":
            acc.append(1.0 if g == 0 and t == 0 else 0.0)
            rr.append(1.0 / (g + t + 1))
        else:
            acc.append(1.0 / (t + 1) if g == 0 else 0.0)
            rr.append(sum(1.0 / r for r in range(g + 1, g + t + 2)) / (t + 1))
        wins = []  # RewardBench 2 format: every draw of 3 incorrect solutions, scored like one 1-vs-3 item
        for draw in itertools.combinations(bad, 3):
            tied = sum(1 for b in draw if b == good)
            if any(b > good for b in draw):
                wins.append(0.0)
            elif policy == "strict":
                wins.append(1.0 if tied == 0 else 0.0)
            else:
                wins.append(1.0 / (tied + 1))
        best_of_4.append(sum(wins) / len(wins))
    out = {"accuracy": sum(acc) / len(acc), "n": len(acc)}
    if rr:
        out["mrr"] = sum(rr) / len(rr)
    if pair:
        out["pairwise_accuracy"] = sum(pair) / len(pair)
    out["best_of_4_accuracy"] = sum(best_of_4) / len(best_of_4)
    return out


def score_files() -> list[Path]:
    folder = SHARED_DATA / "rewardmath" / "model_scores"
    return sorted(folder.glob("*.json*")) if folder.is_dir() else []


def test_shared_score_files_are_present() -> None:
    folder = shared_path("rewardmath/model_scores")
    assert len(list(folder.glob("*.json*"))) == 23


@pytest.mark.parametrize("path", score_files(), ids=lambda p: p.name)
@pytest.mark.parametrize(("policy", "aggregate"), [("expected", "min"), ("strict", "min"), ("expected", "prod")])
def test_published_file_agrees_with_independent_implementation(path: Path, policy: str, aggregate: str) -> None:
    evaluation = evaluate_score_file(path, MetricOptions(tie_policy=policy, aggregate=aggregate))
    reference = independent(path, policy, aggregate)
    result = evaluation.result
    assert result.metric("accuracy").n == reference.pop("n")
    for name, value in reference.items():
        assert result.metric(name).value == pytest.approx(value, abs=1e-12), name
    for metric in result.metrics:
        assert 0.0 <= metric.ci_low <= metric.value <= metric.ci_high <= 1.0
    if evaluation.info.format == "direct":
        assert evaluation.info.candidates == [10]
    else:
        assert evaluation.info.candidates == [9]
    expected_duplicates = 2 if path.name in ("chatgpt_reward.json.gz", "gpt4_reward.json.gz") else 0
    assert len(evaluation.info.duplicates) == expected_duplicates
    assert evaluation.info.n_problems == 483
