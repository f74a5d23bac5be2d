"""Headline scores that a benchmark publishes over several rmbench suites, combined from their results.json files.

RewardBench 2's score averages six subsets, one of which (Ties) has its own protocol and suite; RMB's overall
averages pairwise and best-of-N accuracy over helpfulness and harmlessness, two suites; RewardBench v1's overall
adds Prior Sets at half weight. A composite takes the parts from the runs of one model (same fingerprint) and writes
a typed results.json: each part is a ``score@section:<part>`` record copied from its run (value, CI, n, tie counts),
and ``score`` overall is their mean, weighted as the benchmark weighs them. Nothing is re-scored; a missing part, a
second model or runs under different ``--limit`` are errors.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rmbench.errors import RmbenchError
from rmbench.registry import Registry
from rmbench.results.io import ResultsFileError, build_results
from rmbench.results.schema import MetricRecord, RunResults

COMPOSITE_VERSION = "1"


@dataclass(frozen=True)
class Part:
    """One number of a composite: ``metric`` in ``scope`` of the run of one of ``suites`` (variants of a suite)."""

    label: str
    suites: tuple[str, ...]
    metric: str
    scope: str
    weight: float = 1.0


@dataclass(frozen=True)
class Composite:
    name: str
    description: str
    parts: tuple[Part, ...]


COMPOSITES: Registry[Composite] = Registry("composite", RmbenchError)

_RB1 = ("rewardbench",)
_RB2 = ("rewardbench2",)
_RB2_SUBSETS = ("Factuality", "Precise IF", "Math", "Safety", "Focus")
_RMB_PAIRWISE = ("rmb-pairwise", "rmb-pairwise-by-scenario")
_RMB_BON = ("rmb-bon", "rmb-bon-by-scenario")

COMPOSITES.add(
    "rewardbench",
    Composite(
        "rewardbench",
        "RewardBench v1's published overall: Chat, Chat Hard, Safety and Reasoning weigh 2 each and Prior Sets 1 "
        "(allenai/reward-bench analysis/get_benchmark_results.py), from runs of rewardbench and "
        "rewardbench-prior-sets.",
        (
            *(Part(name, _RB1, "accuracy", f"section:{name}", 2.0) for name in ("Chat", "Chat Hard", "Safety", "Reasoning")),
            Part("Prior Sets", ("rewardbench-prior-sets",), "accuracy", "section:Prior Sets", 1.0),
        ),
    ),
    "RewardBench v1's overall (four sections and Prior Sets at half weight)",
)
COMPOSITES.add(
    "rewardbench2",
    Composite(
        "rewardbench2",
        "RewardBench 2's score: the mean of its six subset scores (five best-of-4 accuracies and the Ties score), "
        "from runs of rewardbench2 and rewardbench2-ties.",
        (
            *(Part(name, _RB2, "accuracy", f"section:{name}") for name in _RB2_SUBSETS),
            Part("Ties", ("rewardbench2-ties",), "score", "overall"),
        ),
    ),
    "RewardBench 2's score (six subsets, Ties included)",
)
COMPOSITES.add(
    "rmb",
    Composite(
        "rmb",
        "RMB's overall: the mean of pairwise and best-of-N accuracy on Helpfulness and Harmlessness, from runs of "
        "rmb-pairwise and rmb-bon (pooled over a goal's items) or their -by-scenario variants (mean over scenario "
        "files).",
        (
            Part("Pairwise Helpfulness", _RMB_PAIRWISE, "accuracy", "section:Helpfulness"),
            Part("Pairwise Harmlessness", _RMB_PAIRWISE, "accuracy", "section:Harmlessness"),
            Part("BoN Helpfulness", _RMB_BON, "accuracy", "section:Helpfulness"),
            Part("BoN Harmlessness", _RMB_BON, "accuracy", "section:Harmlessness"),
        ),
    ),
    "RMB's overall (pairwise and best-of-N x helpfulness and harmlessness)",
)


def combine(name: str, runs: Sequence[tuple[Path, RunResults]]) -> RunResults:
    """The composite ``name`` of ``runs`` (path, results) as a validated results.json."""
    composite = COMPOSITES.get(name)
    by_suite = _runs_by_suite(composite, runs)
    first_path, first = runs[0]
    for path, results in runs[1:]:
        if results.model.fingerprint != first.model.fingerprint:
            raise ResultsFileError(
                f"{path}: model fingerprint {results.model.fingerprint[:12]} differs from {first_path}'s "
                f"{first.model.fingerprint[:12]}: a composite combines runs of one model"
            )
        if results.limit != first.limit:
            raise ResultsFileError(f"{path}: limit {results.limit} differs from {first_path}'s {first.limit}")
        policy, first_policy = results.metric_options.tie_policy, first.metric_options.tie_policy
        if policy != first_policy:
            raise ResultsFileError(
                f"{path}: metric_options.tie_policy {policy!r} differs from {first_path}'s {first_policy!r}: "
                "re-run (or rescore) the parts under one policy"
            )
    parts = [(part, _part_record(part, *by_suite[part.suites])) for part in composite.parts]
    return build_results(
        suite={
            "name": composite.name,
            "version": COMPOSITE_VERSION,
            "protocol": "composite",
            "content_hash": _content_hash(composite, [r for _, r in runs]),
        },
        data=[source.model_dump() for _, results in runs for source in results.data],
        model=first.model.model_dump(exclude_unset=True),
        engine_options=first.engine_options.model_dump(exclude_unset=True),
        metric_options=first.metric_options.model_dump(),
        limit=first.limit,
        metrics=[_headline(parts), *(record.model_dump(exclude_unset=True) for _, record in parts)],
        excluded=_summed([results.excluded for _, results in runs]),
        counts=_counts([results for _, results in runs]),
        extra={
            "composite": composite.name,
            "weights": {part.label: part.weight for part in composite.parts},
            "inputs": [
                {
                    "path": str(path),
                    "suite": results.suite.model_dump(),
                    "tie_policy": results.metric_options.tie_policy,
                    **_carried(results.extra),
                }
                for path, results in runs
            ],
        },
        omit_models=True,
    )


def _runs_by_suite(composite: Composite, runs: Sequence[tuple[Path, RunResults]]) -> dict[tuple[str, ...], tuple[Path, RunResults]]:
    """Each part's suite group mapped to its one run; a run no part uses, or two runs for one group, is an error."""
    if not runs:
        raise ResultsFileError(f"composite {composite.name!r}: no results given")
    groups = list(dict.fromkeys(part.suites for part in composite.parts))
    found: dict[tuple[str, ...], tuple[Path, RunResults]] = {}
    for path, results in runs:
        group = next((g for g in groups if results.suite.name in g), None)
        if group is None:
            wanted = ", ".join(" or ".join(g) for g in groups)
            raise ResultsFileError(
                f"{path}: suite {results.suite.name!r} is not part of composite {composite.name!r} (needs {wanted})"
            )
        if group in found:
            raise ResultsFileError(f"{path}: a second run for {' / '.join(group)} (first: {found[group][0]})")
        found[group] = (path, results)
    missing = [" or ".join(g) for g in groups if g not in found]
    if missing:
        raise ResultsFileError(f"composite {composite.name!r}: no results for {', '.join(missing)}")
    return found


def _part_record(part: Part, path: Path, results: RunResults) -> MetricRecord:
    record = results.metric(part.metric, part.scope)
    if record is None or record.value is None:
        state = "has no" if record is None else "has an undefined (null)"
        raise ResultsFileError(f"{path}: metrics: {state} {part.metric} in scope {part.scope} (part {part.label!r})")
    return record.model_copy(update={"name": "score", "scope": f"section:{part.label}"})


def _headline(parts: Sequence[tuple[Part, MetricRecord]]) -> dict[str, Any]:
    """The weighted mean of the parts; no CI (the parts come from separate runs). Tie-aware parts carry their tie
    counts and other-policy values into the mean (a part without ties contributes its own value)."""
    total = sum(part.weight for part, _ in parts)
    record: dict[str, Any] = {
        "name": "score",
        "scope": "overall",
        "value": sum(part.weight * (r.value or 0.0) for part, r in parts) / total,
        "ci_low": None,
        "ci_high": None,
        "n": sum(r.n for _, r in parts),
        "method": "weighted mean of the parts (no CI)" if len({p.weight for p, _ in parts}) > 1 else "mean of the parts (no CI)",
    }
    if any(r.ties is not None for _, r in parts):
        record["ties"] = sum(r.ties or 0 for _, r in parts)
        other = [(part.weight, r.other_policy_value if r.other_policy_value is not None else r.value) for part, r in parts]
        record["other_policy_value"] = sum(w * (v or 0.0) for w, v in other) / total
    return record


def _counts(runs: Sequence[RunResults]) -> dict[str, Any]:
    keys = ("items", "items_evaluated", "requests", "unique_requests", "truncated", "invalid_scores")
    return {key: sum(getattr(r.counts, key) for r in runs) for key in keys} | {"padding_efficiency": None}


def _summed(mappings: Sequence[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for mapping in mappings:
        for key, value in mapping.items():
            total[key] = total.get(key, 0) + value
    return total


#: Counts from a part's ``extra`` that the composite repeats beside it (e.g. RewardBench 2's extra-correct rows).
CARRIED_EXTRA = ("extra_correct",)


def _carried(extra: dict[str, Any]) -> dict[str, Any]:
    return {key: extra[key] for key in CARRIED_EXTRA if key in extra}


def _content_hash(composite: Composite, runs: Sequence[RunResults]) -> str:
    """sha256 of the composite's definition and its inputs' suite hashes: a changed part shows."""
    payload = {
        "composite": [[p.label, list(p.suites), p.metric, p.scope, p.weight] for p in composite.parts],
        "suites": sorted(r.suite.content_hash for r in runs),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()
