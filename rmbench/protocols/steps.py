"""Step-level process reward evaluation (METRICS.md §10): does the PRM find the step where a solution goes wrong?

Each item is one step-split solution with its erroneous steps labelled (none = correct). The PRM's step scores are
thresholded (a step is predicted correct when its score is strictly above τ, default 0.5 as in PRMBench's code) and
reduced to PRMBench's PRMScore (step-level F1 of correct and of erroneous steps) and ProcessBench's earliest-error
accuracy on erroneous and on correct solutions and their harmonic mean. Data that labels only the earliest error
(ProcessBench, generated solutions) gets the earliest-error metrics only. The threshold is a suite/CLI parameter
(``metrics.params.threshold``), recorded with where it came from; a sweep over thresholds is recorded as a curve and
never picks the headline threshold.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from rmbench.errors import DataError, ScoreError, SuiteError
from rmbench.items import StepItem
from rmbench.metrics.steps import (
    DEFAULT_SWEEP,
    PRMBENCH_METRICS,
    PROCESSBENCH_METRICS,
    count_row,
    solution_counts,
    step_metrics,
    threshold_sweep,
)
from rmbench.protocols.base import MetricOptions, ProtocolResult, SuiteProtocol
from rmbench.requests import Score, ScoreRequest

#: PRMBench's ``validity_threshold`` default (mr_eval at a1ae4ea): ``label = score > 0.5``.
DEFAULT_THRESHOLD = 0.5
_KNOWN_PARAMS = {"threshold", "threshold_source", "sweep"}


class StepLevelProtocol(SuiteProtocol):
    """Metrics ``prm_score``, ``f1_correct_steps``, ``f1_error_steps`` (fully labelled data) and
    ``first_error_acc_error``, ``first_error_acc_correct``, ``first_error_f1``; the threshold sweep in extra."""

    name: ClassVar[str] = "step_level"
    item_type: ClassVar[type] = StepItem

    def requests(self, items: Sequence[StepItem]) -> list[ScoreRequest]:
        return [ScoreRequest.of(item.prompt, item.response) for item in items]

    def evaluate(
        self, items: Sequence[StepItem], scores: Mapping[str, Score], options: MetricOptions
    ) -> ProtocolResult:
        threshold, source, sweep = _params(options.params)
        if options.sections and any(section.weights for section in options.sections.values()):
            raise SuiteError(
                "metrics.sections: protocol 'step_level' takes a section as the unweighted mean of its subsets "
                "(PRMBench's groups); explicit weights are not supported"
            )
        if not items:
            raise DataError("no items to evaluate")
        kept: list[StepItem] = []
        step_scores: list[np.ndarray] = []
        excluded: Counter[str] = Counter()
        for item in items:
            reason, steps = _step_scores(item, scores)
            if reason:
                excluded[reason] += 1
                continue
            kept.append(item)
            step_scores.append(steps)
        if not kept:
            raise ScoreError(
                f"no item has valid step scores (excluded: {dict(sorted(excluded.items()))}); step-level metrics need "
                "one score per step: use a process engine (hf-prm, vllm-prm, random-prm, arith-prm)"
            )
        rows = [count_row(solution_counts(s, item.error_steps, threshold)) for s, item in zip(step_scores, kept)]
        frame = pd.DataFrame(
            {
                "item_id": [item.id for item in kept],
                "subset": [item.subset for item in kept],
                "cluster": [item.cluster for item in kept],
            }
        )
        counts = pd.DataFrame(rows, dtype=float)
        frame = pd.concat([frame, counts], axis=1)
        frame["first_error_hit"] = frame["err_hits"] + frame["ok_hits"]
        first_error_only = any(item.first_error_only for item in kept)
        metrics = PROCESSBENCH_METRICS if first_error_only else PRMBENCH_METRICS + PROCESSBENCH_METRICS
        values = step_metrics(
            frame,
            metrics,
            options.sections,
            resamples=options.bootstrap_resamples,
            confidence=options.confidence,
            seed=options.seed,
        )
        curve = threshold_sweep(step_scores, [item.error_steps for item in kept], sweep)
        if first_error_only:
            curve.pop("prm_score")
        out_of_range = sum(1 for item in kept if any(e > len(item.response.steps) for e in item.error_steps))
        return ProtocolResult(
            metrics=values,
            # Per item, what compare and gate pair runs on: was the earliest error (or its absence) found. The step
            # counts are not per-item metrics (PRMScore pools them), so they stay out of the paired comparisons.
            per_item=frame[["item_id", "subset", "cluster", "first_error_hit"]],
            excluded=dict(sorted(excluded.items())),
            extra={
                "threshold": threshold,
                "threshold_source": source,
                "threshold_rule": "a step is predicted correct when its score > threshold",
                "labels": "first error only" if first_error_only else "every erroneous step",
                "threshold_sweep": curve,
                "items_with_error_steps_past_the_end": out_of_range,
                # Labelled erroneous, but every labelled step is past the end: no earliest-error label to score.
                "erroneous_items_without_in_range_error_step": int(
                    ((frame["err_items"] == 0) & (frame["ok_items"] == 0)).sum()
                ),
                "n_steps": int(sum(len(s) for s in step_scores)),
            },
        )


def _params(params: Mapping[str, Any]) -> tuple[float, str, tuple[float, ...]]:
    unknown = set(params) - _KNOWN_PARAMS
    if unknown:
        raise SuiteError(
            f"metrics.params: unknown key(s) {', '.join(sorted(unknown))} for protocol 'step_level'; "
            f"expected {', '.join(sorted(_KNOWN_PARAMS))}"
        )
    threshold = params.get("threshold", DEFAULT_THRESHOLD)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise SuiteError(f"metrics.params.threshold: expected a finite number, got {threshold!r}")
    source = str(params.get("threshold_source", "PRMBench default (mr_eval validity_threshold = 0.5)"))
    sweep = params.get("sweep", DEFAULT_SWEEP)
    if not isinstance(sweep, (list, tuple)) or not all(
        isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) for t in sweep
    ):
        raise SuiteError(f"metrics.params.sweep: expected a list of finite thresholds, got {sweep!r}")
    return float(threshold), source, tuple(float(t) for t in sweep)


def _step_scores(item: StepItem, scores: Mapping[str, Score]) -> tuple[str | None, np.ndarray]:
    """(reason to exclude, step scores): missing, scalar-only, a step count that differs, or non-finite scores."""
    empty = np.zeros(0)
    score = scores.get(ScoreRequest.of(item.prompt, item.response).key)
    if score is None:
        return "missing_score", empty
    if not score.steps:
        return "no_step_scores", empty
    if len(score.steps) != len(item.response.steps):
        return "step_count_mismatch", empty
    if not all(math.isfinite(s) for s in score.steps):
        return "invalid_score", empty
    return None, np.asarray(score.steps, dtype=float)
