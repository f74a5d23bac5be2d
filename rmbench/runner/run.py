"""One run: a suite scored by one model spec, from loading to a complete run directory.

The order matters for "nothing lost": every input is validated before any scoring, scores are cached batch by
batch while scoring, and the run directory is written only at the end, file by file atomically, so a failed run
never replaces an earlier run's results. Models load lazily (``rmbench.executors.lazy``): a fully cached run loads
none. The loop itself is ``rmbench.runner.loop``; results.json's content is ``rmbench.runner.document``.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rmbench.cache import ScoreCache
from rmbench.errors import ScoreError, SuiteError
from rmbench.modelspec import ModelSpec
from rmbench.protocols.base import MetricOptions, ProtocolResult
from rmbench.runner.config import RunConfig
from rmbench.runner.labels import labelled, model_slug, role
from rmbench.runner.outdir import check_out, default_out, run_identity

__all__ = ["RunConfig", "RunOutcome", "model_slug", "run_suite"]

STREAMED_SCORES = "streamed-scores.parquet"
#: Scratch scores of a perturbed pass (not kept: the rewritten texts' scores live in the cache).
PERTURBED_SCORES = "perturbed-scores.parquet"
#: The score cache's engine fact holding a vLLM run's parity record (``rmbench.runner.parity``), keyed by fingerprint.
PARITY = "parity"


@dataclass
class RunOutcome:
    out: Path
    results: dict[str, Any]
    result: ProtocolResult
    execution: dict[str, Any] = field(default_factory=dict)


def run_suite(config: RunConfig) -> RunOutcome:
    """Load, score (through the cache), evaluate and write the run directory."""
    from rmbench.atomic import temporary_beside
    from rmbench.executors.lazy import LazyExecutor
    from rmbench.perturbations import parse_specs
    from rmbench.protocols import get_protocol
    from rmbench.protocols.base import capabilities
    from rmbench.results.rundir import write_run_directory
    from rmbench.runner.document import execution_record, results_document
    from rmbench.runner.loop import score_and_evaluate
    from rmbench.runner.perturb import PerturbationRun, check_perturbable, run_perturbations
    from rmbench.suite import load_suite

    started = datetime.now(timezone.utc)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    suite = load_suite(config.suite).only(config.subsets)
    protocol = get_protocol(suite.protocol)
    needs = capabilities(protocol)
    metrics = suite.metrics.model_dump()
    options = MetricOptions.model_validate(
        metrics | {"sections": suite.sections_for(metrics["sections"])} | config.metric_overrides
    )
    perturbations = parse_specs(config.perturbations if config.perturbations is not None else suite.perturbations)
    check_perturbable(protocol, needs, perturbations, engine=config.model.engine)
    specs = [config.model, *config.ensemble]
    others = [*config.ensemble, *([config.gold_model] if config.gold_model else [])]
    out = config.out or default_out(
        suite.name, config.model, limit=config.limit, subsets=suite.only_subsets,
        metric_overrides=config.metric_overrides, others=others,
    )
    # Before any model loads: a directory holding a different run is not replaced without --force.
    check_out(out, _planned_identity(suite, config, options), force=config.force)
    if (len(specs) > 1 or config.gold_model is not None) and not needs.multi_model:
        raise SuiteError(f"protocol '{suite.protocol}' scores one model: drop the extra --model / --gold-model")
    models = labelled([*specs, *([config.gold_model] if config.gold_model else [])])
    from rmbench.engines.devices import require_vllm

    for _, spec in models:
        require_vllm(spec)
    timings["load_s"] = time.perf_counter() - clock

    # Written while scoring, beside the cache (the run directory stays untouched until the run is complete), and
    # moved into the run directory with the other files; a killed run's leftover is swept by the next run.
    scores_file = temporary_beside(config.cache.parent / STREAMED_SCORES)
    try:
        with ScoreCache(config.cache) as cache:
            # Before the run's engines load: the check's engines are closed after it, so a GPU holds one model at a
            # time. Recorded in the cache, so a re-run reports the same check without running it again.
            clock = time.perf_counter()
            parity = _engine_parity(config.model, cache) if config.engine_parity else None
            if parity is not None:
                timings["parity_s"] = time.perf_counter() - clock
            executors = {
                label: LazyExecutor(config.executor, spec, cache, **config.executor_options()) for label, spec in models
            }
            loop_options: dict[str, Any] = {
                "data_dir": config.data_dir, "limit": config.limit, "chunk_items": config.chunk_items,
                "token_budget": config.token_budget, "show_progress": config.show_progress,
            }
            try:
                evaluated = score_and_evaluate(
                    suite, protocol, needs, options, executors, cache, scores_file,
                    gold=models[-1][0] if config.gold_model is not None else None, timings=timings, **loop_options,
                )
                if not evaluated.result.per_item.shape[0]:
                    raise ScoreError(
                        f"no item of suite '{suite.name}' could be evaluated: "
                        f"{evaluated.result.excluded or 'no items'}; "
                        "nothing was written (scores computed so far are kept in the cache)"
                    )
                perturbed, perturbed_scoring = None, None
                if perturbations:
                    clock = time.perf_counter()
                    scratch = temporary_beside(config.cache.parent / PERTURBED_SCORES)
                    rerun = PerturbationRun(suite, protocol, needs, options, executors, cache, scratch, loop_options)
                    try:
                        perturbed, perturbed_scoring = run_perturbations(
                            rerun, evaluated.result, perturbations, {}
                        )
                    finally:
                        scratch.unlink(missing_ok=True)
                    timings["perturbations_s"] = time.perf_counter() - clock
                # Read before the executors close: a cache from before engine facts were recorded loads the engine.
                engine = executors[models[0][0]]
                budget = config.token_budget or engine.default_batch_tokens
                model = {
                    "spec": config.model.model_dump(),
                    "fingerprint": engine.fingerprint,
                    "engine": engine.info(),
                    **({"parity": parity} if parity is not None else {}),
                }
            finally:
                for executor in executors.values():
                    executor.close()
            timings.update({f"engine_load_s:{label}": e.load_s for label, e in executors.items() if e.loaded})
            roster = [
                {"label": label, "role": role(index, len(specs)), "spec": spec.model_dump(), "fingerprint": executors[label].fingerprint}
                for index, (label, spec) in enumerate(models)
            ]
            results = results_document(
                suite, evaluated, options, model=model, models=roster if len(roster) > 1 else None,
                token_budget=budget, limit=config.limit, perturbations=perturbed,
            )
            if suite.only_subsets is not None:  # --subset: overall and sections are over these subsets only
                results["extra"] = {**(results["extra"] or {}), "subsets_run": suite.only_subsets}
            execution = execution_record(
                evaluated,
                run_id=uuid.uuid4().hex,
                started_utc=started.isoformat(),
                finished_utc=datetime.now(timezone.utc).isoformat(),
                timings_s=timings,
                executor=engine.describe(),
                engines_loaded=[label for label, executor in executors.items() if executor.loaded],
                cache=str(config.cache),
                **({"perturbations": perturbed_scoring} if perturbed_scoring else {}),
            )
        write_run_directory(out, results, evaluated.result, scores_file, {}, execution)
    finally:
        scores_file.unlink(missing_ok=True)
    if perturbed:
        from rmbench.report.perturbations import write_perturbation_png

        write_perturbation_png(out, results, title=f"{suite.name}: {model_slug(config.model)} under rewrites")
    if "curves" in evaluated.result.extra:  # overoptimization: the curve plot, redrawable from results.json
        from rmbench.report.curves import write_curve_png

        write_curve_png(out, evaluated.result.extra, title=f"{suite.name}: best-of-n by {model_slug(config.model)}")
    return RunOutcome(out=out, results=results, result=evaluated.result, execution=execution)


def _planned_identity(suite: Any, config: RunConfig, options: MetricOptions) -> dict[str, Any]:
    """``run_identity`` of the results.json this run will write (the fields it reads, as the run records them)."""
    models = [config.model, *config.ensemble, *([config.gold_model] if config.gold_model else [])]
    return run_identity(
        {
            "suite": {"name": suite.name, "content_hash": suite.content_hash},
            "model": {"spec": config.model.model_dump()},
            "models": [{"spec": spec.model_dump()} for spec in models] if len(models) > 1 else None,
            "metric_options": options.model_dump(),
            "limit": config.limit,
            "extra": {"subsets_run": suite.only_subsets},
        }
    )


def _engine_parity(spec: ModelSpec, cache: ScoreCache) -> dict[str, Any] | None:
    """The parity record of ``spec`` (None for engines that are not checked): as first recorded for its fingerprint,
    else checked now and recorded."""
    from rmbench.engines.lazy import fingerprint_of
    from rmbench.runner.parity import CHECKED_ENGINES, run_parity

    if spec.engine not in CHECKED_ENGINES:
        return None
    fingerprint = fingerprint_of(spec)
    recorded = cache.get_fact(fingerprint, PARITY)
    if recorded is not None:
        return dict(recorded)
    parity = run_parity(spec)
    if parity is not None:
        cache.put_fact(fingerprint, PARITY, parity)
        return dict(cache.get_fact(fingerprint, PARITY))
    return parity
