"""A model spec with ``trust_remote_code: true`` runs code from the model's repository: the run says so on stderr
and results.json records it (issue 15)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests._reliability import pair
from tests.helpers import cli, write_suite


def test_trust_remote_code_is_announced_and_recorded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = write_suite(tmp_path / "suite", [pair(i) for i in range(3)], name="trust")
    spec = tmp_path / "model.yaml"
    spec.write_text("model: \"\"\nengine: length\ntrust_remote_code: true\n")
    out = tmp_path / "out"
    assert cli(["run", "--no-progress", "--suite", str(suite), "--spec", str(spec), "--cache",
                str(tmp_path / "c.sqlite"), "--out", str(out)]) == 0
    assert "trust_remote_code: true" in capsys.readouterr().err
    assert json.loads((out / "results.json").read_text())["model"]["spec"]["trust_remote_code"] is True
