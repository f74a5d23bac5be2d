"""rmbench.runner.config: one RunConfig for the CLI and the Python API, RMBENCH_* variables honoured by both, the engine
seed apart from the bootstrap seed, and CLI flags that fail in one line naming the flag (exit 2)."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from rmbench.cli import main
from rmbench.modelspec import ModelSpec
from rmbench.runner.config import CHUNK_ITEMS, DEFAULT_CACHE, ConfigError, RunConfig, env_settings
from rmbench.runner.run import RunConfig as RunConfigFromRun
from rmbench.runner.run import run_suite
from tests.helpers import run_to

LENGTH = ModelSpec(model="", engine="length")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CACHE", "DATA_DIR", "CHUNK_ITEMS", "EXECUTOR", "WORKERS", "RAY_ADDRESS", "SHOW_PROGRESS"):
        monkeypatch.delenv(f"RMBENCH_{name}", raising=False)


def test_run_config_is_importable_from_run_for_existing_callers() -> None:
    assert RunConfigFromRun is RunConfig


def test_defaults_then_environment_then_explicit_values(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    plain = RunConfig(suite="s", model=LENGTH)
    assert (plain.cache, plain.chunk_items, plain.executor) == (DEFAULT_CACHE, CHUNK_ITEMS, "local")
    assert plain.data_dir is None
    monkeypatch.setenv("RMBENCH_CACHE", str(tmp_path / "env.sqlite"))
    monkeypatch.setenv("RMBENCH_CHUNK_ITEMS", "7")
    monkeypatch.setenv("RMBENCH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RMBENCH_SHOW_PROGRESS", "0")
    from_env = RunConfig(suite="s", model=LENGTH)
    assert from_env.cache == tmp_path / "env.sqlite" and from_env.chunk_items == 7 and from_env.data_dir == tmp_path
    assert from_env.show_progress is False
    assert RunConfig.model_validate({"suite": "s", "model": LENGTH}).cache == tmp_path / "env.sqlite"
    explicit = RunConfig(suite="s", model=LENGTH, cache=tmp_path / "mine.sqlite", chunk_items=3)
    assert explicit.cache == tmp_path / "mine.sqlite" and explicit.chunk_items == 3


def test_data_dir_variable_is_read_through_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from rmbench.data.sources import data_dir_from

    monkeypatch.setenv("RMBENCH_DATA_DIR", str(tmp_path))
    assert data_dir_from(None) == tmp_path and data_dir_from("elsewhere") == Path("elsewhere")


def test_invalid_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RMBENCH_CHUNK_ITEMS", "0")
    with pytest.raises(ConfigError, match=r"RMBENCH_CHUNK_ITEMS='0': Input should be greater than 0"):
        env_settings()
    with pytest.raises(ConfigError, match="RMBENCH_CHUNK_ITEMS"):
        RunConfig(suite="s", model=LENGTH)


def test_run_config_rejects_unknown_executor_and_bad_metric_options() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"unknown executor 'rya'.*did you mean 'ray'"):
        RunConfig(suite="s", model=LENGTH, executor="rya")
    with pytest.raises(ValidationError, match=r"tie_policy: Input should be 'expected' or 'strict'"):
        RunConfig(suite="s", model=LENGTH, metric_overrides={"tie_policy": "nope"})
    with pytest.raises(ValidationError, match=r"tie_polcy: Extra inputs are not permitted"):
        RunConfig(suite="s", model=LENGTH, metric_overrides={"tie_polcy": "strict"})


def test_python_api_honours_rmbench_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cache = tmp_path / "from-env" / "scores.sqlite"
    monkeypatch.setenv("RMBENCH_CACHE", str(cache))
    monkeypatch.chdir(tmp_path)  # where the default cache would go
    config = RunConfig(suite="math-robustness", model=LENGTH, out=tmp_path / "run", limit=5, show_progress=False)
    outcome = run_suite(config)
    assert cache.is_file() and outcome.execution["cache"] == str(cache)
    assert not (tmp_path / DEFAULT_CACHE).exists()


# --- seeds --------------------------------------------------------------------------------------------------------


def _cli_run(tmp_path: Path, name: str, *flags: str) -> tuple[dict, dict]:
    results, execution = run_to(tmp_path / name, "--suite", "math-robustness", *flags)
    return results, execution.get("execution", execution)


def _overall(results: dict) -> dict:
    return {m["name"]: m for m in results["metrics"] if m["scope"] == "overall"}


def test_bootstrap_seed_changes_cis_and_rescores_nothing(tmp_path: Path) -> None:
    first, _ = _cli_run(tmp_path, "seed0", "--engine", "random", "--seed", "5", "--bootstrap-seed", "0")
    second, execution = _cli_run(tmp_path, "seed1", "--engine", "random", "--seed", "5", "--bootstrap-seed", "1")
    assert execution["scored"] == 0 and execution["cache_hits"] == second["counts"]["unique_requests"]
    assert first["model"]["fingerprint"] == second["model"]["fingerprint"]
    assert (first["metric_options"]["seed"], second["metric_options"]["seed"]) == (0, 1)
    a, b = _overall(first)["accuracy"], _overall(second)["accuracy"]
    assert a["value"] == b["value"] and (a["ci_low"], a["ci_high"]) != (b["ci_low"], b["ci_high"])


def test_engine_seed_is_part_of_the_cache_key_and_not_the_bootstrap_seed(tmp_path: Path) -> None:
    first, _ = _cli_run(tmp_path, "engine5", "--engine", "random", "--seed", "5")
    second, execution = _cli_run(tmp_path, "engine6", "--engine", "random", "--seed", "6")
    assert execution["cache_hits"] == 0 and execution["scored"] == second["counts"]["unique_requests"]
    assert first["model"]["spec"]["seed"] == 5 and second["model"]["spec"]["seed"] == 6
    assert first["metric_options"]["seed"] == second["metric_options"]["seed"] == 0  # the suite's bootstrap seed


# --- flags --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--tie-policy", "nope"], "--tie-policy 'nope': input should be 'expected' or 'strict'"),
        (["--aggregate", "median"], "--aggregate 'median': input should be 'min', 'prod', 'last', 'mean', 'max', 'geometric_mean', 'mean_logit' or 'mean_odd'"),
        (["--limit", "0"], "--limit 0: input should be greater than 0"),
        (["--batch-tokens", "-5"], "--batch-tokens -5: input should be greater than 0"),
        (["--executor", "nope"], "--executor 'nope': unknown executor 'nope'; known: local, ray"),
        (["--dtype", "nope"], "--dtype 'nope': input should be 'auto', 'float32', 'bfloat16' or 'float16'"),
        (["--engine", "lenght"], "--engine 'lenght': unknown engine 'lenght'"),
        (["--gold-model", "x", "--gold-engine", "rnd"], "--gold-engine 'rnd': unknown engine 'rnd'"),
        (["--bootstrap-seed", "x"], "Invalid value for '--bootstrap-seed'"),
    ],
)
def test_bad_flag_exits_2_with_one_line_naming_the_flag(
    flags: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["run", "--suite", "math-robustness", "--engine", "length", "--out", str(tmp_path / "run"), *flags]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and expected in err, err
    assert "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_bad_flag_through_the_installed_entry_point_has_no_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rmbench", "run", "--suite", "math-robustness", "--tie-policy", "nope"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --tie-policy 'nope': input should be 'expected' or 'strict'"


def test_evaluate_scores_bad_flag_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scores = tmp_path / "scores.json"
    scores.write_text("{}")
    assert main(["evaluate-scores", str(scores), "--tie-policy", "nope"]) == 2
    assert "--tie-policy 'nope'" in capsys.readouterr().err


def test_engine_help_names_every_registered_engine() -> None:
    from rmbench.cli.run import run
    from rmbench.engines import ENGINES

    help_text = inspect.signature(run).parameters["engine"].default.help
    assert all(f" {name} " in f" {help_text.replace('|', ' ')} " for name in ENGINES.names())


def test_report_commands_take_bootstrap_seed_and_defaults_from_config() -> None:
    """`--bootstrap-seed` means the same in every command (`--seed` stays an alias where there is no engine)."""
    from rmbench.cli.reports import compare, correlate, gate
    from rmbench.cli.scores import evaluate_scores
    from rmbench.runner.config import BOOTSTRAP_SEED, GATE_ALPHA, GATE_MAX_DROP, PAIRED_RESAMPLES

    for command in (compare, correlate, gate, evaluate_scores):
        option = inspect.signature(command).parameters["seed"].default
        assert option.param_decls[0] == "--bootstrap-seed" and option.default == BOOTSTRAP_SEED
    for command in (compare, correlate, gate):
        assert inspect.signature(command).parameters["resamples"].default.default == PAIRED_RESAMPLES
    gate_options = inspect.signature(gate).parameters
    assert gate_options["max_drop"].default.default == GATE_MAX_DROP
    assert gate_options["alpha"].default.default == GATE_ALPHA
