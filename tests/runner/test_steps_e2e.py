"""Step-level suites end to end through ``rmbench run``, offline: the step baselines and the tiny PRM on hf, with the
results.json metrics equal to PRMBench's released scoring code on the step scores the run recorded."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from rmbench.devtools.tiny_models import STEP_TAG
from rmbench.items import Response
from rmbench.requests import ScoreRequest
from tests._shared import SHARED_DATA, shared_path
from tests.helpers import run_to, write_suite
from tests.reference import official_step_scoring as official


def _metric(results: dict, name: str, scope: str = "overall") -> float:
    (value,) = [m["value"] for m in results["metrics"] if m["name"] == name and m["scope"] == scope]
    return float(value)


def _official_from_run(out: Path, limit: int) -> dict:
    """Rebuild the run's items and read its recorded step scores, then score them with mr_eval's code."""
    from rmbench.data import load_items
    from rmbench.suite import load_suite

    items = load_items(load_suite("prmbench"), data_dir=SHARED_DATA, limit=limit).items
    scores = pd.read_parquet(out / "scores.parquet").set_index("request")["step_scores"]
    meta, results = [], []
    for item in items:
        key = ScoreRequest.of(item.prompt, Response(item.response.text, item.response.steps)).key
        meta.append({"idx": item.id, "classification": item.subset, "error_steps": list(item.error_steps)})
        results.append({"idx": item.id, "scores": {"step_level_validity_labels": [s > 0.5 for s in scores[key]]}})
    return official.evaluate_function(results, meta)


def test_math_robustness_steps_with_the_arithmetic_baseline(tmp_path: Path) -> None:
    results, _ = run_to(tmp_path / "run", "--suite", "math-robustness-steps", "--engine", "arith-prm", "--limit", "10")
    # The arithmetic check finds the two slip types (final computation, propagated value) and passes correct ones.
    assert _metric(results, "first_error_acc_error") == pytest.approx(0.5)
    assert _metric(results, "first_error_acc_correct") == pytest.approx(1.0)
    assert results["extra"]["threshold"] == 0.5 and results["extra"]["labels"] == "first error only"


@pytest.mark.shared_data
@pytest.mark.parametrize("engine", ["random-prm", "hf-prm"])
def test_prmbench_runs_offline_and_equals_the_released_scoring(engine: str, tmp_path: Path, request) -> None:
    shared_path("prmbench")
    limit = 60 if engine == "random-prm" else 3
    args = ["--suite", "prmbench", "--engine", engine, "--limit", str(limit), "--data-dir", str(SHARED_DATA)]
    if engine == "hf-prm":
        args += ["--model", str(request.getfixturevalue("tiny_prm")), "--step-tag", STEP_TAG]
    out = tmp_path / "run"
    results, _ = run_to(out, *args)
    reference = _official_from_run(out, limit)
    assert _metric(results, "prm_score") == pytest.approx(official.get_prmscore_from_current_res_dict(reference))
    for category in reference["hallucination_type_results"]["f1"]:
        want = official.get_prmscore_from_current_res_dict(reference, category)
        assert _metric(results, "prm_score", f"subset:{category}") == pytest.approx(want)


def test_processbench_records_from_a_local_copy(tmp_path: Path) -> None:
    """ProcessBench's hub record shape (0-based ``label``, -1 = correct) through its transform and the protocol."""
    records = [
        {
            "id": "a",
            "generator": "g",
            "problem": "2 + 2?",
            "steps": ["2 + 2 = 5", "So 5."],
            "label": 0,
            "final_answer_correct": False,
        },
        {
            "id": "b",
            "generator": "g",
            "problem": "3 + 3?",
            "steps": ["3 + 3 = 6", "So 6."],
            "label": -1,
            "final_answer_correct": True,
        },
        {
            "id": "c",
            "generator": "g",
            "problem": "4 × 2?",
            "steps": ["4 × 2 = 8", "Then 8 + 1 = 9 wrongly", "So 9."],
            "label": 1,
            "final_answer_correct": False,
        },
    ]
    suite = write_suite(
        tmp_path, records, protocol="step_level", name="pb-local", source="subset: gsm8k\ntransform: processbench\n"
    )
    results, _ = run_to(tmp_path / "run", "--suite", str(suite), "--engine", "arith-prm")
    # arith-prm flags "2 + 2 = 5" (label 0: hit) and passes "8 + 1 = 9" (label 1: missed); "b" is passed correctly.
    assert _metric(results, "first_error_acc_error") == pytest.approx(0.5)
    assert _metric(results, "first_error_acc_correct") == pytest.approx(1.0)
    assert _metric(results, "first_error_f1") == pytest.approx(2 * 0.5 * 1.0 / 1.5)
