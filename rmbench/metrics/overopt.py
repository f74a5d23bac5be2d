"""Best-of-n overoptimization math (METRICS.md §8): the unbiased best-of-n estimator over a fixed pool, KL_bon,
Gao et al.'s ``d(α − βd)`` fit with its peak, ensembles of proxies, and seeded prompt-bootstrap resamples.

Plain arrays in, arrays out. Nothing here knows about items, requests, models or files: the protocol
(``rmbench.protocols.overoptimization``) gathers the scores and turns these numbers into metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from scipy import linalg, special

from rmbench.metrics.bootstrap import cluster_codes, cluster_counts, cluster_sums, resample

Ensemble = Literal["mean", "min", "uncertainty"]
ENSEMBLES: tuple[Ensemble, ...] = ("mean", "min", "uncertainty")


# --- best-of-n over a fixed pool ----------------------------------------------------------------------------------


def kl_bon(n: np.ndarray | Sequence[float] | float) -> np.ndarray:
    """KL divergence of best-of-n from the sampling policy: ``log n − (n − 1)/n`` (0 at n = 1)."""
    n = np.asarray(n, dtype=float)
    return np.log(n) - (n - 1.0) / n


@lru_cache(maxsize=64)
def _bon_weights(pool_size: int) -> np.ndarray:
    K = pool_size
    n = np.arange(1, K + 1, dtype=float)[:, None]
    k = np.arange(1, K + 1, dtype=float)[None, :]
    # log C(k−1, n−1) − log C(K, n), via log-gamma so K in the hundreds neither overflows nor cancels.
    with np.errstate(invalid="ignore"):
        log_weight = (
            special.gammaln(k) - special.gammaln(n) - special.gammaln(k - n + 1)
            - (special.gammaln(K + 1) - special.gammaln(n + 1) - special.gammaln(K - n + 1))
        )
    weights = np.where(k >= n, np.exp(np.where(k >= n, log_weight, 0.0)), 0.0)
    weights.setflags(write=False)
    return weights


def bon_weights(pool_size: int) -> np.ndarray:
    """(K, K) matrix: row n−1 holds the probability that best-of-n (n drawn without replacement from the pool)
    picks the response of proxy rank k (1 = lowest proxy), ``C(k−1, n−1)/C(K, n)`` for k ≥ n. Rows sum to 1."""
    if pool_size < 1:
        raise ValueError("a pool needs at least one response")
    return _bon_weights(int(pool_size))


def tie_averaged(proxy: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` in ascending proxy order, each block of tied proxy scores replaced by the block's mean value.

    Best-of-n breaks proxy ties uniformly at random; the estimator is linear in the sorted values, so averaging
    over every tie-break order is the same as giving each tied position the block mean.
    """
    proxy, values = np.asarray(proxy, dtype=float), np.asarray(values, dtype=float)
    order = np.argsort(proxy, kind="stable")
    sorted_proxy, sorted_values = proxy[order], values[order]
    block = np.concatenate([[0], np.cumsum(sorted_proxy[1:] != sorted_proxy[:-1])])
    return (np.bincount(block, weights=sorted_values) / np.bincount(block))[block]


def bon_curve(proxy: np.ndarray, values: np.ndarray, max_n: int | None = None) -> np.ndarray:
    """Unbiased expected ``values`` of the best-of-n pick by ``proxy`` from one pool, for n = 1..max_n (default K).

    n = 1 is the pool mean; n = K the value of the proxy's top pick (tied tops averaged)."""
    K = len(proxy)
    if len(values) != K:
        raise ValueError(f"proxy has {K} scores but values has {len(values)}")
    max_n = K if max_n is None else max_n
    if not 1 <= max_n <= K:
        raise ValueError(f"n must lie in 1..{K} (the pool size), got max_n={max_n}")
    return bon_weights(K)[:max_n] @ tie_averaged(proxy, values)


def bon_curves(proxies: Sequence[np.ndarray], values: Sequence[np.ndarray], max_n: int) -> np.ndarray:
    """(prompts, max_n) matrix of per-prompt best-of-n curves; pools may differ in size as long as each has at
    least ``max_n`` responses."""
    return np.stack([bon_curve(p, v, max_n) for p, v in zip(proxies, values)]) if proxies else np.empty((0, max_n))


def report_ladder(pool_size: int) -> list[int]:
    """The n reported as metrics: 1, 2, 4, ... below K, and K itself."""
    ladder, n = [], 1
    while n < pool_size:
        ladder.append(n)
        n *= 2
    return [*ladder, pool_size]


# --- ensembles ----------------------------------------------------------------------------------------------------


def standardize(members: np.ndarray) -> np.ndarray:
    """Each row (one RM's scores over every response) z-scored, so RMs on different scales can be combined.
    A constant row becomes zeros."""
    members = np.asarray(members, dtype=float)
    mean = members.mean(axis=1, keepdims=True)
    sd = members.std(axis=1, keepdims=True)
    return (members - mean) / np.where(sd > 0, sd, 1.0)


def ensemble(members: np.ndarray, how: Ensemble, uncertainty_lambda: float = 0.5) -> np.ndarray:
    """Aggregate (members, responses) scores: ``mean``, worst-case ``min``, or ``uncertainty``-weighted
    ``mean − λ·variance`` (Coste et al. 2023; variance across members, ddof = 0)."""
    members = np.asarray(members, dtype=float)
    if members.ndim != 2 or members.shape[0] < 2:
        raise ValueError("an ensemble needs a (members ≥ 2, responses) matrix")
    if how == "mean":
        return members.mean(axis=0)
    if how == "min":
        return members.min(axis=0)
    if how == "uncertainty":
        if uncertainty_lambda < 0:
            raise ValueError("uncertainty_lambda must be ≥ 0")
        return members.mean(axis=0) - uncertainty_lambda * members.var(axis=0)
    raise ValueError(f"unknown ensemble '{how}'; known: {', '.join(ENSEMBLES)}")


# --- Gao et al. fit -----------------------------------------------------------------------------------------------


def fit_gao(d: np.ndarray, gains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares ``gain ≈ d·(α − β·d)`` for one curve (N,) or many (R, N); returns (α, β) arrays.

    The model is linear in (α, β), so every row is solved with one pseudo-inverse; α and β are therefore linear in
    the curve, and the fit of a mean curve is the mean of the per-prompt fits."""
    d = np.asarray(d, dtype=float)
    design = np.column_stack([d, -(d**2)])
    coefficients = np.atleast_2d(np.asarray(gains, dtype=float)) @ linalg.pinv(design).T
    alpha, beta = coefficients[:, 0], coefficients[:, 1]
    return (alpha, beta) if np.ndim(gains) == 2 else (alpha[:1], beta[:1])


def gao_gain(d: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """The fitted gold gain ``d·(α − β·d)``."""
    d = np.asarray(d, dtype=float)
    return d * (alpha - beta * d)


def d_star(alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Peak of the fitted gain, ``α/(2β)``, where the fit is concave (β > 0); +inf where it has no peak."""
    alpha, beta = np.asarray(alpha, dtype=float), np.asarray(beta, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(beta > 0, alpha / (2.0 * beta), np.inf)


def n_star(alpha: np.ndarray, beta: np.ndarray, pool_size: int) -> np.ndarray:
    """The overoptimization point: the n in 1..K with the largest fitted gain, provided the fitted gain has turned
    down by n = K + 1 (it then only falls: ``d·(α − βd)`` is unimodal in n for β > 0); +inf where the fitted gain
    is still growing at K ("not reached")."""
    ns = np.arange(1, pool_size + 2)
    d = np.sqrt(kl_bon(ns))
    fitted = np.atleast_1d(alpha)[:, None] * d - np.atleast_1d(beta)[:, None] * d**2
    best = np.argmax(fitted, axis=1) + 1.0
    return np.where(best <= pool_size, best, np.inf)


def n_for_kl(kl: float) -> float:
    """The (real) n with ``KL_bon(n) = kl``: to say where an unreached peak would lie if the fit extrapolated."""
    from scipy.optimize import brentq

    if kl <= 0:
        return 1.0
    high = 2.0
    while kl_bon(high) < kl:
        high *= 2.0
    return float(brentq(lambda n: float(kl_bon(n)) - kl, 1.0, high))


@dataclass(frozen=True)
class GaoFit:
    """Gao et al.'s fit of one mean gold-gain curve."""

    alpha: float
    beta: float
    d_star: float | None  # None: no peak (β ≤ 0)
    n_star: int | None  # None: not reached within the pool
    r2: float | None
    status: str  # "reached" | "not reached" | "no peak"

    def describe(self, pool_size: int, d_max: float) -> str:
        if self.status == "reached":
            return f"fitted gold gain peaks at n* = {self.n_star} (d* = {self.d_star:.3f})"
        if self.status == "no peak":
            return "no peak: the fitted curve is not concave (β ≤ 0), the gold gain keeps growing in the fit"
        assert self.d_star is not None
        beyond = n_for_kl(self.d_star**2) if self.d_star**2 < float(kl_bon(1e4)) else None
        where = f"near n ≈ {beyond:.0f}" if beyond is not None else "only beyond n = 10,000"
        return (
            f"not reached: the fitted peak d* = {self.d_star:.3f} lies beyond the pool (d = {d_max:.3f} at n = "
            f"{pool_size}); extrapolated, the fit would peak {where}"
        )


def gao_fit(d: np.ndarray, gain: np.ndarray, pool_size: int) -> GaoFit:
    """Fit ``d(α − βd)`` to a mean gold-gain curve over n = 1..K and locate its peak and overoptimization point."""
    alpha, beta = (float(v[0]) for v in fit_gao(d, gain))
    peak = float(d_star(np.array([alpha]), np.array([beta]))[0])
    best = float(n_star(np.array([alpha]), np.array([beta]), pool_size)[0])
    residual = np.asarray(gain) - gao_gain(d, alpha, beta)
    total = np.sum((np.asarray(gain) - np.mean(gain)) ** 2)
    r2 = float(1.0 - np.sum(residual**2) / total) if total > 0 else None
    status = "no peak" if beta <= 0 else ("reached" if np.isfinite(best) else "not reached")
    return GaoFit(
        alpha=alpha,
        beta=beta,
        d_star=peak if np.isfinite(peak) else None,
        n_star=int(best) if np.isfinite(best) else None,
        r2=r2,
        status=status,
    )


# --- prompt bootstrap ---------------------------------------------------------------------------------------------


def bootstrap_means(
    per_prompt: dict[str, np.ndarray], clusters: Sequence[str], resamples: int, seed: int
) -> dict[str, np.ndarray]:
    """Resampled means of per-prompt rows: {name: (prompts, N)} → {name: (resamples, N)}.

    Clusters (prompts) are drawn by ``rmbench.metrics.bootstrap``, so every name sees the same resamples and the
    result does not depend on the order of the items."""
    coded = cluster_codes(clusters)
    sizes = cluster_counts(coded.codes, coded.n)
    sums = {name: cluster_sums(coded.codes, coded.n, rows) for name, rows in per_prompt.items()}
    names = list(per_prompt)
    widths = np.cumsum([0, *(per_prompt[name].shape[1] for name in names)])

    def means(weights: np.ndarray) -> np.ndarray:  # (r, clusters) -> (r, every name's columns side by side)
        total = weights @ sizes
        return np.concatenate([(weights @ sums[name]) / total[:, None] for name in names], axis=1)

    draws = resample(means, coded.n, resamples, seed)
    return {name: draws[:, widths[k] : widths[k + 1]] for k, name in enumerate(names)}
