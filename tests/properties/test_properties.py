"""Property-based tests (hypothesis) for the suite loader and the metric protocols.

For every protocol: permuting the items leaves every metric unchanged; adding a constant to all scores leaves them
unchanged (every metric here depends on score differences only); and the ``expected`` tie policy equals the average
of the ``strict`` result over tie-breaks (METRICS.md §1-3), checked by breaking ties in every possible order.
"""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rmbench.data import load_items
from rmbench.protocols.base import MetricOptions
from rmbench.protocols.grid import StyleGridProtocol as GridProtocol
from rmbench.protocols.pairwise import PairwiseProtocol
from rmbench.protocols.ranking import BestOfNProtocol as RankingProtocol
from rmbench.protocols.ties import TiesProtocol
from rmbench.suite import load_suite
from tests.helpers import write_suite
from tests.protocols import test_protocol_grid as grid_t
from tests.protocols import test_protocol_ranking as ranking_t
from tests.protocols import test_protocol_ties as ties_t

OPTIONS = MetricOptions(bootstrap_resamples=1000)
STRICT = MetricOptions(bootstrap_resamples=1000, tie_policy="strict")
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

small = st.integers(-3, 3)  # small integer scores: ties are common
subsets = st.sampled_from(["s1", "s2"])


def metric_values(result) -> dict[tuple[str, str], float]:
    """Metric point values by (name, scope); CIs are resampled per item order, so only values must be equal."""
    return {(m.name, m.scope): m.value for m in result.metrics}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        (math.isnan(a[k]) and math.isnan(b[k])) or a[k] == pytest.approx(b[k], abs=1e-12) for k in a
    )


def shifted(scores: dict, by: float) -> dict:
    from rmbench.requests import Score

    return {k: Score(value=s.value + by) for k, s in scores.items()}


# --- rows → items for each protocol ----------------------------------------------------------------------------------

ranking_rows = st.lists(st.tuples(small, st.lists(small, min_size=1, max_size=3), subsets), min_size=1, max_size=8)
grid_rows = st.lists(
    st.tuples(st.lists(small, min_size=3, max_size=3), st.lists(small, min_size=3, max_size=3), subsets),
    min_size=1,
    max_size=6,
)
ties_rows = st.lists(
    st.tuples(st.lists(small, min_size=1, max_size=3), st.lists(small, min_size=1, max_size=3),
              st.lists(small, min_size=1, max_size=1), st.lists(small, min_size=1, max_size=2)),
    min_size=1,
    max_size=4,
)


def build(kind: str, rows: list):
    """(protocol, items, scores) for generated ``rows`` of the given kind."""
    if kind == "pairwise":
        named = [(f"i{k}", good, bad[:1], subset) for k, (good, bad, subset) in enumerate(rows)]
        return PairwiseProtocol(), *ranking_t.scored_items(named)
    if kind == "best_of_n":
        named = [(f"i{k}", good, bad, subset) for k, (good, bad, subset) in enumerate(rows)]
        return RankingProtocol(), *ranking_t.scored_items(named)
    if kind == "rmbench_grid":
        named = [(f"i{k}", c, r, subset) for k, (c, r, subset) in enumerate(rows)]
        return GridProtocol(), *grid_t.scored_items(named)
    named = []
    for k, (tied_right, tied_wrong, ref_right, ref_wrong) in enumerate(rows):
        named += [(f"tied:{k}", tied_right, tied_wrong), (f"ref:{k}", ref_right, ref_wrong)]
    return TiesProtocol(), *ties_t.scored_items(named)


CASES = [("pairwise", ranking_rows), ("best_of_n", ranking_rows), ("rmbench_grid", grid_rows), ("ties", ties_rows)]


@pytest.mark.parametrize(("kind", "rows_strategy"), CASES, ids=[c[0] for c in CASES])
def test_permuting_items_and_shifting_scores_change_no_metric(kind: str, rows_strategy) -> None:
    # ties bootstraps five metrics over pair clusters (~0.5 s an evaluation): fewer examples keep the file < 60 s
    @settings(FAST, max_examples=6 if kind == "ties" else 25)
    @given(rows=rows_strategy, order=st.randoms(use_true_random=False), shift=st.integers(-1000, 1000))
    def check(rows: list, order, shift: int) -> None:
        protocol, items, scores = build(kind, rows)
        base = metric_values(protocol.evaluate(items, scores, OPTIONS))
        permuted = list(items)
        order.shuffle(permuted)
        assert same(metric_values(protocol.evaluate(permuted, scores, OPTIONS)), base)
        assert same(metric_values(protocol.evaluate(items, shifted(scores, shift), OPTIONS)), base)

    check()


def _tie_broken_average(protocol, items, scores) -> dict:
    """The strict metric values averaged over every order of breaking ties: the responses of each item get distinct
    offsets < 1 (integer scores keep their order), one run per permutation of the offsets."""
    from rmbench.requests import ScoreRequest

    keys = [[ScoreRequest.of(item.prompt, r).key for r in (*item.chosen, *item.rejected)] for item in items]
    per_item_orders = [list(itertools.permutations(range(len(k)))) for k in keys]
    runs = []
    for choice in itertools.product(*per_item_orders):
        broken = dict(scores)
        for item_keys, order in zip(keys, choice):
            for key, rank in zip(item_keys, order):
                broken[key] = type(scores[key])(value=scores[key].value + rank / 100)
        runs.append(metric_values(protocol.evaluate(items, broken, STRICT)))
    return {k: sum(r[k] for r in runs) / len(runs) for k in runs[0]}


@pytest.mark.parametrize("kind", ["pairwise", "best_of_n"])
def test_expected_tie_policy_is_the_average_over_tie_breaks(kind: str) -> None:
    rows = st.lists(st.tuples(small, st.lists(small, min_size=1, max_size=2), st.just("s")), min_size=1, max_size=3)

    @FAST
    @given(rows=rows)
    def check(rows: list) -> None:
        protocol, items, scores = build(kind, rows)
        expected = metric_values(protocol.evaluate(items, scores, OPTIONS))
        average = _tie_broken_average(protocol, items, scores)
        assert {k: v for k, v in average.items() if k in expected} == pytest.approx(expected, abs=1e-12)

    check()


def test_grid_expected_tie_policy_is_the_average_of_both_tie_breaks() -> None:
    """Each grid cell is one chosen-vs-rejected comparison, so two tie-breaks (all chosen up, all chosen down) give
    every tied cell 1 and 0: their mean is the exact average over tie-breaks."""
    from rmbench.requests import ScoreRequest

    @FAST
    @given(rows=grid_rows)
    def check(rows: list) -> None:
        protocol, items, scores = build("rmbench_grid", rows)
        chosen = {ScoreRequest.of(i.prompt, r).key for i in items for r in i.chosen}
        up = {k: type(s)(value=s.value + (0.5 if k in chosen else 0)) for k, s in scores.items()}
        down = {k: type(s)(value=s.value - (0.5 if k in chosen else 0)) for k, s in scores.items()}
        a = metric_values(protocol.evaluate(items, up, STRICT))
        b = metric_values(protocol.evaluate(items, down, STRICT))
        expected = metric_values(protocol.evaluate(items, scores, OPTIONS))
        assert {k: (a[k] + b[k]) / 2 for k in expected} == pytest.approx(expected, abs=1e-12)

    check()


# --- the suite loader --------------------------------------------------------------------------------------------------

text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40).filter(lambda s: s.strip())


@FAST
@given(
    records=st.lists(st.tuples(text, text, text), min_size=1, max_size=8),
    order=st.randoms(use_true_random=False),
)
def test_suite_loader_keeps_every_record_verbatim_and_in_order(tmp_path_factory, records: list, order) -> None:
    """Any non-empty unicode text loads unchanged; items come in file order, so permuting the file permutes them."""
    directory = tmp_path_factory.mktemp("suite")
    rows = [{"id": f"r{k}", "prompt": p, "chosen": c, "rejected": r} for k, (p, c, r) in enumerate(records)]
    order.shuffle(rows)
    suite = load_suite(write_suite(directory, rows))
    items = load_items(suite).items
    assert [i.id for i in items] == [r["id"] for r in rows]
    assert [i.chosen[0].text for i in items] == [r["chosen"] for r in rows]
    assert [i.rejected[0].text for i in items] == [r["rejected"] for r in rows]
    assert [i.prompt for i in items] == [(("user", r["prompt"]),) for r in rows]
