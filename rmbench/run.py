"""One run: a suite scored by one model spec, from loading to a complete run directory.

The order matters for "nothing lost": every input is validated before any scoring, scores are cached batch by
batch while scoring, and the run directory is written only at the end, file by file atomically, so a failed run
never replaces an earlier run's results.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import Any

from rmbench.config import RunConfig
from rmbench.errors import ScoreError, SuiteError
from rmbench.executors import Executor
from rmbench.modelspec import ModelSpec
from rmbench.protocols.base import MetricOptions, ProtocolResult
from rmbench.requests import Score, ScoreRequest
from rmbench.scoring import ScoringStats

STREAMED_SCORES = "streamed-scores.parquet"


@dataclass
class RunOutcome:
    out: Path
    results: dict[str, Any]
    result: ProtocolResult
    execution: dict[str, Any] = field(default_factory=dict)


def model_slug(spec: ModelSpec) -> str:
    name = spec.model.rstrip("/").split("/")[-1] if spec.model else spec.engine
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or spec.engine
    return slug if spec.engine in ("hf", "vllm") else f"{spec.engine}-{slug}" if spec.model else slug


def run_suite(config: RunConfig) -> RunOutcome:
    """Load, score (through the cache), evaluate and write the run directory."""
    from rmbench.atomic import temporary_beside
    from rmbench.cache import ScoreCache
    from rmbench.data import load_items
    from rmbench.executors import create_executor
    from rmbench.protocols import get_protocol
    from rmbench.scoring import score_requests
    from rmbench.streamed import StreamedScoring, score_streamed
    from rmbench.suite import load_suite

    started = datetime.now(timezone.utc)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    suite = load_suite(config.suite)
    protocol = get_protocol(suite.protocol)
    options = MetricOptions.model_validate(suite.metrics.model_dump() | config.metric_overrides)
    out = config.out or Path("runs") / suite.name / model_slug(config.model)
    specs = [config.model, *config.ensemble]
    if (len(specs) > 1 or config.gold_model is not None) and not getattr(protocol, "multi_model", False):
        raise SuiteError(f"protocol '{suite.protocol}' scores one model: drop the extra --model / --gold-model")
    needs_hidden = bool(getattr(protocol, "needs_hidden", False))
    # Item-local protocols with one model stream: chunk by chunk, so memory does not grow with the suite.
    streams = hasattr(protocol, "outcomes") and len(specs) == 1 and config.gold_model is None
    if not streams:
        data = load_items(suite, data_dir=config.data_dir, limit=config.limit)
        requests = protocol.requests(data.items)
    timings["load_s"] = time.perf_counter() - clock

    # Before the run's engines load: the check's engines are closed after it, so a GPU holds one model at a time.
    clock = time.perf_counter()
    parity = _engine_parity(config.model) if config.engine_parity else None
    if parity is not None:
        timings["parity_s"] = time.perf_counter() - clock

    scored: dict[str, tuple[Mapping[str, Score], ScoringStats]] = {}
    engines: dict[str, Executor] = {}
    stream: StreamedScoring | None = None
    # Written while scoring, beside the cache (the run directory stays untouched until the run is complete), and
    # moved into the run directory with the other files; a killed run's leftover is swept by the next streamed run.
    streamed_scores = temporary_beside(config.cache.parent / STREAMED_SCORES) if streams else None
    try:
        with ScoreCache(config.cache) as cache:
            for label, spec in _labelled([*specs, *([config.gold_model] if config.gold_model else [])]):
                clock = time.perf_counter()
                engines[label] = create_executor(config.executor, spec, **config.executor_options())
                timings[f"engine_load_s:{label}"] = time.perf_counter() - clock
                clock = time.perf_counter()
                with engines[label]:  # a Ray executor frees its actors (and GPUs) before the next model loads
                    if streamed_scores is not None:
                        stream = score_streamed(
                            suite, protocol, options, engines[label], cache, streamed_scores,
                            data_dir=config.data_dir, limit=config.limit, chunk_items=config.chunk_items,
                            token_budget=config.token_budget, show_progress=config.show_progress,
                        )
                    else:
                        scored[label] = score_requests(
                            requests,
                            engines[label],
                            cache,
                            token_budget=config.token_budget,
                            hidden=needs_hidden,
                            show_progress=config.show_progress,
                        )
                timings[f"scoring_s:{label}"] = time.perf_counter() - clock
        labels = list(engines)

        clock = time.perf_counter()
        if stream is not None:
            result = protocol.summarize(stream.outcomes, options)
            stats, n_items, provenance, lengths = stream.stats, stream.n_items, stream.provenance, stream.lengths
        else:
            scores, stats = scored[labels[0]]
            if getattr(protocol, "multi_model", False):
                gold = scored[labels[-1]][0] if config.gold_model is not None else None
                proxies = {label: scored[label][0] for label in labels[: len(specs)]}
                result = protocol.evaluate_models(data.items, proxies, gold, options)
            else:
                result = protocol.evaluate(data.items, scores, options)
            n_items, provenance = len(data.items), data.provenance
            lengths = [scores[r.key].n_tokens for r in _unique(requests)]
        if not result.per_item.shape[0]:
            raise ScoreError(
                f"no item of suite '{suite.name}' could be evaluated: {result.excluded or 'no items'}; "
                "nothing was written (scores computed so far are kept in the cache)"
            )
        timings["evaluate_s"] = time.perf_counter() - clock
        evaluated = _Evaluated(result, stats, n_items, provenance, lengths)
        if streamed_scores is not None:
            evaluated.scores_file = streamed_scores
        else:
            evaluated.requests, evaluated.scores = requests, scores
        outcome = _finish(config, suite, options, out, evaluated, engines, parity, started, timings)
    finally:
        if streamed_scores is not None:
            streamed_scores.unlink(missing_ok=True)
    return outcome


@dataclass
class _Evaluated:
    """A scored and evaluated run, whichever path (whole suite or streamed) produced it."""

    result: ProtocolResult
    stats: ScoringStats
    n_items: int
    provenance: list[dict[str, Any]]
    lengths: Sequence[int]  # token counts of the unique requests, first-seen order
    requests: Sequence[ScoreRequest] = ()  # whole-suite path: scores.parquet is written from these ...
    scores: Mapping[str, Score] = field(default_factory=dict)
    scores_file: Path | None = None  # ... streamed path: it was written while scoring


def _finish(
    config: RunConfig,
    suite: Any,
    options: MetricOptions,
    out: Path,
    evaluated: _Evaluated,
    engines: dict[str, Executor],
    parity: dict[str, Any] | None,
    started: datetime,
    timings: dict[str, float],
) -> RunOutcome:
    """results.json, run.json and the rest of the run directory from a scored and evaluated run."""
    from rmbench.rundir import write_run_directory
    from rmbench.scoring import planned_padding

    result, stats = evaluated.result, evaluated.stats
    specs = [config.model, *config.ensemble]
    engine = next(iter(engines.values()))
    budget = config.token_budget or engine.default_batch_tokens
    real, padded = planned_padding(evaluated.lengths, budget)
    counts = {
        "items": evaluated.n_items,
        "items_evaluated": int(result.per_item.shape[0]),
        "requests": stats.requests,
        "unique_requests": stats.unique_requests,
        "real_tokens": real,
        "padded_tokens": padded,
        "padding_efficiency": real / padded if padded else None,
        "truncated": stats.truncated,
        "invalid_scores": stats.invalid_scores,
    }
    results = {
        "suite": {
            "name": suite.name,
            "version": suite.version,
            "protocol": suite.protocol,
            "content_hash": suite.content_hash,
        },
        "data": evaluated.provenance,
        "model": {
            "spec": config.model.model_dump(),
            "fingerprint": engine.fingerprint,
            "engine": engine.info(),
            **({"parity": parity} if parity is not None else {}),
        },
        "models": [
            {"label": label, "role": _role(index, len(specs)), "spec": spec.model_dump(), "fingerprint": engines[label].fingerprint}
            for index, (label, spec) in enumerate(_labelled([*specs, *([config.gold_model] if config.gold_model else [])]))
        ]
        if len(engines) > 1
        else None,
        "engine_options": {"token_budget": budget},
        "metric_options": options.model_dump(),
        "limit": config.limit,
        "metrics": [m.as_dict() for m in result.metrics],
        "excluded": result.excluded,
        "counts": counts,
        "extra": result.extra,
    }
    execution = {
        "run_id": uuid.uuid4().hex,
        "started_utc": started.isoformat(),
        "finished_utc": datetime.now(timezone.utc).isoformat(),
        "timings_s": timings,
        "executor": engine.describe(),
        "cache": str(config.cache),
        "cache_hits": stats.cache_hits,
        "scored": stats.scored,
        "batches": stats.batches,
        "batch_real_tokens": stats.real_tokens,
        "batch_padded_tokens": stats.padded_tokens,
    }
    scores_source = evaluated.scores_file if evaluated.scores_file is not None else evaluated.requests
    write_run_directory(out, results, result, scores_source, evaluated.scores, execution)
    if "curves" in result.extra:  # overoptimization: the curve plot, redrawable from results.json
        from rmbench.report.curves import write_curve_png

        write_curve_png(out, result.extra, title=f"{suite.name}: best-of-n by {model_slug(config.model)}")
    return RunOutcome(out=out, results=results, result=result, execution=execution)


def _engine_parity(spec: ModelSpec) -> dict[str, Any] | None:
    from rmbench.parity import run_parity

    return run_parity(spec)


def _labelled(specs: list[ModelSpec]) -> list[tuple[str, ModelSpec]]:
    """Distinct labels for the models of one run (slug, then slug-2, slug-3 for repeats)."""
    labelled: list[tuple[str, ModelSpec]] = []
    seen: dict[str, int] = {}
    for spec in specs:
        slug = model_slug(spec)
        seen[slug] = seen.get(slug, 0) + 1
        labelled.append((slug if seen[slug] == 1 else f"{slug}-{seen[slug]}", spec))
    return labelled


def _role(index: int, n_proxies: int) -> str:
    return "proxy" if index < n_proxies else "gold"


def _unique(requests: list) -> list:
    from rmbench.requests import unique_requests

    return unique_requests(requests)
