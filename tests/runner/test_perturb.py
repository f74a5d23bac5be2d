"""Runs under perturbations: the length baseline moves exactly as its definition predicts under every rewrite, the
original is free from the cache, results.json carries the paired records, and the gate holds a run to them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rmbench.data import iter_item_chunks
from rmbench.items import PreferenceItem
from rmbench.metrics.stats import pairwise_outcome
from rmbench.perturbations import PERTURBATIONS, PerturbationSpec, perturb_items
from rmbench.results.io import read_results
from rmbench.runner.perturb import PERTURBATION_SEED
from rmbench.suite import load_suite
from tests._shared import shared_path
from tests.helpers import cli, read_json, run_cli, run_to, write_suite

BODIES = [
    "Step one: 3 + 4 = 7.\n\nThe answer is 7.",
    "We compute $x = 2$.\n\nThe final answer is \\boxed{2}",
    "First, add.\n\n# Answer\n\n42",
    "## Drawers\n\n- **Underwear** drawer: socks.\n* *T-shirts*   and tops.  \n\n> A quote.\n\n\n\nDone.",
    "Plain prose here. It has two sentences.\n\nA second paragraph: with a colon.",
    "Steps:\n1. Mix.\n2. Bake.\n3. Cool.\n\n10) Serve.",
    "It\u2019s \u201cfine\u201d \u2014 really\u2026 5 \u2212 3 = 2.",
    "Code:\n\n```python\ndef f(x):\n    return x  # keep  *this*\n```\n\nAfter   the   code.",
]
RECORDS = [
    {
        "id": f"r{i}",
        "prompt": f"Question {i}?",
        "chosen": BODIES[i % len(BODIES)] + " ok" * (i % 3),
        "rejected": BODIES[(i + 3) % len(BODIES)] + "!" * (i % 5),
    }
    for i in range(16)
]
RESPONSE_SIDES = ["chosen", "rejected"]


def every_spec() -> list[str]:
    """Every text rewrite on both sides, and every response rewrite on each side alone (order rewrites are for
    judges: the length baseline refuses them, ``test_length_baseline_refuses_order_rewrites``)."""
    specs = [name for name in PERTURBATIONS.names() if PERTURBATIONS.get(name).target != "order"]
    for name in PERTURBATIONS.names():
        if PERTURBATIONS.get(name).target == "response":
            specs += [f"{name}:{side}" for side in RESPONSE_SIDES]
    return specs


def length_outcomes(items: list[PreferenceItem]) -> np.ndarray:
    """The length baseline by its definition: score = len(response), pairwise accuracy, ties count half."""
    chosen = np.array([len(i.chosen[0].text) for i in items], dtype=float)
    rejected = np.array([len(i.rejected[0].text) for i in items], dtype=float)
    return pairwise_outcome(chosen, rejected, "expected")


@pytest.fixture(scope="module")
def length_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], list[PreferenceItem]]:
    """One length-baseline run under every rewrite and side: (run directory, records by label, the items)."""
    root = tmp_path_factory.mktemp("perturbed")
    suite = write_suite(root, RECORDS, name="perturb-pairs")
    results, _ = run_to(root / "run", "--suite", str(suite), "--engine", "length", "--perturb", ",".join(every_spec()))
    (items,) = list(iter_item_chunks(load_suite(suite), None, None, chunk_items=100))
    return root / "run", {r["label"]: r for r in results["perturbations"]}, items


@pytest.mark.parametrize("label", every_spec())
def test_length_baseline_moves_exactly_as_its_definition_predicts(
    label: str, length_run: tuple[Path, dict[str, Any], list[PreferenceItem]]
) -> None:
    _, records, items = length_run
    original = length_outcomes(items)
    predicted = length_outcomes(perturb_items(items, PerturbationSpec.parse(label), PERTURBATION_SEED))
    record = records[label]
    assert record["original"] == pytest.approx(original.mean())
    assert record["perturbed"] == pytest.approx(predicted.mean())
    assert record["change"] == pytest.approx(predicted.mean() - original.mean())
    assert record["flips"] == int(np.count_nonzero(predicted != original))
    assert record["flip_rate"] == pytest.approx(record["flips"] / len(items))
    assert record["n"] == len(items) and record["metric"] == "accuracy"
    if record["change"] != 0:
        assert record["change_ci_low"] <= record["change"] <= record["change_ci_high"]
    # What the definition says without computing: length reads no prompt, and a sentence appended to both
    # responses lengthens both alike, to the rejected side only can only hurt.
    if label in ("prompt_paraphrase", "chat_format", "neutral_sentence"):
        assert record["flips"] == 0 and record["change"] == 0
    if label == "neutral_sentence:rejected":
        assert record["change"] <= 0


def test_perturbed_run_reports_every_rewrite(length_run: tuple[Path, dict[str, Any], list[PreferenceItem]]) -> None:
    run, records, _ = length_run
    assert list(records) == every_spec()  # one record per rewrite, in the order asked
    assert any(record["flips"] for record in records.values())  # the fixture does make some rewrites matter
    report = (run / "report.md").read_text()
    assert "## Under meaning-preserving rewrites" in report and "| markdown_add:rejected | accuracy |" in report
    assert (run / "perturbations.png").stat().st_size > 0
    assert read_results(run).perturbations is not None  # the typed contract reads it back


def _cache_rows(cache: Path) -> int:
    with sqlite3.connect(cache) as connection:
        return int(connection.execute("SELECT COUNT(*) FROM scores").fetchone()[0])


def test_original_is_free_from_the_cache_and_a_rerun_is_identical(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, RECORDS, name="perturb-pairs")
    args = ("--suite", str(suite), "--engine", "length")
    plain, _ = run_to(tmp_path / "plain", *args)
    assert "perturbations" not in plain  # a run without perturbations writes what it always wrote
    rows = _cache_rows(tmp_path / "cache.sqlite")
    first, run = run_to(tmp_path / "perturbed", *args, "--perturb", "markdown_add:rejected")
    assert run["cache_hits"] == first["counts"]["unique_requests"]  # the original pass scored nothing
    # Only the rewritten rejected responses are new.
    assert _cache_rows(tmp_path / "cache.sqlite") == rows + len({r["rejected"] for r in RECORDS})
    assert run["perturbations"]["markdown_add:rejected"] == {"cache_hits": len(RECORDS), "scored": len(RECORDS)}
    assert first["metrics"] == plain["metrics"] and first["suite"] == plain["suite"]
    again, _ = run_to(tmp_path / "again", *args, "--perturb", "markdown_add:rejected")
    assert again["perturbations"] == first["perturbations"]


def test_suite_perturbations_apply_by_default_and_the_flag_replaces_them(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, RECORDS, name="perturb-pairs", extra="perturbations: [whitespace, answer_boxed]\n")
    declared = load_suite(suite)
    without = declared.model_copy(update={"perturbations": []})
    assert declared.content_hash == without.content_hash  # they change none of the suite's numbers
    default, _ = run_to(tmp_path / "a", "--suite", str(suite), "--engine", "length")
    assert [r["label"] for r in default["perturbations"]] == ["whitespace", "answer_boxed"]
    replaced, _ = run_to(tmp_path / "b", "--suite", str(suite), "--engine", "length", "--perturb", "line_breaks")
    assert [r["label"] for r in replaced["perturbations"]] == ["line_breaks"]
    none, _ = run_to(tmp_path / "c", "--suite", str(suite), "--engine", "length", "--perturb", "none")
    assert "perturbations" not in none


def test_bad_perturbations_fail_before_scoring(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = write_suite(tmp_path, RECORDS, name="perturb-pairs")
    assert run_cli("--suite", str(suite), "--engine", "length", "--perturb", "markdown_ad", "--out", str(tmp_path)) == 2
    assert "--perturb" in capsys.readouterr().err
    bad = write_suite(tmp_path / "bad", RECORDS, name="perturb-pairs", extra="perturbations: [whitespace:left]\n")
    assert run_cli("--suite", str(bad), "--engine", "length", "--out", str(tmp_path / "x")) == 2
    assert "unknown side 'left'" in capsys.readouterr().err
    args = ["--suite", "contrast-generated", "--engine", "length", "--limit", "4", "--perturb", "whitespace"]
    assert run_cli(*args, "--cache", str(tmp_path / "c.sqlite"), "--out", str(tmp_path / "y")) == 2
    assert "cannot be run under perturbations" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()


def test_gate_holds_a_run_to_its_perturbations(tmp_path: Path) -> None:
    # Chosen one character longer than rejected: the length baseline is right on every item until the rejected
    # side gets markdown, which lengthens it by more.
    body = "First paragraph here.\n\nSecond paragraph here."
    records = [{"id": i, "prompt": f"q{i}", "chosen": body + "!", "rejected": body} for i in range(12)]
    suite = write_suite(tmp_path, records, name="perturb-gate")
    args = ("--suite", str(suite), "--engine", "length")
    run_to(tmp_path / "base", *args)
    results, _ = run_to(tmp_path / "cand", *args, "--perturb", "markdown_add:rejected,whitespace")
    by_label = {r["label"]: r for r in results["perturbations"]}
    assert by_label["markdown_add:rejected"]["perturbed"] == 0.0 and by_label["markdown_add:rejected"]["flips"] == 12
    # 12 items is below the gate's default minimum (30, "insufficient data"): this test is about perturbations.
    gate = ["gate", "--candidate", str(tmp_path / "cand"), "--baseline", str(tmp_path / "base"), "--min-n", "12"]
    summary = tmp_path / "summary.md"
    assert cli([*gate, "--max-perturbation-drop", "0.1", "--summary-md", str(summary)]) == 1
    text = summary.read_text()
    assert "accuracy (perturbation:markdown_add:rejected)" in text and "**FAIL**" in text
    assert cli(gate) == 0  # without the option the perturbations are not gated
    no_perturbations = ["gate", "--candidate", str(tmp_path / "base"), "--baseline", str(tmp_path / "base")]
    assert cli([*no_perturbations, "--max-perturbation-drop", "0.1"]) == 2  # never a vacuous pass


def grid_scores(items: list[PreferenceItem]) -> np.ndarray:
    """The length baseline's RM-Bench grid score per item, by the definitions (METRICS.md §5), under the suite's
    tie policy (RM-Bench's own: strict, METRICS.md §0)."""
    from rmbench.protocols.grid import grid_summary, style_grid

    chosen = np.array([[len(r.text) for r in i.chosen] for i in items], dtype=float)
    rejected = np.array([[len(r.text) for r in i.rejected] for i in items], dtype=float)
    return grid_summary(style_grid(chosen, rejected, load_suite("rm-bench-chat").metrics.tie_policy))["score"]


def test_rm_bench_grid_under_rewrites(tmp_path: Path) -> None:
    data = shared_path("rm_bench").parent
    labels = ["markdown_strip", "markdown_add:rejected"]
    results, _ = run_to(
        tmp_path / "run", "--suite", "rm-bench-chat", "--engine", "length", "--data-dir", str(data),
        "--limit", "12", "--perturb", ",".join(labels),
    )
    (items,) = list(iter_item_chunks(load_suite("rm-bench-chat"), data, 12, chunk_items=100))
    original = grid_scores(items)
    overall = next(m["value"] for m in results["metrics"] if m["name"] == "score" and m["scope"] == "overall")
    for label, record in zip(labels, results["perturbations"], strict=True):
        predicted = grid_scores(perturb_items(items, PerturbationSpec.parse(label), PERTURBATION_SEED))
        assert record["metric"] == "score" and record["n"] == 12
        assert record["original"] == pytest.approx(overall) == pytest.approx(original.mean())
        assert record["perturbed"] == pytest.approx(predicted.mean())
        assert record["flips"] == int(np.count_nonzero(~np.isclose(predicted, original)))


def test_tiny_reward_model_under_perturbations(tmp_path: Path, tiny_rm: Path) -> None:
    suite = write_suite(tmp_path, RECORDS[:6], name="perturb-pairs")
    results, _ = run_to(
        tmp_path / "run", "--suite", str(suite), "--engine", "hf", "--model", str(tiny_rm),
        "--perturb", "prompt_paraphrase,neutral_sentence:rejected",
    )
    assert [r["label"] for r in results["perturbations"]] == ["prompt_paraphrase", "neutral_sentence:rejected"]
    for record in results["perturbations"]:
        assert record["n"] == 6 and 0 <= record["perturbed"] <= 1 and record["flips"] == round(6 * record["flip_rate"])
    assert json.loads(json.dumps(results)) == read_json(tmp_path / "run" / "results.json")




def test_length_baseline_refuses_order_rewrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Length scores each response alone: no order to reverse, so response_order is refused before scoring, not
    reported as a change of 0 (which would read as order-robustness never tested)."""
    suite = write_suite(tmp_path, RECORDS, name="perturb-pairs")
    orders = [name for name in PERTURBATIONS.names() if PERTURBATIONS.get(name).target == "order"]
    assert orders == ["response_order"]
    args = ["--suite", str(suite), "--engine", "length", "--perturb", "whitespace,response_order"]
    assert run_cli(*args, "--cache", str(tmp_path / "c.sqlite"), "--out", str(tmp_path / "run")) == 2
    err = " ".join(capsys.readouterr().err.split())
    for needle in ("'response_order'", "protocol 'pairwise'", "engine 'length'", "scores each response alone"):
        assert needle in err, err
    assert not (tmp_path / "run").exists() and not (tmp_path / "c.sqlite").exists()
