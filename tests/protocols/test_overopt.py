"""Overoptimization curves (METRICS.md §8): the worked example, the estimator against brute-force enumeration,
Gao et al.'s fit, ensembles, the protocol on hand-made pools, the AlpacaEval pool transform, the generator, the plot."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from rmbench.data.convert import RecordProblem
from rmbench.errors import DataError, ScoreError, SuiteError
from rmbench.items import Response, SampleSet, user_turn
from rmbench.metrics import overopt
from rmbench.protocols import MetricOptions, get_protocol
from rmbench.requests import Score, ScoreRequest

# --- METRICS.md §8 worked example ---------------------------------------------------------------------------------


def test_worked_example_best_of_n_gold() -> None:
    # K = 3, proxy [0.1, 0.5, 0.9] with gold [1, 0, 2]: n=1 → 1.0; n=2 → (C(1,1)·0 + C(2,1)·2)/C(3,2) = 4/3; n=3 → 2.
    curve = overopt.bon_curve(np.array([0.1, 0.5, 0.9]), np.array([1.0, 0.0, 2.0]))
    np.testing.assert_allclose(curve, [1.0, 4.0 / 3.0, 2.0], rtol=0, atol=1e-12)


def test_worked_example_kl_bon() -> None:
    assert overopt.kl_bon(2) == pytest.approx(0.193147, abs=1e-6)
    assert overopt.kl_bon(2) == pytest.approx(math.log(2) - 0.5, abs=1e-15)
    assert overopt.kl_bon(1) == 0.0
    np.testing.assert_allclose(overopt.kl_bon([1, 4, 16]), [0.0, math.log(4) - 0.75, math.log(16) - 15 / 16])


def test_n1_is_pool_mean_and_nK_is_top_pick_with_ties_averaged() -> None:
    proxy, gold = np.array([3.0, 1.0, 3.0, 2.0]), np.array([0.0, 5.0, 1.0, 7.0])
    curve = overopt.bon_curve(proxy, gold)
    assert curve[0] == pytest.approx(gold.mean())
    assert curve[-1] == pytest.approx(0.5)  # the top proxy score is tied (gold 0 and 1): their mean


# --- the estimator against brute force ----------------------------------------------------------------------------


def _brute_force(proxy: np.ndarray, gold: np.ndarray, n: int) -> float:
    """Mean over every n-subset of the gold of its proxy argmax, ties among the maxima broken uniformly."""
    picks = []
    for subset in itertools.combinations(range(len(proxy)), n):
        top = max(proxy[i] for i in subset)
        picks.append(np.mean([gold[i] for i in subset if proxy[i] == top]))
    return float(np.mean(picks))


@pytest.mark.parametrize("seed", range(6))
def test_estimator_equals_enumeration_of_all_subsets(seed: int) -> None:
    rng = np.random.default_rng(seed)
    K = int(rng.integers(2, 8))
    # Few distinct proxy values so ties are common; gold arbitrary.
    proxy = rng.integers(0, 4, size=K).astype(float) if seed % 2 else rng.normal(size=K)
    gold = rng.normal(size=K)
    curve = overopt.bon_curve(proxy, gold)
    expected = [_brute_force(proxy, gold, n) for n in range(1, K + 1)]
    np.testing.assert_allclose(curve, expected, rtol=0, atol=1e-12)


def test_weights_are_distributions_and_stable_for_large_pools() -> None:
    for K in (1, 2, 11, 300):
        weights = overopt.bon_weights(K)
        assert np.all(np.isfinite(weights)) and np.all(weights >= 0)
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-9)
    assert overopt.bon_weights(300)[-1, -1] == pytest.approx(1.0)


def test_curve_rejects_mismatched_lengths_and_n_beyond_pool() -> None:
    with pytest.raises(ValueError, match="values has 2"):
        overopt.bon_curve(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="1..3"):
        overopt.bon_curve(np.zeros(3), np.zeros(3), max_n=4)


# --- Gao et al. fit -----------------------------------------------------------------------------------------------


def test_fit_recovers_alpha_beta_exactly_and_locates_the_peak() -> None:
    ns = np.arange(1, 65)
    d = np.sqrt(overopt.kl_bon(ns))
    fit = overopt.gao_fit(d, d * (1.2 - 0.5 * d), pool_size=64)
    assert (fit.alpha, fit.beta) == (pytest.approx(1.2, abs=1e-10), pytest.approx(0.5, abs=1e-10))
    assert fit.d_star == pytest.approx(1.2)  # α / (2β)
    assert fit.status == "reached" and fit.r2 == pytest.approx(1.0)
    # n* is the n whose d is closest to the peak from the fitted gain's point of view: the argmax over n.
    gains = d * (1.2 - 0.5 * d)
    assert fit.n_star == int(ns[np.argmax(gains)])
    assert d[fit.n_star - 2] < 1.2 < d[fit.n_star]


def test_fit_recovers_alpha_beta_from_noisy_curves() -> None:
    rng = np.random.default_rng(0)
    d = np.sqrt(overopt.kl_bon(np.arange(1, 33)))
    per_prompt = d * (0.8 - 0.3 * d) + rng.normal(scale=0.2, size=(2000, d.size))
    alpha, beta = overopt.fit_gao(d, per_prompt.mean(axis=0))
    assert alpha[0] == pytest.approx(0.8, abs=0.03) and beta[0] == pytest.approx(0.3, abs=0.03)
    # Linear in the curve: the fit of the mean curve is the mean of the per-row fits.
    alphas, betas = overopt.fit_gao(d, per_prompt)
    assert alphas.mean() == pytest.approx(alpha[0]) and betas.mean() == pytest.approx(beta[0])


def test_fit_statuses_not_reached_and_no_peak() -> None:
    d = np.sqrt(overopt.kl_bon(np.arange(1, 9)))
    far = overopt.gao_fit(d, d * (2.0 - 0.1 * d), pool_size=8)  # d* = 10, far beyond d(8) ≈ 1.15
    assert far.status == "not reached" and far.n_star is None and far.d_star == pytest.approx(10.0)
    assert "not reached" in far.describe(8, float(d[-1]))
    growing = overopt.gao_fit(d, d * (0.5 + 0.2 * d), pool_size=8)
    assert growing.status == "no peak" and growing.d_star is None and growing.n_star is None


def test_n_for_kl_inverts_kl_bon() -> None:
    assert overopt.n_for_kl(float(overopt.kl_bon(37.0))) == pytest.approx(37.0)


# --- ensembles ----------------------------------------------------------------------------------------------------


def test_ensembles_mean_min_and_uncertainty_weighted() -> None:
    members = np.array([[1.0, 4.0, 0.0], [3.0, 0.0, 0.0]])
    np.testing.assert_allclose(overopt.ensemble(members, "mean"), [2.0, 2.0, 0.0])
    np.testing.assert_allclose(overopt.ensemble(members, "min"), [1.0, 0.0, 0.0])
    # mean − λ·variance (METRICS.md §8), variance across members with ddof = 0: [1, 4, 0].
    np.testing.assert_allclose(overopt.ensemble(members, "uncertainty", 0.5), [1.5, 0.0, 0.0])
    with pytest.raises(ValueError, match="members"):
        overopt.ensemble(members[:1], "mean")


def test_standardize_puts_members_on_one_scale() -> None:
    z = overopt.standardize(np.array([[1.0, 2.0, 3.0], [100.0, 300.0, 500.0], [7.0, 7.0, 7.0]]))
    np.testing.assert_allclose(z[0], z[1])
    np.testing.assert_allclose(z[2], 0.0)


# --- the protocol on hand-made pools ------------------------------------------------------------------------------


def _pool(i: int, gold: list[float] | None, k: int) -> SampleSet:
    return SampleSet(
        id=f"p{i}",
        prompt=user_turn(f"prompt {i}"),
        responses=tuple(Response(f"answer {i}.{j}") for j in range(k)),
        gold=None if gold is None else tuple(gold),
    )


def _scores(items: list[SampleSet], values: list[list[float]]) -> dict[str, Score]:
    return {
        ScoreRequest.of(item.prompt, response).key: Score(value)
        for item, row in zip(items, values)
        for response, value in zip(item.responses, row)
    }


def _options(**params: object) -> MetricOptions:
    return MetricOptions.model_validate({"params": params})


def test_protocol_worked_example_and_curve_data() -> None:
    protocol = get_protocol("overoptimization")
    items = [_pool(0, [1.0, 0.0, 2.0], 3), _pool(1, [1.0, 0.0, 2.0], 3)]
    scores = _scores(items, [[0.1, 0.5, 0.9], [0.1, 0.5, 0.9]])
    result = protocol.evaluate(items, scores, _options())
    assert result.metric("gold_bon_1").value == pytest.approx(1.0)
    assert result.metric("gold_bon_2").value == pytest.approx(4.0 / 3.0)
    assert result.metric("gold_bon_3").value == pytest.approx(2.0)
    assert result.metric("proxy_bon_3").value == pytest.approx(0.9)
    assert result.metric("gold_gain").value == pytest.approx(1.0)
    curves = result.extra["curves"]
    assert curves["n"] == [1, 2, 3] and curves["kl"][1] == pytest.approx(math.log(2) - 0.5)
    assert curves["scopes"]["overall"]["gold"] == pytest.approx([1.0, 4.0 / 3.0, 2.0])
    # The ceiling, best-of-n by gold itself: gold sorted [0, 1, 2], n=2 → (C(1,1)·1 + C(2,1)·2)/C(3,2) = 5/3.
    assert curves["gold_oracle"] == pytest.approx([1.0, 5.0 / 3.0, 2.0])
    assert list(result.per_item["gold_bon_2"]) == pytest.approx([4.0 / 3.0] * 2)
    assert result.extra["gold"] == {"source": "data"}


def _random_pools(n: int, k: int, seed: int) -> tuple[list[SampleSet], dict[str, Score], dict[str, Score]]:
    rng = np.random.default_rng(seed)
    gold = rng.normal(size=(n, k))
    items = [_pool(i, list(gold[i]), k) for i in range(n)]
    proxy_a = _scores(items, (gold + rng.normal(scale=1.0, size=(n, k))).tolist())
    proxy_b = _scores(items, (100 * gold + rng.normal(scale=150.0, size=(n, k))).tolist())
    return items, proxy_a, proxy_b


def test_protocol_ensembles_each_get_a_curve_and_are_deterministic() -> None:
    protocol = get_protocol("overoptimization")
    items, proxy_a, proxy_b = _random_pools(40, 6, seed=1)
    options = _options(uncertainty_lambda=1.0)
    result = protocol.evaluate_models(items, {"a": proxy_a, "b": proxy_b}, None, options)
    scopes = set(result.extra["curves"]["scopes"])
    assert scopes == {"overall", "proxy:b", "ensemble:mean", "ensemble:min", "ensemble:uncertainty"}
    for scope in scopes:
        metric = result.metric("gold_bon_6", scope)
        assert metric.ci_low is not None and metric.ci_low <= metric.value <= metric.ci_high
    # The ensemble curves are best-of-n by the aggregated (z-scored) proxies, computed independently here.
    members = np.stack([
        np.concatenate([[proxy[ScoreRequest.of(i.prompt, r).key].value for r in i.responses] for i in items])
        for proxy in (proxy_a, proxy_b)
    ])
    combined = overopt.ensemble(overopt.standardize(members), "uncertainty", 1.0).reshape(40, 6)
    expected = np.mean([overopt.bon_curve(combined[i], np.array(items[i].gold)) for i in range(40)], axis=0)
    np.testing.assert_allclose(result.extra["curves"]["scopes"]["ensemble:uncertainty"]["gold"], expected)
    assert result.extra["ensemble"]["uncertainty_lambda"] == 1.0
    again = protocol.evaluate_models(items, {"a": proxy_a, "b": proxy_b}, None, options)
    assert [m.as_dict() for m in again.metrics] == [m.as_dict() for m in result.metrics]


def test_protocol_gold_from_a_gold_model_overrides_data() -> None:
    protocol = get_protocol("overoptimization")
    items = [_pool(0, None, 3), _pool(1, [9.0, 9.0, 9.0], 3)]
    proxy = _scores(items, [[0.1, 0.5, 0.9], [0.9, 0.5, 0.1]])
    gold = _scores(items, [[1.0, 0.0, 2.0], [2.0, 0.0, 1.0]])
    result = protocol.evaluate_models(items, {"rm": proxy}, gold, _options())
    assert result.extra["gold"]["source"] == "gold-model"
    assert result.metric("gold_bon_2").value == pytest.approx(4.0 / 3.0)
    with pytest.raises(DataError, match="gold scores"):
        protocol.evaluate_models(items, {"rm": proxy}, None, _options())
    with pytest.raises(ScoreError, match="--gold-model"):
        protocol.evaluate_models(items[1:], {"rm": proxy}, None, _options(gold="model"))


def test_protocol_excludes_invalid_pools_and_rejects_bad_input() -> None:
    protocol = get_protocol("overoptimization")
    items = [_pool(i, [1.0, 0.0, 2.0], 3) for i in range(3)]
    scores = _scores(items, [[0.1, 0.5, 0.9], [0.1, float("nan"), 0.9], [0.3, 0.2, 0.1]])
    del scores[ScoreRequest.of(items[2].prompt, items[2].responses[0]).key]
    result = protocol.evaluate(items, scores, _options())
    assert result.excluded == {"invalid_score": 1, "missing_score": 1}
    assert result.metric("gold_bon_3").n == 1
    with pytest.raises(DataError, match="at least 2"):
        protocol.evaluate([_pool(0, [1.0], 1)], _scores([_pool(0, [1.0], 1)], [[0.0]]), _options())
    with pytest.raises(SuiteError, match="uncertainty_lambda"):
        protocol.evaluate(items[:1], scores, _options(uncertainty_lambda=-1))


def test_protocol_pools_of_different_sizes_stop_at_the_smallest() -> None:
    protocol = get_protocol("overoptimization")
    items = [_pool(0, [1.0, 0.0, 2.0], 3), _pool(1, [0.0, 1.0, 2.0, 3.0], 4)]
    result = protocol.evaluate(items, _scores(items, [[0.1, 0.5, 0.9], [1.0, 2.0, 3.0, 4.0]]), _options())
    assert result.extra["pool_size"] == 3 and "pool_note" in result.extra
    # Pool 2 at n = 3 from its 4 responses: C(2,2)/C(4,3)·2 + C(3,2)/C(4,3)·3 = (2 + 9) / 4.
    assert result.metric("gold_bon_3").value == pytest.approx((2.0 + 11.0 / 4.0) / 2.0)


# --- AlpacaEval pools transform -----------------------------------------------------------------------------------


def _annotation(prompt_id: int, sample: int, preference: float, instruction: str = "Say hi") -> dict:
    return {
        "id": prompt_id,
        "instruction": instruction,
        "output_2": f"hi {prompt_id}.{sample}",
        "generator_2": f"allenai/tulu-2-dpo-13b.{sample}",
        "preference": preference,
        "dataset": "koala",
    }


def test_alpacaeval_transform_joins_sample_files_into_pools() -> None:
    from rmbench.transforms import WHOLE_SOURCE, get_transform

    records = [_annotation(p, s, 1.0 + 0.1 * s + 0.01 * p) for s in (1, 0) for p in (0, 1)]
    pools = list(get_transform("alpacaeval_bon")(records))
    assert "alpacaeval_bon" in WHOLE_SOURCE
    assert [pool["id"] for pool in pools] == ["0", "1"]
    assert pools[1]["responses"] == ["hi 1.0", "hi 1.1"]
    assert pools[1]["gold"] == pytest.approx([0.01, 0.11])  # preference − 1
    assert pools[1]["sample_index"] == [0, 1]


@pytest.mark.parametrize(
    ("records", "message", "field", "index"),
    [
        ([_annotation(0, 0, 1.5), _annotation(0, 0, 1.5)], "sample 0 twice", "generator_2", 1),
        ([_annotation(0, 0, 2.5)], "preference in", "preference", 0),
        ([_annotation(0, 0, 1.5), _annotation(0, 1, 1.5), _annotation(1, 0, 1.5)], "same samples", "generator_2", 2),
        ([_annotation(0, 0, 1.5), _annotation(0, 1, 1.5, "Other")], "instruction differs", "instruction", 1),
        ([{**_annotation(0, 0, 1.5), "generator_2": "tulu"}], "sample index", "generator_2", 0),
    ],
)
def test_alpacaeval_transform_names_the_bad_record(records: list, message: str, field: str, index: int) -> None:
    from rmbench.transforms import get_transform

    with pytest.raises(RecordProblem, match=message) as problem:
        list(get_transform("alpacaeval_bon")(records))
    assert (problem.value.field, problem.value.index) == (field, index)


# --- generator and plot -------------------------------------------------------------------------------------------


def test_bon_pools_generator_is_deterministic_and_its_gold_is_exact() -> None:
    from rmbench.generators import generate

    first = generate("bon_pools", {"n_prompts": 5, "pool_size": 8, "seed": 3})
    assert first == generate("bon_pools", {"n_prompts": 5, "pool_size": 8, "seed": 3})
    assert first[:3] == generate("bon_pools", {"n_prompts": 3, "pool_size": 8, "seed": 3})
    for record in first:
        assert len(record["responses"]) == len(record["gold"]) == 8
        for tips, filler, gold in zip(record["n_tips"], record["n_filler"], record["gold"]):
            assert gold == pytest.approx(tips / 6 - 0.1 * filler, abs=1e-6)


def test_curve_png_is_written_and_deterministic(tmp_path) -> None:
    from rmbench.report.curves import write_curve_png

    items, proxy_a, proxy_b = _random_pools(12, 4, seed=2)
    extra = get_protocol("overoptimization").evaluate_models(items, {"a": proxy_a, "b": proxy_b}, None, _options()).extra
    first = write_curve_png(tmp_path / "one", extra, title="t")
    second = write_curve_png(tmp_path / "two", extra, title="t")
    assert first is not None and second is not None
    assert first.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert first.read_bytes() == second.read_bytes()
    assert write_curve_png(tmp_path, {"other": 1}) is None
