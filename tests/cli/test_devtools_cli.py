"""`rmbench devtools tiny-model` builds the tiny models the docs use to try engines offline."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rmbench.cli import app, main


def test_tiny_classifier_is_built_and_scores(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["devtools", "tiny-model", str(tmp_path / "rm"), "--kind", "classifier"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "rm" / "config.json").is_file() and "--engine hf" in result.output
    from rmbench.engines import create_engine
    from rmbench.modelspec import ModelSpec

    assert create_engine(ModelSpec(model=str(tmp_path / "rm"))).fingerprint


def test_unknown_kind(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["devtools", "tiny-model", str(tmp_path), "--kind", "prn"]) == 2
    assert "did you mean 'prm'" in capsys.readouterr().err
