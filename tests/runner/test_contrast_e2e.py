"""End to end: `rmbench run` on the contrast suites and `rmbench contrast build` on a user's preference file.

contrast-generated needs no data (CI always runs it, with a tiny random Llama RM and with the MiniLM baseline);
the Contrast Instructions paraphrase and summarisation sets run when ../shared/data has them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from rmbench.cli import main
from rmbench.protocols.contrast import METRICS
from tests._shared import SHARED_DATA, shared_path
from tests.helpers import run_to

GENERATED_ITEMS = 41
TEMPLATES = {"ages", "bakery", "equation", "percent", "shopping", "travel"}


def _overall(results: dict) -> dict[str, dict]:
    return {m["name"]: m for m in results["metrics"] if m["scope"] == "overall"}


def _check_metrics(results: dict, n: int) -> dict[str, dict]:
    overall = _overall(results)
    assert set(overall) == set(METRICS)
    for metric in overall.values():
        assert metric["n"] == n and metric["method"] == "bootstrap-percentile"
        assert 0.0 <= metric["ci_low"] <= metric["value"] <= metric["ci_high"] <= 1.0
    # both-direction consistency can only hold where each one-direction rate holds
    value = {name: metric["value"] for name, metric in overall.items()}
    assert value["response_consistency"] <= min(value["response_q1"], value["response_q2"])
    assert value["instruction_consistency"] <= min(value["instruction_r1"], value["instruction_r2"])
    assert results["metric_options"]["bootstrap_resamples"] >= 1000
    return overall


@pytest.mark.slow  # ~5 s alone, up to ~20 s on a busy 2-core machine
def test_contrast_generated_with_a_tiny_llama_rm(tiny_rm: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    results, _ = run_to(out, "--suite", "contrast-generated", "--model", str(tiny_rm))
    assert results["counts"]["items"] == results["counts"]["items_evaluated"] == GENERATED_ITEMS
    assert results["counts"]["requests"] == 4 * GENERATED_ITEMS
    # items that share a problem share requests: the engine scores each (problem, solution) once
    assert results["counts"]["unique_requests"] < 4 * GENERATED_ITEMS
    _check_metrics(results, GENERATED_ITEMS)
    assert {m["scope"] for m in results["metrics"]} == {"overall"} | {f"subset:{t}" for t in TEMPLATES}
    assert results["data"][0]["kind"] == "generator" and results["data"][0]["generator"] == "contrast_pairs"
    assert results["extra"]["tie_policy"] == "strict"
    items = pd.read_parquet(out / "items.parquet")
    assert len(items) == GENERATED_ITEMS and set(METRICS) <= set(items.columns)


def test_contrast_generated_with_the_minilm_baseline(tmp_path: Path) -> None:
    results, _ = run_to(tmp_path / "run", "--suite", "contrast-generated", "--engine", "minilm")
    overall = _check_metrics(results, GENERATED_ITEMS)
    # A solution repeats its own problem's names and numbers, which a sentence encoder picks up: far above the
    # ~0.25 of random scores (both directions of a coin flip).
    assert overall["response_consistency"]["value"] > 0.6
    assert overall["instruction_consistency"]["value"] > 0.6


def test_length_baseline_is_never_instruction_consistent(tmp_path: Path) -> None:
    """Length ignores the prompt: R(q1, r) == R(q2, r) is a tie, and ties fail. A check of the tie rule end to end."""
    results, _ = run_to(tmp_path / "run", "--suite", "contrast-generated", "--engine", "length")
    overall = _check_metrics(results, GENERATED_ITEMS)
    assert overall["instruction_consistency"]["value"] == 0.0
    assert overall["response_consistency"]["value"] == 0.0  # len(r1) > len(r2) and len(r2) > len(r1) cannot both hold


def test_contrast_build_cli_then_run(tmp_path: Path) -> None:
    questions = [
        "Tom buys 3 apples at 2 dollars each. How much does Tom pay?",
        "Ann buys 5 pears at 4 dollars each. How much does Ann pay?",
        "Write a haiku about the sea at night.",
        "Tom buys 3 apples at 2 dollars each. How much does Tom pay in total?",
    ]
    rows = [{"question": q, "better": f"good {i}", "worse": f"bad {i}"} for i, q in enumerate(questions)]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out, suite = tmp_path / "contrast.jsonl", tmp_path / "mine.yaml"
    fields = ["--field", "prompt=question", "--field", "chosen=better", "--field", "rejected=worse"]
    common = ["contrast", "build", str(pairs), *fields, "--min-similarity", "0.3", "--max-similarity", "0.99"]
    assert main([*common, "--out", str(out), "--suite-out", str(suite)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["q1_id"], r["q2_id"]) for r in records] == [("0", "3"), ("1", "0")]
    first_bytes = out.read_bytes()
    assert main([*common, "--out", str(out)]) == 0
    assert out.read_bytes() == first_bytes  # deterministic
    assert run_to(tmp_path / "run", "--suite", str(suite), "--engine", "random")[0]["counts"]["items"] == 2

    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps({"question": "q", "worse": "w"}) + "\n")
    assert main(["contrast", "build", str(broken), *fields, "--out", str(tmp_path / "x.jsonl")]) == 2
    bad_option = ["contrast", "build", "math-robustness", "--pairing", "sideways", "--out", str(tmp_path / "y.jsonl")]
    assert main(bad_option) == 2


# --- the Contrast Instructions sets in ../shared/data -----------------------------------------------------------


@pytest.mark.shared_data
@pytest.mark.parametrize("engine", ["length", "random"])
def test_contrast_paraphrase_runs(tmp_path: Path, engine: str) -> None:
    shared_path("contrast_instructions/para_contrast.json")
    args = ["--suite", "contrast-paraphrase", "--engine", engine, "--data-dir", str(SHARED_DATA), "--limit", "60"]
    results, _ = run_to(tmp_path / "run", *args)
    assert results["counts"]["items"] == 60 and results["counts"]["requests"] == 240
    assert results["data"][0]["sha256"] == "881103fb9a40633d58f4135f0d0a807a18ec0f2df8d38d291b0483f2fe4a210f"
    overall = _check_metrics(results, 60)
    assert {m["scope"] for m in results["metrics"]} == {"overall", "subset:paraphrase"}
    if engine == "length":
        assert overall["instruction_consistency"]["value"] == overall["response_consistency"]["value"] == 0.0
    else:
        assert 0.0 < overall["response_consistency"]["value"] < 1.0


@pytest.mark.shared_data
def test_contrast_summarization_runs_and_reports_its_self_pairs(tmp_path: Path) -> None:
    shared_path("contrast_instructions/sum_contrast.json")
    args = ["--suite", "contrast-summarization", "--engine", "random", "--data-dir", str(SHARED_DATA)]
    results, _ = run_to(tmp_path / "run", *args)
    assert results["counts"]["items"] == 36 and results["counts"]["items_evaluated"] == 20
    assert results["excluded"] == {"identical_instructions": 16}
    assert results["extra"]["degenerate"] == {"policy": "exclude", "items": 16}
    _check_metrics(results, 20)


@pytest.mark.skipif(not (SHARED_DATA / "hh_rlhf").is_dir(), reason="shared data absent")
def test_suite_out_carries_the_source_suite_options(tmp_path: Path) -> None:
    import yaml

    suite = tmp_path / "hh-contrast.yaml"
    argv = ["contrast", "build", "hh-rlhf-harmless", "--data-dir", str(SHARED_DATA), "--source-limit", "300",
            "--min-similarity", "0.3", "--out", str(tmp_path / "c.jsonl"), "--suite-out", str(suite)]
    assert main(argv) == 0
    assert yaml.safe_load(suite.read_text())["sources"][0]["allow_empty_responses"] is True
