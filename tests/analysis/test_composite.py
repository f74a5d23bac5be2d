"""Composite headline scores (rmbench.analysis.composite): RewardBench 2's six-subset score and RMB's overall,
checked against the mean of part scores computed here from the data and the length baseline's scores."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rmbench.cli import main
from rmbench.results.io import read_results
from rmbench.suite import SUITES_DIR
from tests._shared import shared_path

RB2_SUBSETS = ("Factuality", "Precise IF", "Math", "Safety", "Focus")


def _rb2_rows() -> list[dict[str, Any]]:
    """Rows shaped like allenai/reward-bench-2's test split; short texts so that lengths tie, some rows with two
    correct answers (scored as upstream: only the first is chosen)."""
    rng = np.random.default_rng(17)
    rows = []
    for subset in RB2_SUBSETS:
        for n in range(8):
            n_correct = 2 if n % 4 == 0 else 1
            texts = ["x" * int(k) for k in rng.integers(1, 5, size=n_correct + 3)]
            rows.append({
                "id": f"{subset}-{n}", "prompt": f"{subset} prompt {n}", "subset": subset,
                "chosen": texts[:n_correct], "rejected": texts[n_correct:],
            })
    return rows


def _rb2_accuracy(row: dict[str, Any]) -> float:
    """Upstream's rule: credit 1/#max when the first correct completion has the top length."""
    lengths = [len(t) for t in [*row["chosen"], *row["rejected"]]]
    top = max(lengths)
    return 1 / lengths.count(top) if lengths[0] == top else 0.0


def _ties_score(records: list[dict[str, Any]]) -> float:
    """METRICS.md §4 on lengths, written from the spec."""
    by_id = {r["id"]: ([len(t) for t in r["chosen"]], [len(t) for t in r["rejected"]]) for r in records}
    numbers = sorted({i.split(":")[1] for i in by_id if f"tied:{i.split(':')[1]}" in by_id and f"ref:{i.split(':')[1]}" in by_id})
    tied_acc, ref_acc, pref, pref_hard, margin = [], [], [], [], []
    for n in numbers:
        tc, ti = by_id[f"tied:{n}"]
        rc, ri = by_id[f"ref:{n}"]
        tied_acc.append(min(tc) > max(ti))
        ref_acc.append(min(rc) > max(ri))
        gap_tied, gap_ref, spread = min(tc) - max(ti), min(rc) - max(ri), max(tc) - min(tc)
        low = min(gap_ref, gap_tied)
        pref.append(gap_tied > spread)
        pref_hard.append(low > spread)
        margin.append(math.tanh(low / spread - 1) if spread else float(np.sign(low)))
    mean = lambda v: sum(v) / len(v)  # noqa: E731
    return 0.3 * mean(tied_acc) + 0.3 * mean(ref_acc) + 0.2 * mean(pref) + 0.2 * mean(pref_hard) + 0.01 * mean(margin)


def _run(suite: str | Path, data_dir: Path, out: Path, cache: Path) -> None:
    code = main(["run", "--no-progress", "--suite", str(suite), "--engine", "length", "--data-dir", str(data_dir),
                 "--out", str(out), "--cache", str(cache)])
    assert code == 0


def test_rewardbench2_score_is_the_mean_of_six_subsets(tmp_path: Path) -> None:
    ties_file = shared_path("rewardbench2_ties_sample/ties_sample_tied41-50.jsonl")
    rows = _rb2_rows()
    (tmp_path / "rewardbench2").mkdir()
    pd.DataFrame(rows).to_parquet(tmp_path / "rewardbench2" / "test-00000-of-00001.parquet")
    # The shipped suite less its sha256 pin (that pins the real hub file, not this one).
    text = (SUITES_DIR / "rewardbench2.yaml").read_text(encoding="utf-8")
    suite = tmp_path / "rewardbench2.yaml"
    suite.write_text("\n".join(line for line in text.splitlines() if "sha256:" not in line) + "\n", encoding="utf-8")
    cache = tmp_path / "cache.sqlite"
    _run(suite, tmp_path, tmp_path / "rb2", cache)
    _run("rewardbench2-ties", ties_file.parents[1], tmp_path / "ties", cache)

    out = tmp_path / "composite"
    assert main(["results", "combine", "rewardbench2", str(tmp_path / "rb2"), str(tmp_path / "ties"), "-o", str(out)]) == 0
    combined = read_results(out)

    subset_scores = {s: float(np.mean([_rb2_accuracy(r) for r in rows if r["subset"] == s])) for s in RB2_SUBSETS}
    ties = [json.loads(line) for line in ties_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    subset_scores["Ties"] = _ties_score(ties)
    for name, expected in subset_scores.items():
        part = combined.metric("score", f"section:{name}")
        assert part is not None and part.value == pytest.approx(expected, abs=1e-12), name
    headline = combined.metric("score")
    assert headline is not None and headline.value == pytest.approx(np.mean(list(subset_scores.values())), abs=1e-12)
    assert combined.suite.protocol == "composite" and (out / "report.md").is_file()

    # Rows with two correct answers are counted, per subset, in the run and carried into the composite.
    counted = read_results(tmp_path / "rb2").extra["extra_correct"]
    expected_counts = {s: sum(len(r["chosen"]) > 1 for r in rows if r["subset"] == s) for s in RB2_SUBSETS}
    assert counted == {"items": sum(expected_counts.values()), "by_subset": dict(sorted(expected_counts.items()))}
    assert combined.extra["inputs"][0]["extra_correct"] == counted


def test_composite_refuses_runs_it_cannot_combine(tmp_path: Path) -> None:
    shared_path("rewardbench2_ties_sample/ties_sample_tied41-50.jsonl")
    cache = tmp_path / "cache.sqlite"
    from tests._shared import SHARED_DATA

    _run("rewardbench2-ties", SHARED_DATA, tmp_path / "ties", cache)
    # the other part is missing
    assert main(["results", "combine", "rewardbench2", str(tmp_path / "ties"), "-o", str(tmp_path / "c")]) == 2
    # a suite that is not a part of the composite
    assert main(["results", "combine", "rmb", str(tmp_path / "ties"), "-o", str(tmp_path / "c")]) == 2
    assert not (tmp_path / "c" / "results.json").exists()

    # another model, another --limit or another tie policy than the first run: refused, naming the field
    from rmbench.analysis.composite import combine
    from rmbench.results.io import ResultsFileError

    ties = read_results(tmp_path / "ties")
    as_rb2 = ties.model_copy(update={"suite": ties.suite.model_copy(update={"name": "rewardbench2"})})
    changes = {
        "fingerprint": {"model": ties.model.model_copy(update={"fingerprint": "0" * 64})},
        "limit": {"limit": 5},
        "tie_policy": {"metric_options": ties.metric_options.model_copy(update={"tie_policy": "strict"})},
    }
    for field, update in changes.items():
        with pytest.raises(ResultsFileError, match=field):
            combine("rewardbench2", [(tmp_path / "ties", ties), (tmp_path / "other", as_rb2.model_copy(update=update))])


RMB_FILES = (
    "Harmlessness/S1.json.gz",
    "Harmlessness/S6.json.gz",
    "Helpfulness/Translation/Literary_and_Cultural_Translation.json.gz",
    "Helpfulness/Translation/GeneralExcerpt_Language_Translation.json.gz",
)


def _rmb_goal_accuracy(root: Path, kind: str, goal: str, *, by_scenario: bool) -> float:
    """Strict accuracy by length (RMB's rule) over a goal's files: pooled over records, or the mean of the files."""
    import gzip

    per_file = []
    for name in RMB_FILES:
        if name.startswith(goal):
            records = json.loads(gzip.decompress((root / kind / name).read_bytes()))
            if kind == "Pairwise_set":
                per_file.append([len(r["chosen"]["answer"]) > len(r["reject"]["answer"]) for r in records])
            else:
                per_file.append([
                    len(r["bon_best"]["answer"]) > max(len(loser["answer"]) for loser in r["loser_list"]) for r in records
                ])
    if by_scenario:
        return float(np.mean([np.mean(outcomes) for outcomes in per_file]))
    return float(np.mean([x for outcomes in per_file for x in outcomes]))


@pytest.mark.parametrize("by_scenario", [False, True], ids=["pooled", "by-scenario"])
def test_rmb_overall_is_the_mean_of_four_numbers(tmp_path: Path, by_scenario: bool) -> None:
    root = shared_path("rmb")
    data = tmp_path / "data"
    for kind in ("Pairwise_set", "BoN_set"):  # two scenario files per goal keep the runs small
        for name in RMB_FILES:
            (data / "rmb" / kind / name).parent.mkdir(parents=True, exist_ok=True)
            (data / "rmb" / kind / name).symlink_to(root / kind / name)
    suffix = "-by-scenario" if by_scenario else ""
    cache = tmp_path / "cache.sqlite"
    _run(f"rmb-pairwise{suffix}", data, tmp_path / "pairwise", cache)
    _run(f"rmb-bon{suffix}", data, tmp_path / "bon", cache)
    out = tmp_path / "composite"
    assert main(["results", "combine", "rmb", str(tmp_path / "bon"), str(tmp_path / "pairwise"), "-o", str(out)]) == 0
    combined = read_results(out)

    expected = {
        f"{label} {goal}": _rmb_goal_accuracy(root, kind, goal, by_scenario=by_scenario)
        for label, kind in (("Pairwise", "Pairwise_set"), ("BoN", "BoN_set"))
        for goal in ("Helpfulness", "Harmlessness")
    }
    for name, value in expected.items():
        part = combined.metric("score", f"section:{name}")
        assert part is not None and part.value == pytest.approx(value, abs=1e-12), name
    headline = combined.metric("score")
    assert headline is not None and headline.value == pytest.approx(np.mean(list(expected.values())), abs=1e-12)
    assert [i["tie_policy"] for i in combined.extra["inputs"]] == ["strict", "strict"]


PRIOR_SETS = ("anthropic_helpful", "anthropic_hhh", "shp", "summarize")


def _pairs(rng: np.random.Generator, n: int, **columns: Any) -> list[dict[str, Any]]:
    """Pairs with short random texts (length ties happen), prompts as message lists like allenai/pref-test-sets."""
    rows = []
    for k in range(n):
        chosen, rejected = ("y" * int(m) for m in rng.integers(1, 5, size=2))
        turns = [{"role": "user", "content": f"q{k}"}] if k % 3 else [
            {"role": "user", "content": f"q{k}"}, {"role": "assistant", "content": "a"}, {"role": "user", "content": "more"}
        ]
        rows.append({"prompt": turns, "chosen": chosen, "rejected": rejected, **columns})
    return rows


def test_rewardbench_v1_overall_weighs_prior_sets_at_half(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    prior = {name: _pairs(rng, 6 + 3 * i) for i, name in enumerate(PRIOR_SETS)}
    prior["anthropic_hhh"] = [{**row, "subset": "honest"} for row in prior["anthropic_hhh"]]  # as the hub split has
    (tmp_path / "rewardbench_prior").mkdir()
    for name, rows in prior.items():
        pd.DataFrame(rows).to_parquet(tmp_path / "rewardbench_prior" / f"{name}-00000-of-00001.parquet")
    core = [
        {**row, "prompt": row["prompt"][-1]["content"], "id": f"{subset}-{k}", "subset": subset}
        for subset in ("alpacaeval-easy", "llmbar-natural", "donotanswer", "hep-python")
        for k, row in enumerate(_pairs(rng, 5))
    ]
    (tmp_path / "rewardbench").mkdir()
    pd.DataFrame(core).to_parquet(tmp_path / "rewardbench" / "filtered-00000-of-00001.parquet")
    text = (SUITES_DIR / "rewardbench.yaml").read_text(encoding="utf-8")
    suite = tmp_path / "rewardbench.yaml"
    suite.write_text("\n".join(line for line in text.splitlines() if "sha256:" not in line) + "\n", encoding="utf-8")
    cache = tmp_path / "cache.sqlite"
    _run(suite, tmp_path, tmp_path / "core", cache)
    _run("rewardbench-prior-sets", tmp_path, tmp_path / "prior", cache)
    out = tmp_path / "composite"
    assert main(["results", "combine", "rewardbench", str(tmp_path / "core"), str(tmp_path / "prior"), "-o", str(out)]) == 0

    # Prior Sets: the unweighted mean of the four subsets' strict accuracies, whatever their sizes
    accuracy = {name: float(np.mean([len(r["chosen"]) > len(r["rejected"]) for r in rows])) for name, rows in prior.items()}
    prior_sets = float(np.mean(list(accuracy.values())))
    prior_run = read_results(tmp_path / "prior")
    for name, value in accuracy.items():
        record = prior_run.metric("accuracy", f"subset:{name}")
        assert record is not None and record.value == pytest.approx(value, abs=1e-12), name
    combined = read_results(out)
    core_run = read_results(tmp_path / "core")
    sections = [core_run.metric("accuracy", f"section:{s}") for s in ("Chat", "Chat Hard", "Safety", "Reasoning")]
    assert all(s is not None and s.value is not None for s in sections)
    expected = (2 * sum(s.value for s in sections if s and s.value is not None) + prior_sets) / 9
    headline = combined.metric("score")
    assert headline is not None and headline.value == pytest.approx(expected, abs=1e-12)
    part = combined.metric("score", "section:Prior Sets")
    assert part is not None and part.value == pytest.approx(prior_sets, abs=1e-12)
    assert combined.extra["weights"] == {"Chat": 2.0, "Chat Hard": 2.0, "Safety": 2.0, "Reasoning": 2.0, "Prior Sets": 1.0}


def test_prior_sets_offline_without_a_local_copy_fails_naming_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if os.environ.get("HF_HUB_OFFLINE") != "1":
        pytest.skip("needs HF_HUB_OFFLINE=1 (as make test sets): online, the hub split would be downloaded")
    code = main(["run", "--no-progress", "--suite", "rewardbench-prior-sets", "--engine", "length",
                 "--data-dir", str(tmp_path), "--out", str(tmp_path / "run"), "--cache", str(tmp_path / "c.sqlite")])
    assert code == 2
    assert "rewardbench_prior/anthropic_helpful-00000-of-00001.parquet" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
