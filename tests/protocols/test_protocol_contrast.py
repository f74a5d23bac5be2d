"""Contrast-instruction consistency (METRICS.md §6): worked example, ties, exclusions, clusters, the item builder and
the ``contrast_pairs`` generator (determinism, similarity band, pairing rules, bad input)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rmbench.data import load_items
from rmbench.errors import DataError, ScoreError, SuiteError
from rmbench.generators import generate
from rmbench.generators.contrast_pairs import Params, pair_prompts
from rmbench.items import ContrastItem, PreferenceItem, Response, user_turn
from rmbench.protocols import get_protocol
from rmbench.protocols.base import MetricOptions
from rmbench.protocols.contrast import METRICS, ContrastProtocol, consistency_outcomes, four_requests
from rmbench.requests import Score
from rmbench.suite import parse_suite


def contrast_item(name: str, subset: str = "default", q2: str | None = None, r2: str | None = None) -> ContrastItem:
    return ContrastItem(
        id=name,
        q1=user_turn(f"{name} q1"),
        q2=user_turn(q2 if q2 is not None else f"{name} q2"),
        r1=Response(f"{name} r1"),
        r2=Response(r2 if r2 is not None else f"{name} r2"),
        subset=subset,
    )


def scores_for(item: ContrastItem, own1: float, cross1: float, own2: float, cross2: float) -> dict[str, Score]:
    """Scores of R(q1,r1), R(q1,r2), R(q2,r2), R(q2,r1), keyed as the protocol looks them up."""
    values = (own1, cross1, own2, cross2)
    return {request.key: Score(value=v) for request, v in zip(four_requests(item), values)}


def evaluate(items: list[ContrastItem], scores: dict[str, Score], **options: object):
    return ContrastProtocol().evaluate(items, scores, MetricOptions.model_validate(options))


# --- METRICS.md §6 ------------------------------------------------------------------------------------------------


def test_worked_example() -> None:
    """R(q1,r1)=2, R(q1,r2)=1, R(q2,r2)=0.5, R(q2,r1)=0.7 → response-consistent: no (0.5 < 0.7)."""
    item = contrast_item("x")
    result = evaluate([item], scores_for(item, 2.0, 1.0, 0.5, 0.7), tie_policy="strict")
    values = {name: result.metric(name).value for name in METRICS}
    assert values == {
        "response_consistency": 0.0,  # q1 prefers r1 (2 > 1) but q2 prefers r1 too (0.5 < 0.7)
        "response_q1": 1.0,
        "response_q2": 0.0,
        "instruction_consistency": 0.0,  # r1 prefers q1 (2 > 0.7) but r2 prefers q1 too (0.5 < 1)
        "instruction_r1": 1.0,
        "instruction_r2": 0.0,
    }


def test_consistent_item_needs_both_directions() -> None:
    outcomes = consistency_outcomes(np.array([[2.0, 1.0, 3.0, 0.5], [2.0, 1.0, 0.5, 0.7], [1.0, 2.0, 3.0, 0.5]]))
    assert outcomes["response_consistency"].tolist() == [1.0, 0.0, 0.0]
    # Row 3: q1 prefers r2 (1 < 2), yet each response still scores higher under its own instruction.
    assert outcomes["instruction_consistency"].tolist() == [1.0, 0.0, 1.0]
    assert outcomes["response_q1"].tolist() == [1.0, 1.0, 0.0]
    assert outcomes["response_q2"].tolist() == [1.0, 0.0, 1.0]
    # instruction: R(q1,r1) > R(q2,r1) and R(q2,r2) > R(q1,r2)
    assert outcomes["instruction_r1"].tolist() == [1.0, 1.0, 1.0]
    assert outcomes["instruction_r2"].tolist() == [1.0, 0.0, 1.0]


@pytest.mark.parametrize("policy", ["strict", "expected"])
def test_ties_fail_whatever_the_suite_tie_policy(policy: str) -> None:
    tied_response = contrast_item("a")  # R(q1,r1) = R(q1,r2): response direction q1 tied
    tied_instruction = contrast_item("b")  # R(q1,r1) = R(q2,r1): instruction direction r1 tied
    scores = {
        **scores_for(tied_response, 1.0, 1.0, 3.0, 0.0),
        **scores_for(tied_instruction, 2.0, 0.0, 3.0, 2.0),
    }
    result = evaluate([tied_response, tied_instruction], scores, tie_policy=policy)
    frame = result.per_item.set_index("item_id")
    assert frame.loc["a", "response_q1"] == 0.0 and frame.loc["a", "response_consistency"] == 0.0
    assert frame.loc["a", "response_q2"] == 1.0 and frame.loc["a", "instruction_consistency"] == 1.0
    assert frame.loc["b", "instruction_r1"] == 0.0 and frame.loc["b", "instruction_consistency"] == 0.0
    assert frame.loc["b", "response_consistency"] == 1.0
    assert result.extra["tie_policy"] == "strict"
    assert result.extra["items_with_ties"] == {"response": 1, "instruction": 1}
    assert ("tie_policy_note" in result.extra) == (policy == "expected")


def test_constant_scores_are_never_consistent() -> None:
    items = [contrast_item(str(i)) for i in range(4)]
    scores = {k: v for item in items for k, v in scores_for(item, 1.0, 1.0, 1.0, 1.0).items()}
    result = evaluate(items, scores)
    assert all(result.metric(name).value == 0.0 for name in METRICS)


def test_fractions_cis_and_subsets() -> None:
    items = [contrast_item(f"m{i}", "math") for i in range(6)] + [contrast_item(f"c{i}", "chat") for i in range(4)]
    scores: dict[str, Score] = {}
    for i, item in enumerate(items):
        consistent = i % 2 == 0  # m0 m2 m4 c0 c2 (items 6, 8)
        scores |= scores_for(item, 2.0, 1.0, 3.0, 0.0) if consistent else scores_for(item, 2.0, 1.0, 0.5, 0.7)
    result = evaluate(items, scores, tie_policy="strict", bootstrap_resamples=2000, seed=3)
    overall = result.metric("response_consistency")
    assert overall.value == 0.5 and overall.n == 10
    assert overall.ci_low is not None and overall.ci_high is not None
    assert 0.0 <= overall.ci_low < 0.5 < overall.ci_high <= 1.0
    assert overall.method == "bootstrap-percentile"
    assert result.metric("response_consistency", "subset:math").value == 0.5
    assert result.metric("response_consistency", "subset:chat").value == 0.5
    assert result.metric("response_q1").value == 1.0 and result.metric("response_q2").value == 0.5
    assert result.metric("instruction_r1").value == 1.0 and result.metric("instruction_r2").value == 0.5
    assert {m.scope for m in result.metrics} == {"overall", "subset:chat", "subset:math"}
    assert {m.name for m in result.metrics} == set(METRICS)
    again = evaluate(items, scores, tie_policy="strict", bootstrap_resamples=2000, seed=3)
    assert [m.as_dict() for m in again.metrics] == [m.as_dict() for m in result.metrics]


def test_four_requests_per_item_and_mirrored_items_share_them() -> None:
    item = contrast_item("a")
    mirrored = ContrastItem(id="a-mirror", q1=item.q2, q2=item.q1, r1=item.r2, r2=item.r1)
    requests = get_protocol("contrast").requests([item, mirrored])
    assert len(requests) == 8
    assert {r.key for r in requests[:4]} == {r.key for r in requests[4:]}
    assert len({r.key for r in requests[:4]}) == 4
    # The two items share their instructions, so the bootstrap resamples them together.
    scores = scores_for(item, 2.0, 1.0, 3.0, 0.0)
    result = evaluate([item, mirrored, contrast_item("b")], scores | scores_for(contrast_item("b"), 1, 0, 1, 0))
    clusters = result.per_item.set_index("item_id")["cluster"]
    assert clusters["a"] == clusters["a-mirror"] != clusters["b"]
    assert result.extra["clusters"] == 2
    assert result.metric("response_consistency").value == 1.0  # the mirror of a consistent item is consistent


def test_missing_and_nan_scores_are_excluded_and_counted() -> None:
    good, missing, nan = contrast_item("good"), contrast_item("missing"), contrast_item("nan")
    scores = scores_for(good, 2, 1, 3, 0) | scores_for(nan, 2, 1, math.nan, 0)
    scores |= dict(list(scores_for(missing, 2, 1, 3, 0).items())[:3])  # one of four scores never came back
    result = evaluate([good, missing, nan], scores)
    assert result.excluded == {"invalid_score": 1, "missing_score": 1}
    assert result.metric("response_consistency").n == 1
    with pytest.raises(ScoreError, match="no contrast item"):
        evaluate([missing], scores)


def test_step_scores_are_aggregated() -> None:
    item = contrast_item("prm")
    steps = {
        "own1": (0.9, 0.8),
        "cross1": (0.9, 0.1),
        "own2": (0.7, 0.6),
        "cross2": (0.2, 0.95),
    }  # min: 0.8 > 0.1 and 0.6 > 0.2 → consistent; last: 0.6 < 0.95 → not
    scores = {r.key: Score(value=math.nan, steps=s) for r, s in zip(four_requests(item), steps.values())}
    assert evaluate([item], scores, aggregate="min").metric("response_consistency").value == 1.0
    assert evaluate([item], scores, aggregate="last").metric("response_consistency").value == 0.0


def test_degenerate_items_fail_by_default_or_are_excluded() -> None:
    fine = contrast_item("fine")
    self_pair = contrast_item("self", q2="self q1", r2="self r1")  # q2 == q1, r2 == r1: every comparison ties
    scores = scores_for(fine, 2, 1, 3, 0) | scores_for(self_pair, 1, 1, 1, 1)
    kept = evaluate([fine, self_pair], scores)
    assert kept.metric("response_consistency").value == 0.5 and kept.excluded == {}
    assert kept.extra["degenerate"] == {"policy": "fail", "items": 1}
    dropped = evaluate([fine, self_pair], scores, params={"degenerate": "exclude"})
    assert dropped.metric("response_consistency").value == 1.0
    assert dropped.excluded == {"identical_instructions": 1}
    assert dropped.extra["degenerate"] == {"policy": "exclude", "items": 1}
    with pytest.raises(SuiteError, match="degenerate"):
        evaluate([fine], scores, params={"degenerate": "drop"})


# --- records → ContrastItem -----------------------------------------------------------------------------------------


CONTRAST_SUITE = """
name: my-contrast
version: "1"
protocol: contrast
sources:
  - local: {path}
fields:
  id: null
  q1: query
  q2: retrieval
  r1: query_response_k
  r2: retrieval_response_k
"""


def _record(i: int) -> dict[str, str]:
    return {
        "query": f"query {i}",
        "retrieval": f"retrieval {i}",
        "query_response_k": f"answer to query {i}",
        "retrieval_response_k": f"answer to retrieval {i}",
    }


def test_upstream_records_load_with_list_index_ids(tmp_path: Path) -> None:
    data = tmp_path / "c.json"
    data.write_text(json.dumps([_record(0), _record(1)]))
    loaded = load_items(parse_suite(CONTRAST_SUITE.format(path=data), "my-contrast.yaml"))
    assert [item.id for item in loaded.items] == ["0", "1"]
    first = loaded.items[1]
    assert first.q1 == user_turn("query 1") and first.q2 == user_turn("retrieval 1")
    assert first.r1 == Response("answer to query 1") and first.r2 == Response("answer to retrieval 1")
    assert "cluster" not in first.meta  # the protocol clusters by shared instructions instead


@pytest.mark.parametrize("missing", ["retrieval", "query_response_k"])
def test_missing_field_is_a_data_error_naming_file_record_and_field(tmp_path: Path, missing: str) -> None:
    broken = _record(1)
    del broken[missing]
    data = tmp_path / "c.json"
    data.write_text(json.dumps([_record(0), broken]))
    with pytest.raises(DataError) as error:
        load_items(parse_suite(CONTRAST_SUITE.format(path=data), "my-contrast.yaml"))
    assert error.value.field == missing and error.value.record == "#1" and error.value.source == str(data)
    assert f"field '{missing}'" in str(error.value) and "missing" in str(error.value)


def test_response_of_the_wrong_type_is_a_data_error(tmp_path: Path) -> None:
    data = tmp_path / "c.jsonl"
    data.write_text(json.dumps(_record(0) | {"retrieval_response_k": {"text": "x"}}) + "\n")
    with pytest.raises(DataError, match="expected a response as a string") as error:
        load_items(parse_suite(CONTRAST_SUITE.format(path=data), "my-contrast.yaml"))
    assert error.value.field == "retrieval_response_k" and error.value.record == "line 1"


# --- the contrast_pairs generator ---------------------------------------------------------------------------------


def pref(item_id: str, prompt: str, answer: str | None = None) -> PreferenceItem:
    return PreferenceItem(
        id=item_id,
        prompt=user_turn(prompt),
        chosen=(Response(answer or f"good answer to {item_id}"),),
        rejected=(Response(f"bad answer to {item_id}"),),
    )


SOURCE = [
    pref("a", "Tom buys 3 apples at 2 dollars each. How much does Tom pay?"),
    pref("b", "Ann buys 5 pears at 4 dollars each. How much does Ann pay?"),
    pref("c", "Write a haiku about the sea at night."),
    pref("d", "Explain how a bicycle gear works."),
    pref("e", "Tom buys 3 apples at 2 dollars each. How much does Tom pay in total?"),
    pref("a-again", "Tom buys 3 apples at 2 dollars each. How much does Tom pay?"),  # same prompt as "a"
]


def _pairs(records: list[dict]) -> list[tuple[str, str]]:
    return [(r["q1_id"], r["q2_id"]) for r in records]


def test_nearest_pairs_each_prompt_with_its_most_similar_one() -> None:
    pairing = pair_prompts(SOURCE, Params(suite="x", min_similarity=0.3, max_similarity=0.99))
    # a and e are each other's nearest (mutual: kept once); b's nearest is a; c and d have nothing in the band.
    assert _pairs(pairing.records) == [("a", "e"), ("b", "a")]
    first = pairing.records[0]
    assert first["q1"] == SOURCE[0].prompt[0][1] and first["r1"] == "good answer to a"
    assert first["q2"] == SOURCE[4].prompt[0][1] and first["r2"] == "good answer to e"
    assert first["id"] == "a|e" and 0.3 <= first["similarity"] <= 0.99
    report = pairing.report
    assert (report.source_items, report.prompts, report.prompts_with_candidate, report.items) == (6, 5, 3, 2)


def test_similarity_band_thresholds() -> None:
    everything = pair_prompts(SOURCE, Params(suite="x", min_similarity=0.0, max_similarity=1.0)).records
    similarity = {frozenset(p): r["similarity"] for p, r in zip(_pairs(everything), everything)}
    a_e = similarity[frozenset(("a", "e"))]
    assert 0.5 < a_e < 1.0
    # Raising the floor above a–e leaves only less similar pairs out as well: nothing is left.
    above = Params(suite="x", min_similarity=round(a_e + 0.001, 6), max_similarity=1.0)
    assert pair_prompts(SOURCE, above).records == []
    # A ceiling below a–e treats that pair as near-duplicates: a and e then pair with b instead.
    below = pair_prompts(SOURCE, Params(suite="x", min_similarity=0.3, max_similarity=round(a_e - 0.001, 6)))
    assert frozenset(("a", "e")) not in {frozenset(p) for p in _pairs(below.records)}
    assert all(0.3 <= r["similarity"] < a_e for r in below.records) and below.records


def test_one_to_one_uses_each_prompt_once() -> None:
    params = Params(suite="x", min_similarity=0.3, max_similarity=0.99, pairing="one_to_one")
    records = pair_prompts(SOURCE, params).records
    assert _pairs(records) == [("a", "e")]
    used = [i for pair in _pairs(records) for i in pair]
    assert len(used) == len(set(used))


def test_identical_responses_are_never_paired() -> None:
    same = [pref("a", "Tom buys 3 apples.", "Six."), pref("b", "Tom buys 3 apples today.", "Six.")]
    assert pair_prompts(same, Params(suite="x", min_similarity=0.0, max_similarity=1.0)).records == []


def test_max_items_keeps_the_most_similar() -> None:
    params = Params(suite="x", min_similarity=0.3, max_similarity=0.99, max_items=1)
    assert _pairs(pair_prompts(SOURCE, params).records) == [("a", "e")]


def test_generator_is_deterministic_on_generated_math_problems() -> None:
    params = {"suite": "math-robustness", "min_similarity": 0.3, "max_similarity": 0.95}
    first, second = generate("contrast_pairs", params), generate("contrast_pairs", params)
    assert first == second and len(first) == 41
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    ids = [(r["q1_id"], r["q2_id"]) for r in first]
    assert len({frozenset(p) for p in ids}) == len(ids)  # no mirrored duplicates
    assert all(0.3 <= r["similarity"] <= 0.95 for r in first)
    assert all(isinstance(r["r1"], list) for r in first)  # step-split solutions stay step-split


def test_generator_output_does_not_depend_on_the_process(tmp_path: Path) -> None:
    """Same records in another process with another hash seed (set and dict iteration orders differ there)."""
    params = {"suite": "math-robustness", "min_similarity": 0.3, "max_similarity": 0.95, "pairing": "one_to_one"}
    code = f"import json; from rmbench.generators import generate; print(json.dumps(generate('contrast_pairs', {params!r})))"
    env = os.environ | {"PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert json.loads(other.stdout) == generate("contrast_pairs", params)


def test_generator_params_and_source_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one source"):
        Params()
    with pytest.raises(ValueError, match="exceeds max_similarity"):
        Params(suite="x", min_similarity=0.9, max_similarity=0.5)
    with pytest.raises(SuiteError, match="preference data"):
        pair_prompts([contrast_item("a")], Params(suite="x"))
    with pytest.raises(DataError, match="widen the band"):
        generate("contrast_pairs", {"suite": "math-robustness", "min_similarity": 0.99, "max_similarity": 0.995})


def test_generator_reads_a_pairs_file_and_names_a_missing_field(tmp_path: Path) -> None:
    rows = [
        {"question": p.prompt[0][1], "better": p.chosen[0].text, "worse": p.rejected[0].text} for p in SOURCE
    ]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    fields = {"prompt": "question", "chosen": "better", "rejected": "worse"}
    records = generate(
        "contrast_pairs", {"file": str(data), "fields": fields, "min_similarity": 0.3, "max_similarity": 0.99}
    )
    assert _pairs(records) == [("0", "4"), ("1", "0")]  # ids are line positions: a=0, e=4, b=1
    del rows[2]["better"]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError) as error:
        generate("contrast_pairs", {"file": str(data), "fields": fields})
    assert error.value.field == "better" and error.value.record == "line 3" and error.value.source == str(data)


def test_a_cluster_mapped_by_the_suite_wins(tmp_path: Path) -> None:
    data = tmp_path / "c.json"
    data.write_text(json.dumps([_record(i) | {"topic": "t0" if i < 2 else "t1"} for i in range(3)]))
    suite = parse_suite(CONTRAST_SUITE.format(path=data) + "  cluster: topic\n", "my-contrast.yaml")
    items = load_items(suite).items
    scores = {k: v for item in items for k, v in scores_for(item, 2, 1, 3, 0).items()}
    result = evaluate(items, scores)
    assert result.per_item["cluster"].tolist() == ["cluster:t0", "cluster:t0", "cluster:t1"]
    assert result.extra["clusters"] == 2 and result.extra["cluster_rule"] == "suite fields.cluster"
