"""Cache faults (issue 15): a corrupt or read-only score cache is a named error (exit 2), never a traceback; a
read-only cache that already holds every score still serves the run."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from rmbench import cache as cache_module
from rmbench.cache import ScoreCache
from tests._reliability import pair
from tests.helpers import cli, write_suite


def _run(suite: Path, cache: Path, out: Path) -> int:
    return cli(["run", "--no-progress", "--suite", str(suite), "--engine", "length", "--cache", str(cache),
                "--out", str(out)])


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    return write_suite(tmp_path / "suite", [pair(i) for i in range(6)], name="cachefaults")


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_cache_is_named_with_what_to_do(
    damage: str, suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "scores.sqlite"
    if damage == "garbage":
        cache.write_bytes(b"this is not an SQLite database\n" * 200)
    else:
        assert _run(suite, cache, tmp_path / "first") == 0
        with sqlite3.connect(cache) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        data = cache.read_bytes()
        cache.write_bytes(data[: len(data) // 2])
        for side in ("-wal", "-shm"):
            Path(f"{cache}{side}").unlink(missing_ok=True)
    capsys.readouterr()
    code = _run(suite, cache, tmp_path / "out")
    err = capsys.readouterr().err
    assert code == 2, err
    assert str(cache) in err and "corrupt" in err and "move it aside" in err and "Traceback" not in err


def _as_read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache this process may not write. As root, file modes do not stop SQLite, so the refusal is simulated
    where it happens (opening for writing); the read-only fallback is the real one."""
    if os.geteuid() != 0:
        return

    def refuse(path: Path, timeout_s: float) -> sqlite3.Connection:
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(ScoreCache, "_open_writable", staticmethod(refuse))


def test_read_only_cache_serves_a_fully_cached_run(
    suite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "ro" / "scores.sqlite"
    assert _run(suite, cache, tmp_path / "first") == 0
    with sqlite3.connect(cache) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    cache.chmod(0o444)
    cache.parent.chmod(0o555)
    try:
        _as_read_only(monkeypatch)
        assert ScoreCache(cache).read_only
        assert _run(suite, cache, tmp_path / "again") == 0
        assert (tmp_path / "again" / "results.json").read_bytes() == (tmp_path / "first" / "results.json").read_bytes()

        bigger = write_suite(tmp_path / "bigger", [pair(i) for i in range(9)], name="cachefaults")
        capsys.readouterr()
        assert _run(bigger, cache, tmp_path / "more") == 2
        err = capsys.readouterr().err
        assert "read-only" in err and str(cache) in err and "Traceback" not in err
    finally:
        cache.parent.chmod(0o755)
        cache.chmod(0o644)


def test_integrity_check_reports_a_sound_cache(tmp_path: Path) -> None:
    with ScoreCache(tmp_path / "c.sqlite") as cache:
        assert cache.integrity_problems() == []
    assert cache_module.CacheError.exit_code == 2


def test_cache_verify_catches_a_tampered_score(suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache, run = tmp_path / "scores.sqlite", tmp_path / "run"
    assert _run(suite, cache, run) == 0
    capsys.readouterr()
    assert cli(["cache", "verify", "--cache", str(cache), "--run", str(run), "--sample", "50"]) == 0
    assert "integrity check: ok" in capsys.readouterr().out
    with sqlite3.connect(cache) as db:
        db.execute("UPDATE scores SET value = value + 1 WHERE request = (SELECT MIN(request) FROM scores)")
    assert cli(["cache", "verify", "--cache", str(cache), "--run", str(run), "--sample", "50"]) == 1
    out = capsys.readouterr().out
    assert "1 differ" in out and "stale or was edited" in out
    assert cli(["cache", "verify", "--cache", str(tmp_path / "missing.sqlite")]) == 2
