"""Shared fixtures of the reliability tests: test engines, a CLI launcher for real subprocesses, bad-input builders.

Run as a module (``python -m tests._reliability run ...``) it is the rmbench CLI in a fresh process with the test
engines registered and two optional faults armed by environment variables:

    RMBENCH_TEST_BATCH_SLEEP   seconds the ``slow-random`` engine sleeps per batch (a window to kill it in)
    RMBENCH_TEST_KILL_AT_FSYNC SIGKILL the process at the N-th ``os.fsync`` call, i.e. while the run directory's
                               files are being written (every atomic write fsyncs its temporary file once)
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rmbench.engines.base import Encoded
from rmbench.engines.baseline import LengthEngine, RandomEngine
from rmbench.requests import Score, ScoreRequest
from tests.helpers import subprocess_env

ROOT = Path(__file__).resolve().parents[1]

#: Engines the reliability tests register next to the real ones (in-process with monkeypatch, or via ``launch``).
TEST_ENGINES = {
    "scripted": "tests._reliability:ScriptedEngine",
    "slow-random": "tests._reliability:SlowRandomEngine",
}
SLEEP_ENV = "RMBENCH_TEST_BATCH_SLEEP"
KILL_AT_FSYNC_ENV = "RMBENCH_TEST_KILL_AT_FSYNC"
FAULT_ENV = "RMBENCH_FAULT_KILL_AFTER_BATCHES"  # rmbench.scoring's own fault injection
_SCRIPTED = re.compile(r"score=(\S+)")


class ScriptedEngine(LengthEngine):
    """Score = the number written in the response as ``score=X`` (``nan``, ``inf`` and ``-inf`` too), else its
    length: a model that misbehaves exactly where a test says so."""

    def value(self, request: ScoreRequest) -> float:
        match = _SCRIPTED.search(request.response)
        return float(match.group(1)) if match else float(len(request.response))


class SlowRandomEngine(RandomEngine):
    """The seeded random baseline, sleeping ``$RMBENCH_TEST_BATCH_SLEEP`` seconds per batch (scores unchanged)."""

    def score(self, batch: Sequence[Encoded], *, hidden: bool = False) -> list[Score]:
        time.sleep(float(os.environ.get(SLEEP_ENV) or 0))
        return super().score(batch, hidden=hidden)


# --- subprocesses ---------------------------------------------------------------------------------------------------


def launch(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    """``rmbench run --no-progress ARGS`` with the test engines, started in a fresh process (not waited for)."""
    command = [sys.executable, "-m", "tests._reliability", "run", "--no-progress", *args]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env(env), cwd=ROOT
    )


def finish(process: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
    """Wait for a launched process; (return code, stderr)."""
    _, stderr = process.communicate(timeout=timeout)
    return process.returncode, stderr


# --- run directories and caches -------------------------------------------------------------------------------------


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` (relative name → bytes), to prove that nothing was touched."""
    if not directory.exists():
        return {}
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def leftovers(directory: Path) -> list[str]:
    """Temporary files of interrupted atomic writes (never named like a result file)."""
    return sorted(p.name for p in directory.glob("*.tmp")) if directory.exists() else []


RUN_FILES = ("items.parquet", "report.md", "results.json", "run.json", "scores.parquet")


def assert_complete(directory: Path) -> None:
    """Every file of a run directory is there and parses, and no temporary file is left beside them."""
    import pandas as pd

    present = sorted(p.name for p in directory.iterdir())
    assert present == sorted(RUN_FILES), present
    for name in ("results.json", "run.json"):
        json.loads((directory / name).read_text(encoding="utf-8"))
    for name in ("items.parquet", "scores.parquet"):
        assert len(pd.read_parquet(directory / name)) > 0
    assert (directory / "report.md").read_text(encoding="utf-8").strip()


def cache_rows(path: Path) -> int:
    """Rows in a score cache, 0 while it does not exist yet (read without disturbing a writer)."""
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=30) as db:
            return db.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
    except sqlite3.OperationalError:  # created, schema not written yet
        return 0


def cache_health(path: Path) -> dict[str, Any]:
    """What the concurrency tests check of a cache: integrity, journal mode, rows and distinct keys."""
    db = sqlite3.connect(path, timeout=30)
    try:
        return {
            "integrity": db.execute("PRAGMA integrity_check").fetchone()[0],
            "journal_mode": db.execute("PRAGMA journal_mode").fetchone()[0],
            "rows": db.execute("SELECT COUNT(*) FROM scores").fetchone()[0],
            "distinct": db.execute("SELECT COUNT(*) FROM (SELECT DISTINCT model, request FROM scores)").fetchone()[0],
        }
    finally:
        db.close()


def results_of(out: Path) -> dict[str, Any]:
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


def metric(results: dict[str, Any], name: str, scope: str = "overall") -> dict[str, Any]:
    return next(m for m in results["metrics"] if m["name"] == name and m["scope"] == scope)


# --- records -------------------------------------------------------------------------------------------------------


def pair(i: int | str, chosen: str = "A fine answer.", rejected: str = "No.", **extra: Any) -> dict[str, Any]:
    return {"id": f"p{i}" if isinstance(i, int) else i, "prompt": f"Question {i}?", "chosen": chosen,
            "rejected": rejected, **extra}


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


# --- `python -m tests._reliability`: the CLI with test engines and faults -------------------------------------------


def _arm_fsync_kill(at: int) -> None:
    real_fsync, calls = os.fsync, [0]

    def fsync(fd: int) -> None:
        calls[0] += 1
        if calls[0] >= at:
            os.kill(os.getpid(), signal.SIGKILL)
        real_fsync(fd)

    os.fsync = fsync  # type: ignore[assignment]


def _main(argv: list[str]) -> int:
    import rmbench.engines
    from rmbench.cli import main

    rmbench.engines.ENGINES = rmbench.engines.ENGINES.extended(TEST_ENGINES)
    if os.environ.get(KILL_AT_FSYNC_ENV):
        _arm_fsync_kill(int(os.environ[KILL_AT_FSYNC_ENV]))
    return main(argv)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
