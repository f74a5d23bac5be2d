"""Ctrl-C (issue 15): exit 130 with what was kept ("N of M scores ... cached") and how to resume."""

from __future__ import annotations

from pathlib import Path

import pytest

from rmbench.engines.baseline import LengthEngine
from tests._reliability import pair
from tests.helpers import cli, write_suite


def test_interrupt_says_what_was_cached_and_how_to_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = write_suite(tmp_path / "suite", [pair(i) for i in range(5)], name="interrupt")
    cache = tmp_path / "c.sqlite"

    def interrupted(self: LengthEngine, batch: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(LengthEngine, "score", interrupted)
    code = cli(["run", "--no-progress", "--suite", str(suite), "--engine", "length", "--cache", str(cache),
                "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 130
    assert "0 of 10 scores" in err and str(cache) in err and "run the same command again" in err
    assert not (tmp_path / "out").exists()
