"""`rmbench cache verify`: is a score cache sound, and do its scores still come out of the model?

Two checks. SQLite's integrity check finds a damaged file. Re-scoring a seeded random sample of a run's requests
with the run's model, and comparing with the cached scores the run read, finds a stale cache (the model changed
under the same fingerprint) or a tampered one; the texts come from the run directory's scores.parquet, because
the cache stores only each request's hash.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rmbench.cache import ScoreCache
from rmbench.errors import RmbenchError
from rmbench.modelspec import ModelSpec
from rmbench.requests import Score, ScoreRequest
from rmbench.results.io import read_results
from rmbench.results.rundir import SCORES


@dataclass
class Mismatch:
    request: str
    cached: float
    rescored: float


@dataclass
class VerifyReport:
    cache: Path
    rows: int
    problems: list[str]  # integrity check
    sampled: int = 0
    not_cached: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.mismatches


def verify_cache(
    cache_path: Path, run_dir: Path | None = None, *, sample: int = 20, seed: int = 0, tolerance: float = 1e-4
) -> VerifyReport:
    if not cache_path.is_file():
        raise RmbenchError(f"score cache {cache_path}: no such file")
    with ScoreCache(cache_path) as cache:
        report = VerifyReport(cache_path, cache.count(), cache.integrity_problems())
        if run_dir is None or report.problems:
            return report
        results = read_results(run_dir)
        spec = ModelSpec.model_validate(results.model.spec.model_dump())
        fingerprint = results.model.fingerprint
        requests = _sampled_requests(run_dir, sample, seed, report)
        cached = cache.get_many(fingerprint, [r.key for r in requests])
    report.not_cached = len(requests) - len(cached)
    requests = [r for r in requests if r.key in cached]
    report.sampled = len(requests)
    if not requests:
        report.notes.append("no sampled request of the run is in the cache under its fingerprint")
        return report
    rescored = _rescore(spec, fingerprint, requests, report)
    for request in requests:
        a, b = cached[request.key].value, rescored[request.key].value
        same = (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tolerance * max(1.0, abs(a))
        if not same:
            report.mismatches.append(Mismatch(request.key, a, b))
    return report


def _sampled_requests(run_dir: Path, sample: int, seed: int, report: VerifyReport) -> list[ScoreRequest]:
    """A seeded sample of the run's requests, rebuilt from scores.parquet (those whose key rebuilds exactly)."""
    path = run_dir / SCORES
    if not path.exists():
        raise RmbenchError(f"{run_dir}: no {SCORES}; re-scoring needs the texts of the run's requests")
    frame = pd.read_parquet(path, columns=["request", "prompt", "response"])
    picked = np.random.default_rng(seed).permutation(len(frame))[:sample]
    requests, skipped = [], 0
    for row in frame.iloc[np.sort(picked)].itertuples(index=False):
        prompt = tuple((str(role), str(text)) for role, text in json.loads(row.prompt))
        request = ScoreRequest(prompt=prompt, response=row.response)
        if request.key == row.request:
            requests.append(ScoreRequest(prompt=prompt, response=row.response, key=row.request))
        else:
            skipped += 1  # step-scored requests: their steps are part of the key but not of scores.parquet
    if skipped:
        report.notes.append(f"{skipped} sampled request(s) could not be rebuilt from {SCORES} (step-scored)")
    return requests


def _rescore(
    spec: ModelSpec, fingerprint: str, requests: list[ScoreRequest], report: VerifyReport
) -> dict[str, Score]:
    from rmbench.executors.lazy import LazyExecutor
    from rmbench.scoring import score_requests

    with ScoreCache(Path(":memory:")) as scratch:
        executor = LazyExecutor("local", spec, scratch)
        if executor.fingerprint != fingerprint:
            report.notes.append(
                f"the model's fingerprint is now {executor.fingerprint}, the run recorded {fingerprint}: the model "
                "or its spec changed since the run, so new runs will not read these cached scores"
            )
        try:
            scores, _ = score_requests(requests, executor, scratch, show_progress=False, label="verifying")
        finally:
            executor.close()
    return scores
