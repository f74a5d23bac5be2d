"""The probing protocol (METRICS.md §7): per-dimension probes on hidden states, and inference-time probing.

METRICS.md §7 has no numeric example, so the worked example here is built to be solved by hand: 2-d hidden states
whose train splits are symmetric, so each fitted probe depends on one coordinate only (verbosity on x0, coherence on
x1) with its threshold at 0, whatever the regularisation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from rmbench.errors import DataError, ScoreError, SuiteError
from rmbench.items import ProbeItem, Response
from rmbench.protocols import MetricOptions, get_protocol
from rmbench.protocols.probing import ProbingProtocol
from rmbench.requests import Score, ScoreRequest

Row = tuple[str, str, int, str, tuple[float, ...], float]  # dimension, prompt, label, split, hidden, reward


def _data(rows: Sequence[Row], subset: str = "default") -> tuple[list[ProbeItem], dict[str, Score]]:
    items, scores = [], {}
    for n, (dimension, prompt, label, split, hidden, reward) in enumerate(rows):
        item = ProbeItem(
            id=f"{dimension}/{split}/{n}",
            prompt=(("user", prompt),),
            response=Response(f"response {n}"),
            label=label,
            dimension=dimension,
            split=split,
            subset=subset,
            meta={"cluster": f"prompt:{prompt}"},
        )
        items.append(item)
        scores[ScoreRequest.of(item.prompt, item.response).key] = Score(
            value=reward, hidden=np.asarray(hidden, dtype=np.float32)
        )
    return items, scores


TRAIN: list[Row] = [
    # verbosity: label = [x0 > 0]; x1 is balanced within each class, so the probe ignores it
    ("verbosity", "t1", 0, "train", (-2, -1), 0.0),
    ("verbosity", "t2", 0, "train", (-2, 1), 0.0),
    ("verbosity", "t3", 1, "train", (2, -1), 0.0),
    ("verbosity", "t4", 1, "train", (2, 1), 0.0),
    # coherence: label = [x1 > 0]
    ("coherence", "t5", 0, "train", (-1, -2), 0.0),
    ("coherence", "t6", 0, "train", (1, -2), 0.0),
    ("coherence", "t7", 1, "train", (-1, 2), 0.0),
    ("coherence", "t8", 1, "train", (1, 2), 0.0),
]
TEST: list[Row] = [
    ("verbosity", "P1", 1, "test", (1.5, 1.0), 2.0),  # A
    ("verbosity", "P1", 0, "test", (-1.5, -1.0), 1.0),  # B
    ("coherence", "P2", 1, "test", (0.5, 1.5), 0.5),  # C
    ("coherence", "P2", 0, "test", (1.0, -1.5), 1.5),  # D
    ("coherence", "P2", 1, "test", (2.0, -0.5), 1.5),  # E: the coherence probe gets it wrong (x1 < 0)
]


def _evaluate(rows: Sequence[Row], **options):
    items, scores = _data(rows)
    return ProbingProtocol().evaluate(items, scores, MetricOptions.model_validate(options))


def _value(result, name: str, scope: str = "overall") -> float:
    return result.metric(name, scope).value


def test_worked_example_probe_and_majority_accuracy() -> None:
    result = _evaluate(TRAIN + TEST)
    # verbosity: A, B right (1.0); majority of a 2/2 train split is the smaller label 0 -> only B (0.5)
    assert _value(result, "probe_accuracy", "subset:verbosity") == pytest.approx(1.0)
    assert _value(result, "majority_accuracy", "subset:verbosity") == pytest.approx(0.5)
    # coherence: C, D right, E wrong (2/3); majority 0 -> only D (1/3)
    assert _value(result, "probe_accuracy", "subset:coherence") == pytest.approx(2 / 3)
    assert _value(result, "majority_accuracy", "subset:coherence") == pytest.approx(1 / 3)
    # overall = unweighted mean over dimensions
    assert _value(result, "probe_accuracy") == pytest.approx(5 / 6)
    assert _value(result, "majority_accuracy") == pytest.approx(5 / 12)
    assert _value(result, "probe_gain") == pytest.approx(5 / 12)
    assert result.extra["dimensions"]["verbosity"]["setting"] == "easy"
    assert result.extra["dimensions"]["coherence"]["majority_class"] == 0
    for metric in result.metrics:
        if metric.ci_low is not None:
            assert metric.ci_low - 1e-12 <= metric.value <= metric.ci_high + 1e-12


def test_worked_example_inference_time_probing() -> None:
    result = _evaluate(TRAIN + TEST)
    # Pairs (higher label first): A>B: reward +, both probes + -> 2/2 agree, high, correct (1).
    # C>D: reward -, verbosity (x0 0.5 < 1.0) agrees, coherence does not -> 1/2, mid, wrong (0).
    # E>D: reward tie -> no probe agrees with a non-decision -> 0/2, low, 0.5 under the expected tie policy.
    assert _value(result, "pair_accuracy") == pytest.approx(0.5)
    assert _value(result, "pair_accuracy_conf_high") == pytest.approx(1.0)
    assert _value(result, "pair_accuracy_conf_mid") == pytest.approx(0.0)
    assert _value(result, "pair_accuracy_conf_low") == pytest.approx(0.5)
    assert _value(result, "confidence_gap") == pytest.approx(0.5)
    summary = result.extra["inference_time_probing"]
    assert summary["pairs"] == 3 and summary["pairs_by_bucket"] == {"low": 1, "mid": 1, "high": 1}
    assert summary["mean_pair_confidence"] == pytest.approx(0.5)
    # Responses: median test reward 1.5; A (+) and B (-) agree with both probes, C (reward below, both probes
    # above) with none, D and E (at the median: no decision) with none.
    assert summary["median_test_reward"] == pytest.approx(1.5)
    frame = result.per_item.set_index("item_id")
    assert frame["confidence"].tolist() == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert frame["agrees_verbosity"].tolist() == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert frame["probe_correct"].tolist() == [1.0, 1.0, 1.0, 1.0, 0.0]
    assert summary["mean_response_confidence"] == pytest.approx(0.4)

    strict = _evaluate(TRAIN + TEST, tie_policy="strict")
    assert _value(strict, "pair_accuracy") == pytest.approx(1 / 3)
    assert _value(strict, "pair_accuracy_conf_low") == pytest.approx(0.0)


def test_pair_dimensions_restrict_the_pairs() -> None:
    result = _evaluate(TRAIN + TEST, params={"pair_dimensions": ["verbosity"]})
    assert _value(result, "pair_accuracy") == pytest.approx(1.0)
    assert result.extra["inference_time_probing"]["pairs"] == 1
    # the confidence still counts every probe (2), so A>B stays high
    assert _value(result, "pair_accuracy_conf_high") == pytest.approx(1.0)


def _synthetic(labels_of, *, n_train: int, n_test: int, width: int = 12, classes: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    rows: list[Row] = []
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.standard_normal((n, width))
        for i, (features, label) in enumerate(zip(x, labels_of(x, rng))):
            rows.append(("dim", f"{split}{i}", int(label), split, tuple(features), float(features[0])))
    return rows


def test_linearly_separable_labels_are_probed_almost_perfectly() -> None:
    direction = np.linspace(-1, 1, 12)
    result = _evaluate(_synthetic(lambda x, rng: x @ direction > 0, n_train=200, n_test=100))
    assert _value(result, "probe_accuracy") > 0.9
    assert _value(result, "probe_gain") > 0.35


def test_three_class_separable_labels_are_the_hard_setting() -> None:
    direction = np.linspace(-1, 1, 12)
    rows = _synthetic(lambda x, rng: np.digitize(x @ direction, [-0.8, 0.8]), n_train=300, n_test=150, classes=3)
    result = _evaluate(rows)
    assert result.extra["dimensions"]["dim"]["setting"] == "hard"
    assert result.extra["dimensions"]["dim"]["classes"] == [0, 1, 2]
    assert _value(result, "probe_accuracy") > 0.85
    assert _value(result, "probe_accuracy") > _value(result, "majority_accuracy") + 0.3


def test_random_labels_stay_near_the_majority_baseline() -> None:
    result = _evaluate(_synthetic(lambda x, rng: rng.integers(0, 2, len(x)), n_train=200, n_test=200))
    assert abs(_value(result, "probe_gain")) < 0.1
    gain = result.metric("probe_gain")
    assert gain.ci_low < 0 < gain.ci_high  # no significant gain over the majority class


def test_items_without_hidden_states_are_excluded_and_counted() -> None:
    items, scores = _data(TRAIN + TEST)
    a_key = ScoreRequest.of(items[-1].prompt, items[-1].response).key
    scores[a_key] = Score(value=1.0)  # no hidden state
    del scores[ScoreRequest.of(items[-2].prompt, items[-2].response).key]
    nan_item = items[-3]
    scores[ScoreRequest.of(nan_item.prompt, nan_item.response).key] = Score(value=float("nan"), hidden=np.ones(2))
    result = ProbingProtocol().evaluate(items, scores, MetricOptions())
    # C, D, E were coherence's only test items: its 4 train items are left without a test split
    assert result.excluded == {"invalid_score": 1, "missing_hidden": 1, "missing_score": 1, "no_test_split": 4}
    assert len(result.per_item) == 2  # A and B


def test_a_dimension_without_test_items_is_skipped_and_said() -> None:
    rows = TRAIN + TEST[:2]  # coherence has only train items
    result = _evaluate(rows)
    assert result.extra["skipped_dimensions"] == {"coherence": "no test item with a valid score and hidden state"}
    assert result.excluded == {"no_test_split": 4}
    with pytest.raises(ScoreError, match="no dimension has both train and test"):
        _evaluate(TRAIN)


def test_scores_without_any_hidden_state_say_the_engine_returned_none() -> None:
    items, scores = _data(TRAIN + TEST)
    bare = {key: Score(value=score.value) for key, score in scores.items()}
    with pytest.raises(ScoreError, match="the engine returned no hidden states"):
        ProbingProtocol().evaluate(items, bare, MetricOptions())


def test_hidden_states_of_different_widths_are_an_error() -> None:
    items, scores = _data(TRAIN + TEST)
    key = ScoreRequest.of(items[0].prompt, items[0].response).key
    scores[key] = Score(value=0.0, hidden=np.zeros(3, dtype=np.float32))
    with pytest.raises(ScoreError, match="different sizes"):
        ProbingProtocol().evaluate(items, scores, MetricOptions())


def test_bad_params_name_the_key() -> None:
    with pytest.raises(SuiteError, match=r"metrics\.params\.C"):
        _evaluate(TRAIN + TEST, params={"C": -1})
    with pytest.raises(SuiteError, match=r"metrics\.params\.penalty"):
        _evaluate(TRAIN + TEST, params={"penalty": "l1"})
    with pytest.raises(SuiteError, match="pair_dimensions"):
        _evaluate(TRAIN + TEST, params={"pair_dimensions": ["harmlessness"]})
    with pytest.raises(DataError, match="no items"):
        _evaluate([])


def test_several_groups_get_sections_and_prefixed_dimension_names() -> None:
    easy_items, easy_scores = _data(TRAIN + TEST, subset="easy")
    hard_items, hard_scores = _data(TRAIN + TEST, subset="hard")
    hard_items = [
        ProbeItem(i.id, (("user", "h" + i.prompt[0][1]),), i.response, i.label, i.dimension, i.split, "hard",
                  {"cluster": "h" + i.meta["cluster"]})
        for i in hard_items
    ]
    hard_scores = {ScoreRequest.of(i.prompt, i.response).key: s for i, s in zip(hard_items, hard_scores.values())}
    result = ProbingProtocol().evaluate(easy_items + hard_items, easy_scores | hard_scores, MetricOptions())
    scopes = {m.scope for m in result.metrics if m.name == "probe_accuracy"}
    assert scopes == {"overall", "section:easy", "section:hard", "subset:easy/verbosity", "subset:easy/coherence",
                      "subset:hard/verbosity", "subset:hard/coherence"}
    assert _value(result, "probe_accuracy", "section:hard") == pytest.approx(5 / 6)


def test_the_protocol_is_registered_and_asks_for_hidden_states() -> None:
    protocol = get_protocol("probing")
    assert protocol.needs_hidden and protocol.item_type is ProbeItem
    items, _ = _data(TEST)
    assert [r.key for r in protocol.requests(items)] == [ScoreRequest.of(i.prompt, i.response).key for i in items]


def test_results_are_deterministic() -> None:
    first, second = _evaluate(TRAIN + TEST), _evaluate(TRAIN + TEST)
    assert [m.as_dict() for m in first.metrics] == [m.as_dict() for m in second.metrics]
