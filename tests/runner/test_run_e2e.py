"""End to end: `rmbench run` on real data with a tiny random Llama RM, the cache, kill-and-resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rmbench.devtools.tiny_models import build_tiny_llama_classifier
from tests._shared import SHARED_DATA, shared_path
from tests.helpers import read_json, run_cli, run_process


@pytest.fixture(scope="module")
def tiny_rm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny-llama-rm")
    build_tiny_llama_classifier(path, seed=0)
    return path


def test_rm_bench_chat_tiny_llama_then_served_from_cache(tiny_rm: Path, tmp_path: Path, monkeypatch) -> None:
    shared_path("rm_bench/chat_filtered.json")
    cache = tmp_path / "cache.sqlite"
    common = ["--suite", "rm-bench-chat", "--model", str(tiny_rm), "--data-dir", str(SHARED_DATA), "--cache", str(cache)]
    assert run_cli(*common, "--out", str(tmp_path / "first")) == 0
    first = read_json(tmp_path / "first" / "results.json")
    assert first["counts"]["items"] == 129
    assert first["counts"]["requests"] == 129 * 6
    assert first["counts"]["padding_efficiency"] >= 0.9
    names = {(m["scope"], m["name"]) for m in first["metrics"]}
    assert {("overall", "hard"), ("overall", "normal"), ("overall", "easy")} <= names

    # The second identical run must not run the model at all.
    import rmbench.engines.hf as hf

    def no_forward(*args, **kwargs):
        raise AssertionError("model forward called on a fully cached run")

    monkeypatch.setattr(hf.HFClassifierEngine, "score", no_forward)
    assert run_cli(*common, "--out", str(tmp_path / "second")) == 0
    execution = json.loads((tmp_path / "second" / "run.json").read_text())
    assert execution["cache_hits"] == first["counts"]["unique_requests"]
    assert execution["scored"] == 0
    assert (tmp_path / "first" / "results.json").read_bytes() == (tmp_path / "second" / "results.json").read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [1, 3])
def test_sigkill_mid_run_then_resume_gives_identical_results(tiny_rm: Path, tmp_path: Path, kill_after: int) -> None:
    common = ["--suite", "math-robustness", "--model", str(tiny_rm), "--batch-tokens", "256", "--limit", "12"]
    reference = run_process([*common, "--cache", str(tmp_path / "ref.sqlite"), "--out", str(tmp_path / "ref")])
    assert reference.returncode == 0, reference.stderr

    cache = tmp_path / "killed.sqlite"
    out = tmp_path / "killed"
    killed = run_process([*common, "--cache", str(cache), "--out", str(out)], {"RMBENCH_FAULT_KILL_AFTER_BATCHES": str(kill_after)})
    assert killed.returncode == -9
    assert not (out / "results.json").exists()
    assert not [p for p in out.glob(".*.tmp")] if out.exists() else True

    resumed = run_process([*common, "--cache", str(cache), "--out", str(out)])
    assert resumed.returncode == 0, resumed.stderr
    # The scores.parquet the killed (streamed) run was writing beside the cache is swept by the next run.
    assert not list(cache.parent.glob(".streamed-scores.parquet.*.tmp"))
    execution = json.loads((out / "run.json").read_text())
    assert execution["cache_hits"] > 0  # the killed run's batches were kept
    assert (out / "results.json").read_bytes() == (tmp_path / "ref" / "results.json").read_bytes()


def test_bad_suite_exits_2_and_keeps_earlier_results(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run_cli("--suite", "math-robustness", "--engine", "length", "--out", str(out), "--cache", str(tmp_path / "c")) == 0
    before = (out / "results.json").read_bytes()
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nprotocol: pairwize\nsources: []\n")
    assert run_cli("--suite", str(bad), "--engine", "length", "--out", str(out), "--cache", str(tmp_path / "c")) == 2
    assert (out / "results.json").read_bytes() == before
