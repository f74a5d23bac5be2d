"""Robustness under meaning-preserving rewrites: the suite scored again per perturbation, paired with the original.

Each perturbation (``rmbench.perturbations``) rewrites every item of the suite; the rewritten items are scored
through the same executor and cache (texts the rewrite left unchanged, such as the untouched side of a one-sided
rewrite, are cache hits) and evaluated by the suite's protocol. The protocol's headline per-item outcome is then
paired with the original run's item by item: accuracy under the rewrite with its CI, the paired change with a CI
from the cluster bootstrap the suite's metrics use (clusters resampled once for both, so the pairing is kept), and
the verdict flip rate — the share of items whose outcome changed at all. An order rewrite (``response_order``) is
paired on the protocol's order-sensitive outcome instead (``ScoringProtocol.order_outcome``: a pairwise judge's
single-order verdict); protocols that score each response alone have none and refuse it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rmbench.cache import ScoreCache
from rmbench.errors import SuiteError
from rmbench.executors import Executor
from rmbench.metrics.bootstrap import LINEAR, bound, paired_difference
from rmbench.metrics.stats import sectioned_mean_draws
from rmbench.perturbations import PERTURBATIONS, PerturbationSpec, perturb_items
from rmbench.protocols.base import Capabilities, MetricOptions, ProtocolResult, ScoringProtocol
from rmbench.suite import Suite

#: Seed of the rewrites' own choices (templates, appended sentences); fixed so a rewrite's texts — and so its cache
#: entries — never depend on the bootstrap seed.
PERTURBATION_SEED = 0
KEYS = ["item_id", "subset", "cluster"]


@dataclass(frozen=True)
class PerturbationRun:
    """What the run loop needs to score the suite again (the original run's arguments)."""

    suite: Suite
    protocol: ScoringProtocol
    needs: Capabilities
    options: MetricOptions
    executors: Mapping[str, Executor]
    cache: ScoreCache
    scratch: Path  # scores.parquet of a perturbed run is not kept: written here, then removed
    loop_options: Mapping[str, Any]


def paired_outcome(
    protocol: ScoringProtocol, needs: Capabilities, spec: PerturbationSpec, engine: str | None = None
) -> str:
    """The per-item column ``spec`` is paired on: the protocol's headline, or for an order rewrite the protocol's
    order-sensitive outcome (``order_outcome``). SuiteError when the protocol cannot be run under it."""
    if protocol.headline is None or needs.multi_model:
        raise SuiteError(
            f"protocol '{protocol.name}' cannot be run under perturbations: they apply to suites of preference items "
            "with one headline outcome (pairwise, best_of_n, rmbench_grid, pairwise_judge)"
        )
    if PERTURBATIONS.get(spec.name).target != "order":
        return protocol.headline
    if protocol.order_outcome is None:
        # Refused rather than recorded as "no change": a zero change and flip rate would read as order-robustness
        # the model was never tested for (and a gate would pass it vacuously).
        using = f" (engine '{engine}')" if engine else ""
        raise SuiteError(
            f"perturbation '{spec.label}' reverses the order in which a judge is shown the responses, but protocol "
            f"'{protocol.name}'{using} scores each response alone: the order is no part of the model's input, so "
            "there is nothing to reverse; use it with a pairwise judge suite (protocol pairwise_judge, engine judge "
            "or judge-vllm)"
        )
    return protocol.order_outcome


def check_perturbable(
    protocol: ScoringProtocol, needs: Capabilities, specs: list[PerturbationSpec], engine: str | None = None
) -> dict[str, str]:
    """The column each perturbation (by label) is paired on; SuiteError when one cannot be run (before scoring)."""
    return {spec.label: paired_outcome(protocol, needs, spec, engine) for spec in specs}


def run_perturbations(
    run: PerturbationRun, original: ProtocolResult, specs: list[PerturbationSpec], timings: dict[str, float]
) -> tuple[list[dict[str, Any]], dict[str, dict[str, int]]]:
    """One record per perturbation (results.json's ``perturbations``), in the order given, and per perturbation
    label what its pass scored and found in the cache (for run.json)."""
    from rmbench.runner.loop import score_and_evaluate

    metrics = check_perturbable(run.protocol, run.needs, specs)
    records, scoring = [], {}
    for spec in specs:
        perturbed = score_and_evaluate(
            run.suite, run.protocol, run.needs, run.options, run.executors, run.cache, run.scratch,
            rewrite=lambda items, spec=spec: perturb_items(items, spec, PERTURBATION_SEED),  # type: ignore[misc]
            timings=timings, **run.loop_options,
        )
        run.scratch.unlink(missing_ok=True)
        records.append(paired_record(spec, metrics[spec.label], original, perturbed.result, run.options))
        scoring[spec.label] = {"cache_hits": perturbed.stats.cache_hits, "scored": perturbed.stats.scored}
    return records, scoring


def paired_record(
    spec: PerturbationSpec, metric: str, original: ProtocolResult, perturbed: ProtocolResult, options: MetricOptions
) -> dict[str, Any]:
    """The perturbed run against the original on the items both evaluated (overall scope of the suite's sections)."""
    joined = original.per_item[[*KEYS, metric]].merge(
        perturbed.per_item[["item_id", metric]], on="item_id", suffixes=("_original", "_perturbed"), sort=False
    )
    if joined.empty:
        raise SuiteError(f"perturbation '{spec.label}': no item was evaluated both with and without the rewrite")
    frame = joined[KEYS].copy()
    frame["original"] = joined[f"{metric}_original"].to_numpy(float)
    frame["perturbed"] = joined[f"{metric}_perturbed"].to_numpy(float)
    frame["change"] = frame["perturbed"] - frame["original"]
    table = sectioned_mean_draws(
        frame, ["original", "perturbed", "change"], options.sections,
        resamples=options.bootstrap_resamples, seed=options.seed,
    )
    overall = table.labels.index("overall")
    low, high = LINEAR.interval(table.draws[:, overall, :], options.confidence)
    paired = paired_difference(table.draws[:, overall, 2], options.confidence, LINEAR)
    flipped = frame["original"].to_numpy() != frame["perturbed"].to_numpy()
    return {
        "name": spec.name,
        "side": spec.side,
        "label": spec.label,
        "target": PERTURBATIONS.get(spec.name).target,
        "metric": metric,
        "n": table.n[overall],
        "original": float(table.point[overall, 0]),
        "perturbed": float(table.point[overall, 1]),
        "perturbed_ci_low": bound(low[1]),
        "perturbed_ci_high": bound(high[1]),
        "change": float(table.point[overall, 2]),
        "change_ci_low": paired.ci_low,
        "change_ci_high": paired.ci_high,
        "p_drop": paired.p_drop,
        "flip_rate": float(np.mean(flipped)),
        "flips": int(np.count_nonzero(flipped)),
        "excluded": perturbed.excluded,
        "method": f"paired cluster {LINEAR.method}",
    }
