"""Overoptimization curves (METRICS.md §8; Gao et al. 2023, Coste et al. 2023, Eisenstein et al. 2023).

Items are prompts with a pool of K sampled responses. The RM under test is the proxy: best-of-n picks its argmax
among n responses. For n = 1..K the protocol reports the unbiased expected gold score of that pick and the proxy's
own score of it, against d = sqrt(KL_bon(n)), and fits Gao et al.'s ``d(α − βd)`` to the gold gain. Gold comes
from the data (the items' gold column) or from a gold RM scored through the same engine and cache.

Several ``--model``s are several proxies: each gets its own curve, and so do their mean, worst-case (min) and
uncertainty-weighted (mean − λ·variance) ensembles. Scopes: ``overall`` is the first ``--model`` (the RM under
test, whose run directory this is), ``proxy:<label>`` each further one, ``ensemble:<kind>`` the ensembles.

The math lives in ``rmbench.metrics.overopt``; this module only gathers scores per pool and names the numbers. It does not
plot: the curves go to ``ProtocolResult.extra["curves"]`` for ``rmbench.report.curves``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rmbench.errors import DataError, ScoreError, SuiteError
from rmbench.items import SampleSet
from rmbench.metrics import overopt
from rmbench.metrics.bootstrap import INVERTED_CDF, LINEAR, bound
from rmbench.protocols.aggregate import per_item_frame, scalar
from rmbench.protocols.base import Aggregation, MetricOptions, MetricValue, MultiModelProtocol, ProtocolResult
from rmbench.requests import Score, ScoreRequest

OVERALL = "overall"
FIT = "least squares of the gold gain over n = 1 on d·(α − β·d), d = sqrt(KL_bon(n)), n = 1..K"


class Params(BaseModel):
    """``metrics.params`` of an overoptimization suite."""

    model_config = ConfigDict(extra="forbid")

    uncertainty_lambda: float = Field(
        0.5, ge=0, description="λ of the uncertainty-weighted ensemble mean − λ·variance (Coste et al. tune it)."
    )
    standardize_ensemble: bool = Field(
        True,
        description="z-score each proxy over all scored responses before combining, so RMs on different scales "
        "(characters, logits, cosines) can be ensembled; false combines raw scores.",
    )
    gold: Literal["auto", "data", "model"] = Field(
        "auto", description="Gold scores: the data's gold column, the --gold-model, or auto (the model when given)."
    )


@dataclass
class _Pools:
    """Per evaluated prompt: every proxy's scores of its pool, and the gold scores."""

    items: list[SampleSet] = field(default_factory=list)
    proxy: dict[str, list[np.ndarray]] = field(default_factory=dict)
    gold: list[np.ndarray] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Scope:
    name: str
    kind: str  # "proxy" | "ensemble"
    label: str
    scores: list[np.ndarray]


class OveroptimizationProtocol(MultiModelProtocol):
    """Best-of-n gold and proxy curves, Gao et al.'s fit, and proxy ensembles over ``SampleSet`` pools."""

    name: ClassVar[str] = "overoptimization"
    item_type: ClassVar[type] = SampleSet

    def requests(self, items: Sequence[SampleSet]) -> list[ScoreRequest]:
        return [ScoreRequest.of(item.prompt, response) for item in items for response in item.responses]

    def evaluate(self, items: Sequence[SampleSet], scores: Mapping[str, Score], options: MetricOptions) -> ProtocolResult:
        """One proxy, gold from the data."""
        return self.evaluate_models(items, {"proxy": scores}, None, options)

    def evaluate_models(
        self,
        items: Sequence[SampleSet],
        proxies: Mapping[str, Mapping[str, Score]],
        gold: Mapping[str, Score] | None,
        options: MetricOptions,
    ) -> ProtocolResult:
        if not items:
            raise DataError("no items to evaluate")
        if not proxies:
            raise ScoreError("overoptimization needs at least one proxy RM (--model)")
        params = _params(options)
        gold_info = _gold_source(items, gold, params)
        pools = _resolve(items, proxies, gold if gold_info["source"] == "gold-model" else None, options.aggregate)
        sizes = [len(g) for g in pools.gold]
        K = min(sizes)
        if K < 2:
            small = next(item.id for item, g in zip(pools.items, pools.gold) if len(g) < 2)
            raise DataError("best-of-n needs pools of at least 2 responses", record=small, field="responses")

        ns = np.arange(1, K + 1)
        d = np.sqrt(overopt.kl_bon(ns))
        scopes = _scopes(pools, list(proxies), params)
        rows = {}
        for scope in scopes:
            rows[f"{scope.name}|gold"] = overopt.bon_curves(scope.scores, pools.gold, K)
            rows[f"{scope.name}|proxy"] = overopt.bon_curves(scope.scores, scope.scores, K)
        clusters = [item.cluster for item in pools.items]
        resampled = overopt.bootstrap_means(rows, clusters, options.bootstrap_resamples, options.seed)

        metrics: list[MetricValue] = []
        curves: dict[str, Any] = {}
        for scope in scopes:
            values, curve = _scope_metrics(scope, rows, resampled, d, K, options.confidence)
            metrics += values
            curves[scope.name] = curve

        main = rows[f"{OVERALL}|gold"]
        alpha, beta = overopt.fit_gao(d, main - main[:, :1])
        ladder = overopt.report_ladder(K)
        frame = per_item_frame(
            pools.items,
            **{f"gold_bon_{n}": main[:, n - 1] for n in ladder},
            **{f"proxy_bon_{n}": rows[f"{OVERALL}|proxy"][:, n - 1] for n in ladder},
            gold_gain=main[:, -1] - main[:, 0],
            alpha=alpha,
            beta=beta,
        )
        oracle = overopt.bon_curves(pools.gold, pools.gold, K).mean(axis=0)
        extra: dict[str, Any] = {
            "pool_size": K,
            "pool_sizes": {"min": K, "max": max(sizes)},
            "n_reported": ladder,
            "gold": gold_info,
            "scopes": {s.name: f"{s.kind} {s.label}" for s in scopes},
            "fit": FIT,
            "curves": {
                "n": ns.tolist(),
                "kl": overopt.kl_bon(ns).tolist(),
                "d": d.tolist(),
                "gold_oracle": oracle.tolist(),
                "scopes": curves,
            },
        }
        if len(proxies) > 1:
            extra["ensemble"] = {
                "members": list(proxies),
                "standardized": params.standardize_ensemble,
                "uncertainty_lambda": params.uncertainty_lambda,
                "variance": "across members, ddof = 0",
            }
        if max(sizes) > K:
            extra["pool_note"] = f"pools have {K}..{max(sizes)} responses; curves stop at n = {K} (the smallest pool)"
        return ProtocolResult(metrics=metrics, per_item=frame, excluded=pools.excluded, extra=extra)


# --- inputs -------------------------------------------------------------------------------------------------------


def _params(options: MetricOptions) -> Params:
    try:
        return Params.model_validate(options.params)
    except ValidationError as error:
        problems = "; ".join(f"metrics.params.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise SuiteError(f"overoptimization: {problems}") from None


def _gold_source(items: Sequence[SampleSet], gold: Mapping[str, Score] | None, params: Params) -> dict[str, Any]:
    """Which gold scores to use, as recorded in ``extra["gold"]``; errors say how to provide gold."""
    without = [item.id for item in items if item.gold is None]
    data_has_gold = not without
    if params.gold == "model" or (params.gold == "auto" and gold is not None):
        if gold is None:
            raise ScoreError("the suite asks for gold scores from a gold RM (metrics.params.gold: model): pass --gold-model")
        info: dict[str, Any] = {"source": "gold-model"}
        if len(without) < len(items):
            info["note"] = "the data's gold column is ignored: --gold-model was given (metrics.params.gold chooses)"
        return info
    if not data_has_gold:
        have = "no item has" if len(without) == len(items) else f"{len(without)} of {len(items)} items have no"
        raise DataError(
            f"overoptimization needs gold scores: {have} gold scores (first: item {without[0]}). Map the suite's "
            "'fields.gold' to a record key holding one gold score per response, or pass --gold-model to score gold "
            "with a reward model"
        )
    info = {"source": "data"}
    if gold is not None:
        info["note"] = "--gold-model scores are ignored: metrics.params.gold is 'data'"
    return info


def _resolve(
    items: Sequence[SampleSet],
    proxies: Mapping[str, Mapping[str, Score]],
    gold: Mapping[str, Score] | None,
    how: Aggregation,
) -> _Pools:
    """Each pool's scores by proxy, plus gold; pools with a missing or non-finite score are excluded and counted."""
    pools = _Pools(proxy={label: [] for label in proxies})
    excluded = Counter[str]()
    for item in items:
        keys = [ScoreRequest.of(item.prompt, response).key for response in item.responses]
        values = {label: _values(keys, scores, how) for label, scores in proxies.items()}
        gold_values = _values(keys, gold, how) if gold is not None else np.asarray(item.gold, dtype=float)
        if any(v is None for v in values.values()):
            excluded["missing_score"] += 1
        elif not all(np.isfinite(v).all() for v in values.values() if v is not None):
            excluded["invalid_score"] += 1
        elif gold_values is None:
            excluded["missing_gold_score"] += 1
        elif not np.isfinite(gold_values).all():
            excluded["invalid_gold_score"] += 1
        else:
            pools.items.append(item)
            pools.gold.append(gold_values)
            for label, array in values.items():
                pools.proxy[label].append(array)  # type: ignore[arg-type]
    pools.excluded = dict(sorted(excluded.items()))
    if not pools.items:
        raise ScoreError(f"no pool has valid scores for every response (excluded: {pools.excluded})")
    return pools


def _values(keys: list[str], scores: Mapping[str, Score], how: Aggregation) -> np.ndarray | None:
    found = [scores.get(key) for key in keys]
    if any(score is None for score in found):
        return None
    return np.array([math.nan if s.steps and not s.is_valid else scalar(s, how) for s in found])  # type: ignore[union-attr]


def _scopes(pools: _Pools, labels: list[str], params: Params) -> list[_Scope]:
    """The first proxy as ``overall``, the others as ``proxy:<label>``, then the ensembles of all of them."""
    scopes = [_Scope(OVERALL, "proxy", labels[0], pools.proxy[labels[0]])]
    scopes += [_Scope(f"proxy:{label}", "proxy", label, pools.proxy[label]) for label in labels[1:]]
    if len(labels) < 2:
        return scopes
    sizes = [len(g) for g in pools.gold]
    members = np.stack([np.concatenate(pools.proxy[label]) for label in labels])
    if params.standardize_ensemble:
        members = overopt.standardize(members)
    bounds = np.cumsum([0, *sizes])
    for how in overopt.ENSEMBLES:
        combined = overopt.ensemble(members, how, params.uncertainty_lambda)
        per_pool = [combined[start:end] for start, end in zip(bounds[:-1], bounds[1:])]
        scopes.append(_Scope(f"ensemble:{how}", "ensemble", f"{how} of {', '.join(labels)}", per_pool))
    return scopes


# --- outputs ------------------------------------------------------------------------------------------------------


def _interval(samples: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    """The overoptimization rule (no interpolation), so +inf resamples ("no peak", "not reached") give an open bound."""
    low, high = INVERTED_CDF.interval(samples, confidence)
    return bound(low), bound(high)


def _scope_metrics(
    scope: _Scope,
    rows: dict[str, np.ndarray],
    resampled: dict[str, np.ndarray],
    d: np.ndarray,
    K: int,
    confidence: float,
) -> tuple[list[MetricValue], dict[str, Any]]:
    gold_rows, proxy_rows = rows[f"{scope.name}|gold"], rows[f"{scope.name}|proxy"]
    gold, proxy = gold_rows.mean(axis=0), proxy_rows.mean(axis=0)
    gold_r, proxy_r = resampled[f"{scope.name}|gold"], resampled[f"{scope.name}|proxy"]
    n_prompts = gold_rows.shape[0]
    metrics: list[MetricValue] = []

    def add(name: str, value: float, samples: np.ndarray) -> None:
        low, high = _interval(samples, confidence)
        metrics.append(
            MetricValue(name, float(value), low, high, n_prompts, method=INVERTED_CDF.method, scope=scope.name)
        )

    for n in overopt.report_ladder(K):
        add(f"gold_bon_{n}", gold[n - 1], gold_r[:, n - 1])
    for n in overopt.report_ladder(K):
        add(f"proxy_bon_{n}", proxy[n - 1], proxy_r[:, n - 1])
    add("gold_gain", gold[-1] - gold[0], gold_r[:, -1] - gold_r[:, 0])
    add("proxy_gain", proxy[-1] - proxy[0], proxy_r[:, -1] - proxy_r[:, 0])

    fit = overopt.gao_fit(d, gold - gold[0], K)
    alpha_r, beta_r = overopt.fit_gao(d, gold_r - gold_r[:, :1])
    add("alpha", fit.alpha, alpha_r)
    add("beta", fit.beta, beta_r)
    if fit.d_star is not None:
        add("d_star", fit.d_star, overopt.d_star(alpha_r, beta_r))
    if fit.n_star is not None:
        add("n_star", fit.n_star, overopt.n_star(alpha_r, beta_r, K))

    # The curves' bands interpolate (LINEAR): they are drawn, and every resample of a mean curve is finite.
    gold_low, gold_high = LINEAR.interval(gold_r, confidence)
    proxy_low, proxy_high = LINEAR.interval(proxy_r, confidence)
    # The gain over n = 1 is a paired quantity: its band comes from each resample's own gain, not from the level's band.
    gain_low, gain_high = LINEAR.interval(proxy_r - proxy_r[:, :1], confidence)
    within_sd = float(np.sqrt(np.mean([np.var(s) for s in scope.scores])))
    curve = {
        "kind": scope.kind,
        "label": scope.label,
        "gold": gold.tolist(),
        "gold_ci_low": gold_low.tolist(),
        "gold_ci_high": gold_high.tolist(),
        "proxy": proxy.tolist(),
        "proxy_ci_low": proxy_low.tolist(),
        "proxy_ci_high": proxy_high.tolist(),
        "proxy_gain_ci_low": gain_low.tolist(),
        "proxy_gain_ci_high": gain_high.tolist(),
        "proxy_within_prompt_sd": within_sd,
        # The measured (not fitted) best n: where the mean gold curve is highest.
        "gold_peak_n": int(np.argmax(gold)) + 1,
        "fit": {
            "alpha": fit.alpha,
            "beta": fit.beta,
            "d_star": fit.d_star,
            "n_star": fit.n_star,
            "r2": fit.r2,
            "status": fit.status,
            "summary": fit.describe(K, float(d[-1])),
        },
    }
    return metrics, curve
