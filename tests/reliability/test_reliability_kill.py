"""Kill and resume: a run SIGKILLed at any point resumes to the same results.json, and a killed run never touches an
earlier run's directory nor leaves a partial file where a complete one is expected.

Every run here is a real ``python -m ...`` process killed with SIGKILL (no clean-up handlers run): at fixed batch
counts (``RMBENCH_FAULT_KILL_AFTER_BATCHES``), at seeded random times chosen by the parent while the engine works,
and while the run directory is being written.
"""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path

from tests._reliability import (
    FAULT_ENV,
    KILL_AT_FSYNC_ENV,
    SLEEP_ENV,
    assert_complete,
    cache_health,
    cache_rows,
    finish,
    launch,
    leftovers,
    snapshot,
)
from tests.helpers import run_process

# One request per batch (every math-robustness solution is longer than 64 estimated tokens), so the number of
# batches a killed run finished is exactly the number of rows it left in the cache.
SUITE = ["--suite", "math-robustness", "--batch-tokens", "64", "--force"]  # --force: each run replaces a different one
KILLED = -signal.SIGKILL


def _earlier_run(out: Path, engine: str = "length") -> dict[str, bytes]:
    """A complete run into ``out`` with other settings (--limit 5, its own cache), whose files every killed run must
    leave alone."""
    cache = out.parent / "earlier.sqlite"
    done = run_process([*SUITE, "--engine", engine, "--limit", "5", "--out", str(out), "--cache", str(cache)])
    assert done.returncode == 0, done.stderr
    return snapshot(out)


def test_sigkill_after_first_middle_and_last_batch_then_resume_is_byte_identical(tmp_path: Path) -> None:
    args = [*SUITE, "--engine", "length", "--limit", "20"]
    reference = run_process([*args, "--out", str(tmp_path / "ref"), "--cache", str(tmp_path / "ref.sqlite")])
    assert reference.returncode == 0, reference.stderr
    ref_run = json.loads((tmp_path / "ref" / "run.json").read_text())
    total = ref_run["batches"]
    assert total == ref_run["scored"] == 100  # one request per batch: batches count cache rows exactly

    out, cache = tmp_path / "run", tmp_path / "cache.sqlite"
    earlier = _earlier_run(out)
    rows = 0
    # Kill after the 1st batch, 39 batches later, and after the very last batch (everything cached, nothing written).
    for kill_after in (1, 39, total - 40):
        killed = run_process([*args, "--out", str(out), "--cache", str(cache)], {FAULT_ENV: str(kill_after)})
        assert killed.returncode == KILLED, killed.stderr
        assert cache_rows(cache) == rows + kill_after  # every finished batch was kept, none half-written
        rows = cache_rows(cache)
        assert snapshot(out) == earlier  # the earlier run's results.json and its other files are untouched
        assert leftovers(out) == []
    assert rows == total

    resumed = run_process([*args, "--out", str(out), "--cache", str(cache)])
    assert resumed.returncode == 0, resumed.stderr
    execution = json.loads((out / "run.json").read_text())
    assert (execution["cache_hits"], execution["scored"]) == (total, 0)
    assert (out / "results.json").read_bytes() == (tmp_path / "ref" / "results.json").read_bytes()
    assert_complete(out)
    assert cache_health(cache) == {"integrity": "ok", "journal_mode": "wal", "rows": total, "distinct": total}


def _wait_for_rows(cache: Path, more_than: int, process, timeout_s: float = 300.0) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = cache_rows(cache)
        if rows > more_than:
            return rows
        assert process.poll() is None, f"run ended before scoring anything: {process.communicate()[1]}"
        time.sleep(0.02)
    raise AssertionError(f"no new cache rows within {timeout_s}s")


def test_sigkill_at_random_times_from_outside_then_resume_is_byte_identical(tmp_path: Path, monkeypatch) -> None:
    """The parent kills the run at seeded random delays after it has cached something new. The engine sleeps
    40 ms per batch (150 batches: ≥ 6 s of scoring), and the three delays (≤ 1.2 s each) always land in it."""
    import rmbench.engines
    from rmbench.cli import main
    from tests._reliability import TEST_ENGINES

    args = [*SUITE, "--engine", "slow-random", "--limit", "30"]
    monkeypatch.setattr(rmbench.engines, "ENGINES", rmbench.engines.ENGINES.extended(TEST_ENGINES))
    assert main(["run", "--no-progress", *args, "--out", str(tmp_path / "ref"),
                 "--cache", str(tmp_path / "ref.sqlite")]) == 0  # reference: uninterrupted, no sleep

    out, cache = tmp_path / "run", tmp_path / "cache.sqlite"
    earlier = _earlier_run(out, engine="random")
    delays = random.Random(20240611).sample([x / 100 for x in range(5, 121)], 3)
    rows = cache_rows(cache)
    for delay in delays:
        process = launch([*args, "--out", str(out), "--cache", str(cache)], {SLEEP_ENV: "0.04"})
        rows = _wait_for_rows(cache, rows, process)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        code, stderr = finish(process)
        assert code == KILLED, f"run finished before the kill at +{delay}s: {stderr}"
        assert cache_rows(cache) >= rows
        rows = cache_rows(cache)
        assert snapshot(out) == earlier
        assert leftovers(out) == []
    assert rows < 150  # the kills really interrupted scoring

    code, stderr = finish(launch([*args, "--out", str(out), "--cache", str(cache)]))
    assert code == 0, stderr
    assert json.loads((out / "run.json").read_text())["scored"] == 150 - rows  # resumed from what was cached
    assert (out / "results.json").read_bytes() == (tmp_path / "ref" / "results.json").read_bytes()
    assert_complete(out)
    health = cache_health(cache)
    assert (health["integrity"], health["rows"], health["distinct"]) == ("ok", 150, 150)


#: A run directory's write points: its five files fsynced in the staging directory (1-5), the staging directory
#: (6), then the parent after the swap (7).
RUN_DIR_FSYNCS = 7


def test_sigkill_at_every_write_point_of_the_run_directory_leaves_the_old_run_or_the_new_one(tmp_path: Path) -> None:
    """SIGKILLed at each fsync of publishing its run directory, ``rmbench run`` leaves the earlier run whole
    (killed while the new one is built aside) or the new run whole (killed after the swap): never results.json
    beside another run's scores or items. The next run sweeps what the killed one left beside the directory."""
    import shutil

    args = [*SUITE, "--engine", "random", "--limit", "8"]
    reference = run_process([*args, "--out", str(tmp_path / "ref"), "--cache", str(tmp_path / "ref.sqlite")])
    assert reference.returncode == 0, reference.stderr
    new = snapshot(tmp_path / "ref")

    out, cache = tmp_path / "run", tmp_path / "cache.sqlite"
    earlier = _earlier_run(out, engine="random")
    for fsync_call in range(1, RUN_DIR_FSYNCS + 1):
        code, stderr = finish(launch([*args, "--out", str(out), "--cache", str(cache)], {KILL_AT_FSYNC_ENV: str(fsync_call)}))
        assert code == KILLED, f"not killed at fsync {fsync_call}: {stderr}"
        seen = snapshot(out)
        if fsync_call < RUN_DIR_FSYNCS:
            assert seen == earlier, f"the earlier run changed after a kill at fsync {fsync_call}"
        else:  # the swap happened: all of the new run (run.json holds times and paths, so only the rest compares)
            assert {k: v for k, v in seen.items() if k != "run.json"} == {k: v for k, v in new.items() if k != "run.json"}
            assert_complete(out)
        assert leftovers(out) == []
        shutil.rmtree(out)
        out.mkdir()
        for name, data in earlier.items():
            (out / name).write_bytes(data)

    # Armed one fsync past the last write point, the next run is not killed (every write point was covered).
    code, stderr = finish(launch([*args, "--out", str(out), "--cache", str(cache)], {KILL_AT_FSYNC_ENV: str(RUN_DIR_FSYNCS + 1)}))
    assert code == 0, stderr
    assert (out / "results.json").read_bytes() == (tmp_path / "ref" / "results.json").read_bytes()
    assert_complete(out)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".run.")) == []  # staging swept


# --- atomic writes, in-process ----------------------------------------------------------------------------------------


def test_a_run_failing_while_writing_leaves_no_file_changed_and_no_temporary_file(tmp_path: Path, monkeypatch) -> None:
    import rmbench.results.rundir
    from rmbench.cli import main

    args = ["run", "--no-progress", "--suite", "math-robustness", "--engine", "length", "--force", "--cache", str(tmp_path / "c")]
    out = tmp_path / "run"
    assert main([*args, "--limit", "3", "--out", str(out)]) == 0
    earlier = snapshot(out)

    def broken_report(document: dict) -> str:  # fails after scores.parquet and items.parquet were written
        raise OSError("disk full")

    monkeypatch.setattr(rmbench.results.rundir, "markdown_report", broken_report)
    assert main([*args, "--limit", "4", "--out", str(out)]) == 2  # exit 1 is only ever a gate's regression
    assert snapshot(out) == earlier
    assert leftovers(out) == []


def test_result_files_get_the_usual_permissions_not_private_temporary_ones(tmp_path: Path) -> None:
    """Atomic writes must not leak their temporary file's mode: results are read by other users and web servers."""
    import os

    from rmbench.atomic import write_json

    previous = os.umask(0o022)
    try:
        write_json(tmp_path / "results.json", {"a": 1})
    finally:
        os.umask(previous)
    assert (tmp_path / "results.json").stat().st_mode & 0o777 == 0o644


def test_a_killed_writers_temporaries_are_swept_and_a_live_writers_are_kept(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from rmbench.atomic import write_json

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".results.json.{int(dead.stdout)}.0badc0de.tmp"
    live = tmp_path / f".results.json.{os.getppid()}.0badc0de.tmp"  # our parent: alive for the whole test
    other = tmp_path / f".run.json.{int(dead.stdout)}.0badc0de.tmp"  # another target's: not this write's business
    for path in (stale, live, other):
        path.write_text("partial")
    write_json(tmp_path / "results.json", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name, "results.json"])
