"""Judges under the response_order perturbation, offline with scripted judges (tests/doubles.py): a judge with a
known position bias moves exactly as that bias predicts, a position-free one does not move, the both-orders
accuracy cannot move, the order pass judges nothing again, and protocols that score each response alone refuse it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rmbench.cache import ScoreCache
from rmbench.errors import SuiteError
from rmbench.items import PreferenceItem, Response, user_turn
from rmbench.perturbations import PerturbationSpec, parse_specs, perturb_items
from rmbench.protocols import PROTOCOLS, get_protocol
from rmbench.protocols.base import MetricOptions, capabilities
from rmbench.protocols.pairwise_judge import PairwiseJudgeProtocol, chosen_shown_first
from rmbench.results.io import read_results
from rmbench.runner.perturb import check_perturbable
from rmbench.scoring import score_requests
from rmbench.suite import load_suite
from tests.doubles import JUDGE_ENGINES, SCRIPTED_JUDGE_TEMPLATE, ScriptedJudge
from tests.helpers import run_cli, run_to, write_suite

N = 16
RECORDS = [{"id": f"j{i}", "prompt": f"q{i}", "chosen": f"good answer {i}", "rejected": f"bad answer {i}"} for i in range(N)]

#: What each scripted judge gets right, by item index and whether the chosen response is shown first — written
#: from the judges' descriptions, not from their code: ``first`` is right exactly when the chosen response is shown
#: first, ``second`` when it is shown second, ``fair`` always, ``half`` always on even items and like ``first`` on
#: odd ones.
CORRECT: dict[str, Callable[[int, bool], bool]] = {
    "first": lambda i, chosen_first: chosen_first,
    "second": lambda i, chosen_first: not chosen_first,
    "fair": lambda i, chosen_first: True,
    "half": lambda i, chosen_first: i % 2 == 0 or chosen_first,
}
PERTURB = "response_order,markdown_add:rejected"


@pytest.fixture(scope="module")
def judge_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run per scripted judge under response_order and markdown_add:rejected: judge -> (results, run.json)."""
    import rmbench.engines

    root = tmp_path_factory.mktemp("judged")
    template = root / "scripted.yaml"
    template.write_text(SCRIPTED_JUDGE_TEMPLATE)
    suite = write_suite(root, RECORDS, name="judged", protocol="pairwise_judge")
    runs = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rmbench.engines, "ENGINES", rmbench.engines.ENGINES.extended(JUDGE_ENGINES))
        for judge in CORRECT:
            runs[judge] = run_to(
                root / judge, "--suite", str(suite), "--engine", "scripted-judge", "--model", judge,
                "--judge-template", str(template), "--perturb", PERTURB,
            )
    return {"runs": runs, "root": root, "seed": load_suite(suite).metrics.seed}


def _overall(results: dict[str, Any], name: str) -> float:
    return next(m["value"] for m in results["metrics"] if m["name"] == name and m["scope"] == "overall")


@pytest.mark.parametrize("judge", sorted(CORRECT))
def test_judge_moves_under_response_order_exactly_as_its_position_bias_predicts(
    judge: str, judge_runs: dict[str, Any]
) -> None:
    results, run = judge_runs["runs"][judge]
    records = {r["label"]: r for r in results["perturbations"]}
    record = records["response_order"]
    drawn = [chosen_shown_first(f"j{i}", judge_runs["seed"]) for i in range(N)]
    original = np.array([CORRECT[judge](i, first) for i, first in enumerate(drawn)], dtype=float)
    reversed_ = np.array([CORRECT[judge](i, not first) for i, first in enumerate(drawn)], dtype=float)
    assert record["metric"] == "single_order_accuracy" and record["target"] == "order" and record["n"] == N
    assert record["original"] == pytest.approx(original.mean()) == _overall(results, "single_order_accuracy")
    assert record["perturbed"] == pytest.approx(reversed_.mean())
    assert record["change"] == pytest.approx(reversed_.mean() - original.mean())
    assert record["flips"] == int(np.count_nonzero(original != reversed_))
    # Flips are the pairs whose verdict depends on the order: 1 - position consistency (no scripted judge ties).
    assert record["flip_rate"] == pytest.approx(1 - _overall(results, "position_consistency"))
    assert record["flips"] == {"first": N, "second": N, "fair": 0, "half": N // 2}[judge]
    if judge == "fair":
        assert record["change"] == 0 and record["original"] == record["perturbed"] == 1
    # Both orders were judged for the original: the reversed presentation judges nothing again.
    assert run["perturbations"]["response_order"] == {"cache_hits": 2 * N, "scored": 0}
    # A text rewrite pairs on the headline (both-orders accuracy); markdown on the rejected side changes no scripted
    # verdict, and its pairs (rejected text new, in both orders) are judged anew.
    markdown = records["markdown_add:rejected"]
    assert markdown["metric"] == "accuracy" and markdown["original"] == _overall(results, "accuracy")
    assert markdown["flips"] == 0 and markdown["change"] == 0
    assert run["perturbations"]["markdown_add:rejected"] == {"cache_hits": 0, "scored": 2 * N}


def test_judge_runs_report_and_read_back(judge_runs: dict[str, Any]) -> None:
    run = judge_runs["root"] / "half"
    report = (run / "report.md").read_text()
    assert "| response_order | single_order_accuracy |" in report and "| markdown_add:rejected | accuracy |" in report
    assert (run / "perturbations.png").stat().st_size > 0  # one group per paired metric
    (order, _) = read_results(run).perturbations or []
    assert order.target == "order" and order.metric == "single_order_accuracy"


def _scores(items: list[PreferenceItem], judge: str, tmp_path: Path) -> dict[str, Any]:
    template = tmp_path / "scripted.yaml"
    template.write_text(SCRIPTED_JUDGE_TEMPLATE)
    from rmbench.modelspec import ModelSpec

    engine = ScriptedJudge(ModelSpec(model=judge, engine="judge", judge_template=str(template)))
    with ScoreCache(tmp_path / "cache.sqlite") as cache:
        scores, _ = score_requests(PairwiseJudgeProtocol().requests(items), engine, cache, show_progress=False)
    return scores


@pytest.mark.parametrize("judge", ["first", "half"])
def test_both_orders_metrics_are_invariant_under_response_order(judge: str, tmp_path: Path) -> None:
    """Accuracy, position consistency and first-position rate read both orders, so reversing the presentation
    cannot move them, item by item; the single-order verdict becomes the other order's, for every seed."""
    items = [PreferenceItem(f"j{i}", user_turn(f"q{i}"), (Response(f"good {i}"),), (Response(f"bad {i}"),))
             for i in range(N)]
    reversed_items = perturb_items(items, PerturbationSpec("response_order"))
    assert PairwiseJudgeProtocol().requests(reversed_items) == PairwiseJudgeProtocol().requests(items)
    scores = _scores(items, judge, tmp_path)
    for seed in (0, 1, 7):
        options = MetricOptions(bootstrap_resamples=1000, seed=seed)
        before = PairwiseJudgeProtocol().evaluate(items, scores, options).per_item
        after = PairwiseJudgeProtocol().evaluate(reversed_items, scores, options).per_item
        for column in ("item_id", "accuracy", "position_consistency", "first_position_rate"):
            assert after[column].tolist() == before[column].tolist()
        expected = [float(CORRECT[judge](i, not chosen_shown_first(f"j{i}", seed))) for i in range(N)]
        assert after["single_order_accuracy"].tolist() == expected


def test_protocols_that_score_each_response_alone_refuse_response_order() -> None:
    """Every protocol with a headline but no order-sensitive outcome (classifier RMs, PRMs and rating judges all
    score through these) refuses it, naming the perturbation, protocol, engine and why; pairwise_judge pairs on
    single_order_accuracy."""
    specs = parse_specs(["response_order"])
    refusing = []
    for name in PROTOCOLS.names():
        protocol = get_protocol(name)
        needs = capabilities(protocol)
        if protocol.headline is None or needs.multi_model:
            continue
        if protocol.order_outcome is not None:
            assert check_perturbable(protocol, needs, specs, "judge") == {"response_order": protocol.order_outcome}
            continue
        refusing.append(name)
        with pytest.raises(SuiteError) as refused:
            check_perturbable(protocol, needs, specs, "hf")
        message = str(refused.value)
        for needle in ("'response_order'", f"protocol '{name}'", "engine 'hf'", "scores each response alone"):
            assert needle in message
        assert check_perturbable(protocol, needs, parse_specs(["whitespace"])) == {"whitespace": protocol.headline}
    assert {"pairwise", "best_of_n", "rmbench_grid"} <= set(refusing)
    assert get_protocol("pairwise_judge").order_outcome == "single_order_accuracy"


def test_a_rating_judge_refuses_response_order(tmp_path: Path, monkeypatch, capsys) -> None:
    """A judge engine on the pairwise protocol rates each response alone: no order to reverse, refused before
    anything is judged."""
    import rmbench.engines

    monkeypatch.setattr(rmbench.engines, "ENGINES", rmbench.engines.ENGINES.extended(JUDGE_ENGINES))
    suite = write_suite(tmp_path, RECORDS, name="rated")
    args = ["--suite", str(suite), "--engine", "scripted-judge", "--model", "fair", "--perturb", "response_order"]
    assert run_cli(*args, "--cache", str(tmp_path / "c.sqlite"), "--out", str(tmp_path / "run")) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "'response_order'" in err and "protocol 'pairwise' (engine 'scripted-judge')" in err, err
    assert not (tmp_path / "run").exists()


def test_response_order_flips_are_inconsistent_pairs_and_ties_follow_the_tie_policy() -> None:
    """The documented relation: under the expected tie policy a flip is exactly a pair judged differently in the
    two orders (1 - position_consistency); under strict a tie against a loss is no flip."""
    from rmbench.protocols.pairwise_judge import ordered_requests
    from rmbench.requests import Score

    # (verdict with chosen shown first, verdict with rejected shown first) as shown: +1 = first wins.
    verdicts = {"win-tie": (1.0, 0.0), "tie-loss": (0.0, 1.0), "agreed": (1.0, -1.0)}
    items = [PreferenceItem(k, user_turn(k), (Response(f"good {k}"),), (Response(f"bad {k}"),)) for k in verdicts]
    scores = {
        request.key: Score(value=value)
        for item in items
        for request, value in zip(ordered_requests(item), verdicts[item.id], strict=True)
    }
    reversed_items = perturb_items(items, PerturbationSpec("response_order"))
    for policy, flips in (("expected", 2), ("strict", 1)):
        options = MetricOptions(bootstrap_resamples=1000, tie_policy=policy)
        before = PairwiseJudgeProtocol().evaluate(items, scores, options).per_item
        after = PairwiseJudgeProtocol().evaluate(reversed_items, scores, options).per_item
        assert int((before["single_order_accuracy"] != after["single_order_accuracy"]).sum()) == flips
        assert before["position_consistency"].tolist() == [0.0, 0.0, 1.0]
