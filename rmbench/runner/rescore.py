"""Re-score a run directory on CPU without a model: metrics and CIs recomputed from its kept scores.

The items are re-loaded from the suite results.json records (its content hash must match), the scores come from
scores.parquet, and both go through the run's own loop (``rmbench.runner.loop``) with the recorded model facts, so
a rescore under other metric options (``--tie-policy strict``) writes exactly what a fresh run with those options
would: the same results.json and items.parquet, byte for byte.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rmbench.cache import ScoreCache
from rmbench.errors import RmbenchError, ScoreError
from rmbench.protocols.base import MetricOptions
from rmbench.requests import Score, ScoreRequest
from rmbench.scoring import ScoredBatch


class StoredScores:
    """An executor that has every score already (read from scores.parquet) and scores nothing."""

    def __init__(self, fingerprint: str, default_batch_tokens: int, info: dict[str, Any], source: Path):
        self.fingerprint = fingerprint
        self.default_batch_tokens = default_batch_tokens
        self._info = info
        self.source = source

    def info(self) -> dict[str, Any]:
        return self._info

    def describe(self) -> dict[str, Any]:
        return {"executor": "rescore", "scores": str(self.source)}

    def scored_batches(
        self, todo: Sequence[ScoreRequest], token_budget: int, *, hidden: bool = False
    ) -> Iterator[ScoredBatch]:
        if todo:
            raise ScoreError(
                f"{self.source} has no score for {len(todo)} request(s) of the suite (first: {todo[0].key}): "
                "the suite's data changed since the run, or the run was made with other items"
            )
        return iter(())

    def close(self) -> None:
        """Nothing to free."""

    def __enter__(self) -> StoredScores:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_scores(path: Path) -> Iterator[tuple[str, Score]]:
    """(request key, Score) for every row of a scores.parquet (no hidden states: they are not kept)."""
    import pyarrow.parquet as pq

    columns = ["request", "score", "step_scores", "n_tokens", "truncated"]
    for batch in pq.ParquetFile(path).iter_batches(columns=columns):
        for key, value, steps, n_tokens, truncated in zip(*(batch.column(c).to_pylist() for c in columns)):
            score = Score(
                value=float("nan") if value is None else float(value),
                steps=tuple(float("nan") if s is None else float(s) for s in steps) if steps else (),
                n_tokens=int(n_tokens),
                truncated=bool(truncated),
            )
            yield key, score


def rescore(
    run_dir: Path,
    *,
    overrides: dict[str, Any] | None = None,
    out: Path | None = None,
    data_dir: Path | None = None,
    suite: str | Path | None = None,
    show_progress: bool = False,
) -> Any:
    """Recompute ``run_dir``'s metrics under its metric options updated by ``overrides`` and write a run directory
    to ``out`` (default: ``<run_dir>-rescored`` beside it). Returns the ``rmbench.runner.run.RunOutcome``."""
    from rmbench.atomic import temporary_beside
    from rmbench.protocols import get_protocol
    from rmbench.protocols.base import capabilities
    from rmbench.results.rundir import SCORES, read_results, write_run_directory
    from rmbench.runner.config import CHUNK_ITEMS
    from rmbench.runner.document import execution_record, results_document
    from rmbench.runner.loop import score_and_evaluate
    from rmbench.runner.run import RunOutcome
    from rmbench.suite import load_suite

    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    scores_file = run_dir / SCORES
    if not scores_file.is_file():
        raise RmbenchError(
            f"{run_dir} has no {SCORES}: only a run scored by rmbench keeps the raw scores a rescore needs "
            "(imported runs and runs from before scores.parquet cannot be rescored)"
        )
    recorded = read_results(run_dir)
    if recorded.models:
        raise RmbenchError(
            f"{run_dir} scored several models ({', '.join(m.label for m in recorded.models)}); "
            f"its {SCORES} keeps only the first one's scores, so it cannot be rescored: run it again"
        )
    loaded = load_suite(suite if suite is not None else recorded.suite.name)
    if loaded.content_hash != recorded.suite.content_hash:
        raise RmbenchError(
            f"suite '{loaded.name}' changed since {run_dir} was run (content hash {loaded.content_hash}, "
            f"recorded {recorded.suite.content_hash}): pass --suite with the run's suite file"
        )
    protocol = get_protocol(loaded.protocol)
    needs = capabilities(protocol)
    if needs.needs_hidden:
        raise RmbenchError(f"protocol '{loaded.protocol}' reads hidden states, which {SCORES} does not keep: run it again")
    options = MetricOptions.model_validate(recorded.metric_options.model_dump() | (overrides or {}))
    model = recorded.model.model_dump(mode="json")
    budget = int(recorded.engine_options.token_budget or 0)
    target = out or run_dir.with_name(f"{run_dir.name}-rescored")

    with ScoreCache(Path(":memory:")) as cache:
        cache.put_many(model["fingerprint"], read_scores(scores_file))
        stored = StoredScores(model["fingerprint"], budget, model["engine"], scores_file)
        written = temporary_beside(target.parent / f"{target.name}-{SCORES}")
        try:
            evaluated = score_and_evaluate(
                loaded, protocol, needs, options, {"rescore": stored}, cache, written,
                data_dir=data_dir, limit=recorded.limit, chunk_items=CHUNK_ITEMS, show_progress=show_progress,
            )
            if not evaluated.result.per_item.shape[0]:
                raise ScoreError(f"no item of {run_dir} could be evaluated: {evaluated.result.excluded or 'no items'}")
            results = results_document(
                loaded, evaluated, options, model=model, models=None, token_budget=budget, limit=recorded.limit
            )
            execution = execution_record(
                evaluated,
                run_id=uuid.uuid4().hex,
                rescored_from=str(run_dir),
                started_utc=started.isoformat(),
                finished_utc=datetime.now(timezone.utc).isoformat(),
                timings_s={"rescore_s": time.perf_counter() - clock},
                executor=stored.describe(),
            )
            write_run_directory(target, results, evaluated.result, written, {}, execution)
        finally:
            written.unlink(missing_ok=True)
    return RunOutcome(out=target, results=results, result=evaluated.result, execution=execution)
