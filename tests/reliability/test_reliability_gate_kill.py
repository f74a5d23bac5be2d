"""`rmbench gate` SIGKILLed at each of its write points (issue 15): the fsync of the appended --summary-md, then
the fsync of the staged --junit file. A CI reader then sees no JUnit file (the earlier run's verdict was removed
before anything else) or the complete new one, never a stale or partial verdict; the summary holds what it held
plus, at most, this gate's complete summary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests._reliability import KILL_AT_FSYNC_ENV, ROOT, pair
from tests.helpers import cli, subprocess_env, write_suite

KILLED = -9
#: The summary's fsync (1), then the JUnit file's (2).
GATE_FSYNCS = 2
STALE = '<?xml version="1.0"?><testsuites><testsuite name="an earlier gate" tests="1"/></testsuites>\n'


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("gate-kill")
    records = [pair(i, chosen="A longer, careful answer." * (1 + i % 3), rejected="No." * (1 + i % 4)) for i in range(24)]
    suite = write_suite(root / "suite", records, name="gk")
    for engine in ("length", "random"):
        assert cli(["run", "--no-progress", "--suite", str(suite), "--engine", engine,
                    "--cache", str(root / "c.sqlite"), "--out", str(root / engine)]) == 0
    return root / "length", root / "random"


def _gate(runs: tuple[Path, Path], summary: Path, junit: Path, kill_at: int | None) -> subprocess.CompletedProcess:
    baseline, candidate = runs
    command = [sys.executable, "-m", "tests._reliability", "gate", "--candidate", str(candidate), "--baseline",
               str(baseline), "--min-n", "1", "--summary-md", str(summary), "--junit", str(junit)]
    env = subprocess_env({KILL_AT_FSYNC_ENV: str(kill_at)} if kill_at else None)
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300, env=env)


def test_killed_gate_leaves_no_stale_or_partial_verdict(runs: tuple[Path, Path], tmp_path: Path) -> None:
    reference = _gate(runs, tmp_path / "ref.md", tmp_path / "ref.xml", None)
    assert reference.returncode in (0, 1), reference.stderr
    new_summary, new_junit = (tmp_path / "ref.md").read_text(), (tmp_path / "ref.xml").read_text()

    summary, junit = tmp_path / "summary.md", tmp_path / "gate.xml"
    earlier = "## an earlier step\n"
    for fsync_call in range(1, GATE_FSYNCS + 1):
        summary.write_text(earlier)
        junit.write_text(STALE)
        done = _gate(runs, summary, junit, fsync_call)
        assert done.returncode == KILLED, f"not killed at fsync {fsync_call}: {done.stderr}"
        assert not junit.exists(), f"a JUnit file after a kill at fsync {fsync_call}"  # stale removed, new not in
        assert summary.read_text() in (earlier, earlier + new_summary)
        assert all(p.name.startswith(".") for p in tmp_path.glob("*.tmp"))  # only hidden temporaries

    # Armed one fsync past the last write point, the next gate is not killed: every write point was covered. It
    # writes the whole verdict and sweeps the killed gate's temporary.
    done = _gate(runs, summary, junit, GATE_FSYNCS + 1)
    assert done.returncode == reference.returncode, done.stderr
    assert junit.read_text() == new_junit
    assert not list(tmp_path.glob(".gate.xml.*.tmp"))
