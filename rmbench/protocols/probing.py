"""Multi-dimensional probing (METRICS.md §7, MRMBench) and inference-time probing of the reward's decisions.

**Probing.** Per dimension (a ``(subset, dimension)`` pair of the items; named by the dimension alone when the
suite has one subset, else ``<subset>/<dimension>``) a logistic-regression probe is fitted on the RM's final hidden
states of the train split: features standardised by a StandardScaler fitted on the train split only, L2 penalty
with fixed ``C``, lbfgs, fixed seed. ``probe_accuracy`` is its accuracy on the test split; ``majority_accuracy``
predicts the train split's majority class (ties: smallest label) for every test item; ``probe_gain`` is the
difference. A dimension is "easy" with 2 classes and "hard" with 3 (MRMBench-Easy / -Hard). Overall and per-subset
values are unweighted means over dimensions.

**Inference-time probing.** Every probe gives every test response a graded score ``s_d = (E[label] - min) /
(max - min)`` in [0, 1] (its expected label, rescaled; a probe fitted on one class gives 0.5, no direction).
A probe *agrees* with a reward decision when it points the same way, strictly:

- for one response, the decision is "above / below the median reward of the suite's test responses"; probe ``d``
  agrees when ``sign(s_d - 0.5) == sign(reward - median) != 0``;
- for a pair (a, b), the decision is which one the reward prefers; ``d`` agrees when ``sign(s_d(a) - s_d(b)) ==
  sign(r(a) - r(b)) != 0``.

A decision's confidence is the fraction of the dimension probes that agree with it: when the reward's ranking is
backed by what its own representation says about many dimensions, it is less likely to rest on one spurious
feature. Labels are read as "more of the attribute" (more verbose, more harmless...), so a probe that steadily
disagrees says the reward runs against that dimension. Pairs are built from the test split: two responses to the
same prompt in one dimension with different labels; the higher label counts as the better response, so only the
dimensions named in ``params.pair_dimensions`` (default: all) are used, where the label order is a preference
order. ``pair_accuracy`` follows the suite's tie policy (METRICS.md §0, §1) and is reported overall and by
confidence bucket: low [0, 1/3), mid [1/3, 2/3), high [2/3, 1] (fixed thirds, not quantiles: confidence takes
few distinct values); ``confidence_gap`` = high − low.

**Uncertainty.** CIs bootstrap the test items, resampled by prompt cluster (METRICS.md §9), with the probes held
fixed: they cover the test-set sampling, not the variance of fitting the probe. Items without a score, with a NaN
score, or without a finite hidden state are excluded and counted, in either split.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from rmbench.errors import DataError, SuiteError
from rmbench.items import ProbeItem
from rmbench.metrics.bootstrap import LINEAR, cluster_codes, cluster_counts, cluster_sums, resample
from rmbench.metrics.stats import pairwise_outcome
from rmbench.protocols.base import MetricOptions, MetricValue, ProtocolResult, SuiteProtocol
from rmbench.protocols.probe_fit import (
    SETTINGS,
    Probe,
    ProbeParams,
    ProbeRow,
    ProbeTask,
    describe_probe,
    features_of,
    labels_of,
    majority_class,
    probe_params,
    probe_tasks,
    resolve_probe_items,
)
from rmbench.requests import Score, ScoreRequest

__all__ = ["BUCKETS", "CI_METHOD", "SETTINGS", "ProbeParams", "ProbingProtocol"]  # ProbeParams, SETTINGS: probe_fit

CI_METHOD = f"{LINEAR.method}, probes fixed"
"""Recorded with every CI here: test items are resampled, the fitted probes are not refitted."""

BUCKETS = ("low", "mid", "high")


class ProbingProtocol(SuiteProtocol):
    """Metrics ``probe_accuracy``, ``majority_accuracy``, ``probe_gain`` (overall, per subset group, per
    dimension) and the inference-time probing metrics ``pair_accuracy``, ``pair_accuracy_conf_{low,mid,high}``,
    ``confidence_gap``."""

    name: ClassVar[str] = "probing"
    item_type: ClassVar[type] = ProbeItem
    needs_hidden: ClassVar[bool] = True

    def requests(self, items: Sequence[ProbeItem]) -> list[ScoreRequest]:
        return [ScoreRequest.of(item.prompt, item.response) for item in items]

    def evaluate(
        self, items: Sequence[ProbeItem], scores: Mapping[str, Score], options: MetricOptions
    ) -> ProtocolResult:
        params = probe_params(options)
        if not items:
            raise DataError("no items to evaluate")
        valid, excluded = resolve_probe_items(items, scores)
        tasks, skipped = probe_tasks(valid, excluded)
        probes = {
            task.name: Probe.fit(features_of(valid, task.train), labels_of(valid, task.train), params, options.seed)
            for task in tasks
        }

        test = [i for task in tasks for i in task.test]
        task_of = {i: task for task in tasks for i in task.test}
        features = features_of(valid, test)
        graded = np.stack([probes[t.name].graded(features) for t in tasks], axis=1)  # (test items, probes)
        rewards = np.array([valid[i].reward for i in test])
        median = float(np.median(list({valid[i].key: valid[i].reward for i in test}.values())))
        agrees = _agree(graded - 0.5, rewards - median)

        frame = pd.DataFrame(
            {
                "item_id": [valid[i].item.id for i in test],
                "subset": [task_of[i].name for i in test],
                "cluster": [valid[i].cluster for i in test],
            }
        )
        frame["probe_correct"] = np.concatenate(
            [probes[t.name].predict(features_of(valid, t.test)) == labels_of(valid, t.test) for t in tasks]
        ).astype(float)
        majority = {t.name: majority_class(labels_of(valid, t.train)) for t in tasks}
        frame["majority_correct"] = np.array([valid[i].item.label == majority[task_of[i].name] for i in test], float)
        frame["confidence"] = agrees.mean(axis=1)
        for column, task in enumerate(tasks):
            frame[f"agrees_{task.name}"] = agrees[:, column].astype(float)

        pairs = _pairs(valid, tasks, test, graded, params, options)
        metrics = _metrics(frame, tasks, pairs, options)
        extra = {
            "probe": {
                "model": "logistic regression (scikit-learn, lbfgs, L2)",
                "C": params.C,
                "max_iter": params.max_iter,
                "seed": options.seed,
                "features": "final hidden state at the reward-reading token, StandardScaler fitted on train only",
            },
            "ci_note": "bootstrap over test items resampled by prompt cluster; the probes stay fixed (they are not "
            "refitted per resample), so CIs leave out the variance of fitting the probe",
            "dimensions": {t.name: describe_probe(t, valid, probes[t.name], majority[t.name]) for t in tasks},
            "inference_time_probing": {
                "response_agreement": "probe d agrees with a response's reward when sign(s_d - 0.5) == "
                "sign(reward - median test reward) != 0; s_d = the probe's expected label rescaled to [0, 1]",
                "pair_agreement": "probe d agrees with the reward on a pair when sign(s_d(a) - s_d(b)) == "
                "sign(r(a) - r(b)) != 0; confidence = fraction of probes that agree",
                "buckets": {"low": "[0, 1/3)", "mid": "[1/3, 2/3)", "high": "[2/3, 1]"},
                "median_test_reward": median,
                "mean_response_confidence": float(frame["confidence"].mean()),
                "response_agreement_by_probe": {t.name: float(agrees[:, k].mean()) for k, t in enumerate(tasks)},
                **pairs.summary(),
            },
            "tie_policy": options.tie_policy,
        }
        if skipped:
            extra["skipped_dimensions"] = skipped
        return ProtocolResult(metrics=metrics, per_item=frame, excluded=dict(sorted(excluded.items())), extra=extra)


# --- agreement of probes and reward -------------------------------------------------------------------------------


def _agree(probe_direction: np.ndarray, reward_direction: np.ndarray) -> np.ndarray:
    """1 where a probe points the same (non-zero) way as the reward; ``reward_direction`` broadcasts over probes."""
    reward_sign = np.sign(reward_direction)[:, None]
    return ((np.sign(probe_direction) == reward_sign) & (reward_sign != 0)).astype(float)


# --- inference-time probing: same-prompt test pairs -----------------------------------------------------------------


@dataclass
class _Pairs:
    """Same-prompt test pairs: cluster, dimension, outcome under the tie policy, agreeing probes, bucket."""

    clusters: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    outcome: list[float] = field(default_factory=list)
    agreeing: list[int] = field(default_factory=list)
    n_probes: int = 0
    used: list[str] = field(default_factory=list)

    @property
    def bucket(self) -> np.ndarray:
        """0 / 1 / 2 for low / mid / high: k agreeing of D probes, thirds compared in integers (3k < D ...)."""
        k = 3 * np.asarray(self.agreeing, dtype=int)
        return np.where(k < self.n_probes, 0, np.where(k < 2 * self.n_probes, 1, 2))

    def summary(self) -> dict[str, Any]:
        counts = Counter(self.tasks)
        buckets = Counter(self.bucket.tolist())
        return {
            "pair_dimensions": self.used,
            "pairs": len(self.outcome),
            "pairs_by_dimension": {name: counts[name] for name in self.used},
            "pairs_by_bucket": {name: buckets.get(b, 0) for b, name in enumerate(BUCKETS)},
            "mean_pair_confidence": float(np.mean(self.agreeing) / self.n_probes) if self.outcome else None,
            **({} if self.outcome else {"pairs_note": "no test prompt has two responses with different labels"}),
        }


def _pairs(
    valid: list[ProbeRow],
    tasks: list[ProbeTask],
    test: list[int],
    graded: np.ndarray,
    params: ProbeParams,
    options: MetricOptions,
) -> _Pairs:
    wanted = params.pair_dimensions
    known = {t.dimension for t in tasks}
    if wanted is not None and not set(wanted) & known:
        raise SuiteError(
            f"metrics.params.pair_dimensions {wanted} names no probed dimension ({', '.join(sorted(known))})"
        )
    row_of = {index: row for row, index in enumerate(test)}
    pairs = _Pairs(n_probes=graded.shape[1])
    for task in tasks:
        if wanted is not None and task.dimension not in wanted:
            continue
        pairs.used.append(task.name)
        by_prompt: dict[Any, list[int]] = {}
        for index in task.test:
            by_prompt.setdefault(valid[index].item.prompt, []).append(index)
        for members in by_prompt.values():
            for a in members:
                for b in members:
                    if valid[a].item.label <= valid[b].item.label:
                        continue  # each unordered pair once, with a the higher label
                    ra, rb = valid[a].reward, valid[b].reward
                    pairs.clusters.append(valid[a].cluster)
                    pairs.tasks.append(task.name)
                    pairs.outcome.append(float(pairwise_outcome(np.array(ra), np.array(rb), options.tie_policy)))
                    direction = graded[row_of[a]] - graded[row_of[b]]
                    pairs.agreeing.append(int(_agree(direction[None, :], np.array([ra - rb])).sum()))
    return pairs


# --- metrics with cluster-bootstrap CIs -----------------------------------------------------------------------------


class _Means:
    """Means of several row sets (columns) over one set of clusters, at the sample and at every resample.

    All columns share the resamples, so derived values (a mean over dimensions, a difference of buckets) get
    coherent CIs; a column that a resample leaves empty is NaN there and drops out of nan-aware reductions."""

    def __init__(self, clusters: pd.Series):
        self.clusters = cluster_codes(clusters)
        self.sums: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        self.sizes: list[int] = []

    def add(self, clusters: Sequence[str], values: np.ndarray) -> int:
        codes = self.clusters.code_of(clusters)
        self.sums.append(cluster_sums(codes, self.clusters.n, values)[:, 0])
        self.counts.append(cluster_counts(codes, self.clusters.n))
        self.sizes.append(len(codes))
        return len(self.sums) - 1

    def compute(self, options: MetricOptions) -> tuple[np.ndarray, np.ndarray]:
        sums, counts = np.stack(self.sums, axis=1), np.stack(self.counts, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            point = sums.sum(axis=0) / counts.sum(axis=0)
            draws = resample(
                lambda w: (w @ sums) / (w @ counts), self.clusters.n, options.bootstrap_resamples, options.seed
            )
        return point, draws


def _metrics(frame: pd.DataFrame, tasks: list[ProbeTask], pairs: _Pairs, options: MetricOptions) -> list[MetricValue]:
    means = _Means(frame["cluster"])
    columns: dict[tuple[str, str], int] = {}
    for task in tasks:
        rows = frame[frame["subset"] == task.name]
        for name in ("probe_correct", "majority_correct"):
            columns[(task.name, name)] = means.add(rows["cluster"].tolist(), rows[name].to_numpy())
    outcome = np.asarray(pairs.outcome, dtype=float)
    bucket = pairs.bucket
    pair_columns: dict[str, int] = {}
    if len(outcome):
        pair_columns["pair_accuracy"] = means.add(pairs.clusters, outcome)
        for b, label in enumerate(BUCKETS):
            if (bucket == b).any():
                chosen = bucket == b
                pair_columns[f"pair_accuracy_conf_{label}"] = means.add(
                    [c for c, keep in zip(pairs.clusters, chosen) if keep], outcome[chosen]
                )
        for name in pairs.used:
            chosen = np.array([t == name for t in pairs.tasks])
            if chosen.any():
                pair_columns[f"subset:{name}"] = means.add(
                    [c for c, keep in zip(pairs.clusters, chosen) if keep], outcome[chosen]
                )
    point, draws = means.compute(options)

    metrics: list[MetricValue] = []

    def report(name: str, scope: str, value: float, samples: np.ndarray, n: int) -> None:
        low, high = LINEAR.interval(samples, options.confidence)
        ci = (float(low), float(high)) if np.isfinite(low) and np.isfinite(high) else (None, None)
        metrics.append(MetricValue(name, float(value), ci[0], ci[1], n, method=CI_METHOD, scope=scope))

    def probe_scope(scope: str, chosen: list[ProbeTask]) -> None:
        probe = [columns[(t.name, "probe_correct")] for t in chosen]
        major = [columns[(t.name, "majority_correct")] for t in chosen]
        n = sum(means.sizes[c] for c in probe)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a resample that left every dimension empty
            probe_draws, major_draws = np.nanmean(draws[:, probe], axis=1), np.nanmean(draws[:, major], axis=1)
        report("probe_accuracy", scope, point[probe].mean(), probe_draws, n)
        report("majority_accuracy", scope, point[major].mean(), major_draws, n)
        report("probe_gain", scope, point[probe].mean() - point[major].mean(), probe_draws - major_draws, n)

    probe_scope("overall", tasks)
    if "pair_accuracy" in pair_columns:
        for name in ("pair_accuracy", *(f"pair_accuracy_conf_{b}" for b in BUCKETS)):
            if name in pair_columns:
                c = pair_columns[name]
                report(name, "overall", point[c], draws[:, c], means.sizes[c])
        if {"pair_accuracy_conf_low", "pair_accuracy_conf_high"} <= set(pair_columns):
            low, high = pair_columns["pair_accuracy_conf_low"], pair_columns["pair_accuracy_conf_high"]
            report(
                "confidence_gap", "overall", point[high] - point[low], draws[:, high] - draws[:, low],
                means.sizes[low] + means.sizes[high],
            )
    groups = list(dict.fromkeys(t.group for t in tasks))
    if len(groups) > 1:
        for group in groups:
            probe_scope(f"section:{group}", [t for t in tasks if t.group == group])
    for task in tasks:
        probe_scope(f"subset:{task.name}", [task])
        if f"subset:{task.name}" in pair_columns:
            c = pair_columns[f"subset:{task.name}"]
            report("pair_accuracy", f"subset:{task.name}", point[c], draws[:, c], means.sizes[c])
    return metrics
