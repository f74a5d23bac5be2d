"""Concurrent runs on one cache, and determinism of results.json.

Two real processes score overlapping slices of one suite (limits 12 and 20: the first 12 items are shared) into one
SQLite cache at the same time; both must finish with the results.json of a solo run, and the cache must hold each
(model, request) once and pass ``PRAGMA integrity_check``.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests._reliability import SLEEP_ENV, cache_health, finish, launch, leftovers
from tests.helpers import run_process

SUITE = ["--suite", "math-robustness", "--batch-tokens", "64", "--engine", "slow-random"]
REQUESTS_PER_ITEM = 5  # math-robustness: 1 chosen + 4 rejected solutions per item


def test_two_processes_sharing_a_cache_both_match_their_solo_runs(tmp_path: Path) -> None:
    limits = (12, 20)
    solo = {}
    for limit in limits:
        out = tmp_path / f"solo{limit}"
        done = finish(launch([*SUITE, "--limit", str(limit), "--out", str(out), "--cache", str(tmp_path / f"s{limit}")]))
        assert done[0] == 0, done[1]
        solo[limit] = (out / "results.json").read_bytes()
    assert solo[12] != solo[20]

    cache = tmp_path / "shared.sqlite"
    # 30 ms a batch keeps both processes scoring for ≥ 1.8 s and 3 s (60 and 100 one-request batches), together.
    processes = {
        limit: launch([*SUITE, "--limit", str(limit), "--out", str(tmp_path / f"both{limit}"), "--cache", str(cache)],
                      {SLEEP_ENV: "0.03"})
        for limit in limits
    }
    for process in processes.values():
        code, stderr = finish(process)
        assert code == 0, stderr
    for limit in limits:
        out = tmp_path / f"both{limit}"
        assert (out / "results.json").read_bytes() == solo[limit]
        assert leftovers(out) == []
    runs = [json.loads((tmp_path / f"both{limit}" / "run.json").read_text()) for limit in limits]
    assert max(r["started_utc"] for r in runs) < min(r["finished_utc"] for r in runs)  # they really overlapped
    assert sum(r["scored"] for r in runs) >= 20 * REQUESTS_PER_ITEM  # every request scored, some by both
    total = 20 * REQUESTS_PER_ITEM
    assert cache_health(cache) == {"integrity": "ok", "journal_mode": "wal", "rows": total, "distinct": total}


def test_same_inputs_give_byte_identical_results_and_timings_stay_in_run_json(tmp_path: Path) -> None:
    """Two fresh processes, fresh caches, different --out: results.json is the same bytes; run.json carries the
    timings (which differ run to run), results.json none."""
    args = ["--suite", "math-robustness", "--engine", "random", "--limit", "6", "--batch-tokens", "256"]
    runs = []
    for k in range(2):
        out = tmp_path / f"run{k}"
        done = run_process([*args, "--out", str(out), "--cache", str(tmp_path / f"cache{k}.sqlite")])
        assert done.returncode == 0, done.stderr
        runs.append(out)
    assert (runs[0] / "results.json").read_bytes() == (runs[1] / "results.json").read_bytes()
    results_text = (runs[0] / "results.json").read_text()
    assert "_s\"" not in results_text and "timings" not in results_text
    timings = [json.loads((run / "run.json").read_text())["timings_s"] for run in runs]
    assert set(timings[0]) >= {"load_s", "evaluate_s"} and timings[0] != timings[1]
