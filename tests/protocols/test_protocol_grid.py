"""StyleGridProtocol (METRICS.md §5): the 3×3 grid, hard/normal/easy, domains and the overall mean."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rmbench.errors import DataError
from rmbench.items import PreferenceItem, Response, user_turn
from rmbench.protocols import get_protocol
from rmbench.protocols.base import MetricOptions, Section
from rmbench.protocols.grid import StyleGridProtocol
from rmbench.requests import Score, ScoreRequest
from tests._shared import shared_path


def scored_items(rows: list[tuple]) -> tuple[list[PreferenceItem], dict[str, Score]]:
    """rows: (id, [3 chosen scores], [3 rejected scores], subset)."""
    items, scores = [], {}
    for item_id, chosen, rejected, subset in rows:
        item = PreferenceItem(
            id=item_id,
            prompt=user_turn(f"prompt {item_id}"),
            chosen=tuple(Response(f"{item_id} chosen {i}") for i in range(3)),
            rejected=tuple(Response(f"{item_id} rejected {i}") for i in range(3)),
            subset=subset,
        )
        items.append(item)
        for response, value in zip((*item.chosen, *item.rejected), (*chosen, *rejected)):
            scores[ScoreRequest.of(item.prompt, response).key] = Score(value=float(value))
    return items, scores


def test_single_item_grid_by_hand() -> None:
    # chosen [3, 2, 1] vs rejected [2, 2, 0]:  M = [[1, 1, 1], [.5, .5, 1], [0, 0, 1]]
    items, scores = scored_items([("k", [3, 2, 1], [2, 2, 0], "chat")])
    result = StyleGridProtocol().evaluate(items, scores, MetricOptions())
    assert result.extra["grid"] == [[1.0, 1.0, 1.0], [0.5, 0.5, 1.0], [0.0, 0.0, 1.0]]
    row = result.per_item.iloc[0]
    assert row["hard"] == 1.0
    assert row["normal"] == pytest.approx(2.5 / 3)
    assert row["easy"] == pytest.approx(0.5 / 3)
    assert row["score"] == pytest.approx((1.0 + 2.5 / 3 + 0.5 / 3) / 3)
    assert result.metric("hard").value == 1.0
    strict = StyleGridProtocol().evaluate(items, scores, MetricOptions(tie_policy="strict"))
    assert strict.extra["grid"] == [[1.0, 1.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
    assert strict.metric("easy").value == 0.0 and strict.metric("normal").value == pytest.approx(2 / 3)


ROWS = [
    ("c1", [3, 3, 3], [1, 1, 1], "chat"),  # all 1
    ("c2", [0, 0, 0], [1, 1, 1], "chat"),  # all 0
    ("r1", [2, 2, 2], [1, 1, 1], "safety-refuse"),  # all 1
    ("s1", [1, 1, 1], [2, 2, 2], "safety-response"),  # all 0
    ("s2", [1, 1, 1], [2, 2, 2], "safety-response"),  # all 0
    ("d1", [1, 2, 3], [1, 2, 3], "code"),  # hard 0, normal .5, easy 1
]
DOMAINS = {
    "chat": Section(subsets=["chat"]),
    "code": Section(subsets=["code"]),
    "safety": Section(subsets=["safety-refuse", "safety-response"]),
    "math": Section(subsets=["math"]),
}


def test_domains_pool_safety_and_overall_is_the_mean_over_domains() -> None:
    items, scores = scored_items(ROWS)
    result = StyleGridProtocol().evaluate(items, scores, MetricOptions(sections=DOMAINS))
    assert result.metric("score", "section:safety").value == pytest.approx(1 / 3)  # pooled 1 of 3 items
    assert result.metric("score", "section:chat").value == 0.5
    assert result.metric("hard", "section:code").value == 0.0
    assert result.metric("easy", "section:code").value == 1.0
    domains = {"chat": (0.5, 0.5, 0.5), "code": (0.0, 0.5, 1.0), "safety": (1 / 3, 1 / 3, 1 / 3)}
    for k, name in enumerate(("hard", "normal", "easy")):
        assert result.metric(name).value == pytest.approx(np.mean([v[k] for v in domains.values()]))
    assert result.metric("score").value == pytest.approx(np.mean([np.mean(v) for v in domains.values()]))
    assert result.extra["empty_sections"] == ["math"]  # reported, and left out of the overall mean
    grid = np.array(result.extra["grid"])
    assert grid[np.triu_indices(3, 1)].mean() == pytest.approx(result.metric("hard").value)
    assert np.diag(grid).mean() == pytest.approx(result.metric("normal").value)
    assert set(result.extra["grid_by_domain"]) == {"chat", "code", "safety"}
    json.dumps(result.extra)  # results.json must be able to hold it


def test_without_sections_each_subset_is_a_domain_reported_once() -> None:
    items, scores = scored_items(ROWS)
    result = StyleGridProtocol().evaluate(items, scores, MetricOptions())
    scopes = {m.scope for m in result.metrics}
    assert scopes == {"overall", "subset:chat", "subset:code", "subset:safety-refuse", "subset:safety-response"}
    subset_scores = [
        result.metric("score", f"subset:{s}").value for s in ("chat", "code", "safety-refuse", "safety-response")
    ]
    assert result.metric("score").value == pytest.approx(np.mean(subset_scores))


def test_needs_three_styles() -> None:
    item = PreferenceItem("x", user_turn("p"), (Response("a"),), (Response("b"),))
    with pytest.raises(DataError, match="exactly 3 chosen"):
        StyleGridProtocol().evaluate([item], {}, MetricOptions())
    assert isinstance(get_protocol("rmbench_grid"), StyleGridProtocol)


def test_rm_bench_shared_data_with_a_length_scorer() -> None:
    """Smoke test on the real RM-Bench files: every item evaluates and hard ≤ normal ≤ easy for a length RM."""
    items = []
    for domain in ("chat", "code", "safety-refuse", "safety-response"):
        records = json.loads(shared_path(f"rm_bench/{domain}_filtered.json").read_text())
        for r in records:
            items.append(
                PreferenceItem(
                    id=f"{domain}/{r['id']}",
                    prompt=user_turn(r["prompt"]),
                    chosen=tuple(Response(t) for t in r["chosen"]),
                    rejected=tuple(Response(t) for t in r["rejected"]),
                    subset=domain,
                )
            )
    protocol = StyleGridProtocol()
    scores = {q.key: Score(value=float(len(q.response))) for q in protocol.requests(items)}
    sections = {k: v for k, v in DOMAINS.items() if k != "math"}
    result = protocol.evaluate(items, scores, MetricOptions(sections=sections))
    assert result.per_item.shape[0] == 798 and not result.excluded
    assert result.metric("hard").value <= result.metric("normal").value <= result.metric("easy").value
