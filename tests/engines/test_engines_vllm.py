"""The vLLM engine against the hf engine on tiny random models: same scores (fp32, 1e-4), per-step scores of a
process RM, reward index and activation, batch independence, the prefix cache, the scheduler path and the errors.

vLLM runs in a worker process (tests/engines/vllm_worker.py) once per session; hf runs here on the same requests. These tests
need the vllm-cpu extra and are skipped only where vLLM is not installed at all.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rmbench.devtools.tiny_models import STEP_TAG
from rmbench.engines import create_engine
from rmbench.errors import ModelSpecError
from rmbench.modelspec import ModelSpec
from rmbench.requests import ScoreRequest
from tests.engines.vllm_worker import MAX_LENGTH, PRM_REQUESTS, REQUESTS, run_args

TOLERANCE = 1e-4  # fp32, the bar; measured differences are ~1e-6
WORKER = Path(__file__).with_name("vllm_worker.py")
HAS_VLLM = importlib.util.find_spec("vllm") is not None



def vllm_env() -> dict[str, str]:
    """Small and offline: a 1 GiB KV cache, no usage reporting, no hub."""
    return os.environ | {
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


@pytest.fixture(scope="module")
def worker(tiny_rm: Path, tiny_rm_two_labels: Path, tiny_prm: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("vllm-worker") / "results.json"
    command = [sys.executable, str(WORKER), str(out), "--rm", str(tiny_rm), "--rm2", str(tiny_rm_two_labels)]
    command += ["--prm", str(tiny_prm)]
    env = vllm_env() | {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-6000:]
    return json.loads(out.read_text(encoding="utf-8"))


def hf_scores(path: Path, requests: list[ScoreRequest], **options: Any) -> list[dict[str, Any]]:
    engine = create_engine(ModelSpec(model=str(path), max_length=MAX_LENGTH, **options))
    return [
        {"value": s.value, "steps": list(s.steps), "n_tokens": s.n_tokens, "truncated": s.truncated}
        for s in engine.score(engine.encode(requests))
    ]


def max_diff(a: list[dict[str, Any]], b: list[dict[str, Any]], field: str = "value") -> float:
    """Largest |difference|; NaN must sit in the same places on both sides."""
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        xs = x[field] if field == "steps" else [x[field]]
        ys = y[field] if field == "steps" else [y[field]]
        assert len(xs) == len(ys)
        for u, v in zip(xs, ys):
            assert math.isnan(u) == math.isnan(v), (u, v)
            if not math.isnan(u):
                worst = max(worst, abs(u - v))
    return worst


@pytest.mark.vllm
@pytest.mark.slow  # the worker takes ~40 s on 2 cores: six model loads and two runs, shared by all these tests
@pytest.mark.skipif(not HAS_VLLM, reason="vLLM is not installed (extra vllm-cpu)")
class TestVLLMEngine:
    def test_classifier_scores_match_hf(self, worker: dict[str, Any], tiny_rm: Path) -> None:
        hf = hf_scores(tiny_rm, REQUESTS)
        vllm = worker["classifier"]["batched"]
        assert max_diff(hf, vllm) < TOLERANCE
        # Same tokens in both engines: the hf engine's template, tokenization and truncation are used.
        assert [s["n_tokens"] for s in vllm] == [s["n_tokens"] for s in hf]
        assert [s["truncated"] for s in vllm] == [s["truncated"] for s in hf]
        assert any(s["truncated"] for s in vllm)
        assert max(s["value"] for s in vllm) - min(s["value"] for s in vllm) > 0.05  # not a degenerate model

    def test_score_does_not_depend_on_the_batch(self, worker: dict[str, Any]) -> None:
        result = worker["classifier"]
        assert max_diff(result["alone"], result["batched"]) < 1e-5
        assert max_diff(result["scheduled"], result["batched"]) < 1e-5
        assert result["scheduled_batches"] > 1

    def test_cached_scores_are_read_back_under_the_vllm_fingerprint(self, worker: dict[str, Any], tiny_rm: Path) -> None:
        result = worker["classifier"]
        assert result["second_run_cache_hits"] == len({r.key for r in REQUESTS})
        from rmbench.engines.hf import HFClassifierEngine

        hf_fingerprint = HFClassifierEngine.fingerprint_of(ModelSpec(model=str(tiny_rm), max_length=MAX_LENGTH))
        assert result["fingerprint"] != hf_fingerprint  # vLLM and hf scores never share cache entries
        assert result["fingerprint"] == result["fingerprint_of"]  # computable before the engine is built
        assert result["default_batch_tokens"] == result["default_batch_tokens_of"]

    def test_prefix_cache_is_on_and_serves_the_shared_prompt(self, worker: dict[str, Any]) -> None:
        info = worker["classifier"]["info"]
        assert info["prefix_caching"] is True
        assert info["prefix_cache_hit_tokens"] > 0
        assert worker["classifier"]["batched_cache_hits"] > 0  # already within the first call's batch
        assert info["dtype"] == "float32" and info["device"] == "cpu"  # auto on CPU
        assert info["pooling_task"] == "classify" and info["vllm"]
        assert worker["classifier"]["default_batch_tokens"] >= 8192

    def test_reward_index_and_activation_are_honoured(self, worker: dict[str, Any], tiny_rm_two_labels: Path) -> None:
        hf = hf_scores(tiny_rm_two_labels, REQUESTS, reward_index=1, activation="sigmoid")
        vllm = worker["two_labels"]["batched"]
        assert max_diff(hf, vllm) < TOLERANCE
        assert all(0.0 < s["value"] < 1.0 for s in vllm)

    def test_process_rm_step_scores_match_hf(self, worker: dict[str, Any], tiny_prm: Path) -> None:
        result = worker["process"]
        assert result["class"] == "VLLMProcessEngine" and result["fingerprint_matches"]
        assert result["info"]["pooling_task"] == "token_classify"
        assert result["info"]["prefix_caching"] is False  # all-token pooling: every row computed
        hf = hf_scores(tiny_prm, PRM_REQUESTS, step_tag=STEP_TAG)
        vllm = result["batched"]
        assert max_diff(hf, vllm, "steps") < TOLERANCE
        assert max_diff(hf, vllm, "value") < TOLERANCE
        assert [len(s["steps"]) for s in vllm] == [len(r.steps) for r in PRM_REQUESTS]
        truncated = vllm[-1]
        assert truncated["truncated"] and math.isnan(truncated["steps"][0]) and not math.isnan(truncated["steps"][-1])

    def test_process_rm_passes_the_parity_check(self, worker: dict[str, Any]) -> None:
        parity = worker["process_parity"]
        assert parity["passed"], parity["per_request"]
        assert parity["max_abs_diff"] < TOLERANCE and parity["n_requests"] >= 16
        assert parity["engine_info"]["candidate"]["pooling_task"] == "token_classify"

    def test_hidden_states_are_refused_with_a_clear_error(self, worker: dict[str, Any]) -> None:
        message = worker["classifier"]["hidden_error"]
        assert "hidden states" in message and "--engine hf" in message

    @pytest.mark.parametrize("name", ["run_classifier", "run_process", "run_process_steps"])
    def test_run_with_vllm_gives_the_hf_metrics_and_records_parity(
        self, worker: dict[str, Any], name: str, tiny_rm: Path, tiny_prm: Path, tmp_path: Path
    ) -> None:
        from rmbench.cli import main

        run = worker[name]
        assert run["exit_code"] == 0
        vllm = json.loads((Path(run["out"]) / "results.json").read_text(encoding="utf-8"))
        model, extra = (tiny_rm, ()) if name == "run_classifier" else (tiny_prm, ("--step-tag", STEP_TAG))
        suite = "math-robustness-steps" if name == "run_process_steps" else "math-robustness"  # step_level protocol
        assert main(run_args(str(model), tmp_path / "hf", "hf", *extra, suite=suite)) == 0
        hf = json.loads((tmp_path / "hf" / "results.json").read_text(encoding="utf-8"))
        # Same items, same per-item outcomes, so the same metrics and bootstrap intervals.
        assert vllm["metrics"] == hf["metrics"]
        planned = ("padded_tokens", "padding_efficiency")  # from each engine's own default token budget
        assert {k: v for k, v in vllm["counts"].items() if k not in planned} == {
            k: v for k, v in hf["counts"].items() if k not in planned
        }
        assert vllm["model"]["engine"]["backend"] == "vllm" and "parity" not in hf["model"]
        parity = vllm["model"]["parity"]
        candidate = "vllm" if name == "run_classifier" else "vllm-prm"  # a step tag names the process engine
        assert parity["reference"] == "hf" and parity["candidate"] == candidate and parity["dtype"] == "float32"
        assert parity["passed"] and parity["max_abs_diff"] < TOLERANCE and parity["n_requests"] >= 16
        assert "engine_info" not in parity  # the engine section has it


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.skipif(not HAS_VLLM, reason="vLLM is not installed (extra vllm-cpu)")
def test_check_engine_command_passes_with_vllms_default_multiprocessing(tiny_rm: Path) -> None:
    """`python -m rmbench check-engine` as users run it: vLLM's engine core in its own process."""
    command = [sys.executable, "-m", "rmbench", "check-engine", "--model", str(tiny_rm), "--json"]  # no truncation
    done = subprocess.run(command, env=vllm_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-6000:]
    report = json.loads(done.stdout)
    assert report["passed"] and report["max_abs_diff"] < TOLERANCE and report["n_requests"] >= 16
    info = report["engine_info"]["candidate"]
    assert info["backend"] == "vllm" and info["pooling_task"] == "classify" and info["prefix_caching"] is True
    assert info["prefix_cache_hit_tokens"] > 0  # the canary's shared long prompt was computed once


def test_parity_diff_treats_nan_and_length_mismatch_strictly() -> None:
    from rmbench.runner.parity import ParityReport, RequestDiff

    same_nan = RequestDiff("a", (5, 5), (float("nan"), 1.0), (float("nan"), 1.00002))
    assert same_nan.diff == pytest.approx(2e-5)
    assert RequestDiff("b", (5, 5), (float("nan"),), (0.0,)).diff == math.inf
    assert RequestDiff("c", (5, 6), (1.0,), (1.0,)).diff == math.inf  # different tokens: never a pass
    report = ParityReport(("hf", "vllm"), "float32", 1e-4, (same_nan,), ({}, {}))
    assert report.passed and report.as_dict()["max_abs_diff"] == pytest.approx(2e-5)
    failing = ParityReport(("hf", "vllm"), "float32", 1e-4, (same_nan, RequestDiff("b", (1, 1), (0.0,), (1.0,))), ({}, {}))
    assert not failing.passed and failing.as_dict(engine_info=False)["per_request"][1]["abs_diff"] == 1.0
    assert not ParityReport(("hf", "vllm"), "float32", 1e-4, (), ({}, {})).passed


def test_parity_is_recorded_only_for_vllm_runs() -> None:
    from rmbench.runner.parity import run_parity

    assert run_parity(ModelSpec(model="any-model", engine="hf")) is None
    assert run_parity(ModelSpec(model="any-model", engine="length")) is None


def test_missing_vllm_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)
    monkeypatch.setitem(sys.modules, "vllm.platforms", None)
    with pytest.raises(ModelSpecError, match=r"rmbench\[vllm-cpu\]"):
        create_engine(ModelSpec(model="any-model", engine="vllm"))


def test_an_engine_core_start_failure_names_its_fix() -> None:
    """Both vLLM loaders (engines and generator/log-prob LLMs) append this hint to the load error."""
    from rmbench.engines.devices import vllm_start_hint

    hint = vllm_start_hint(RuntimeError("Engine core initialization failed. See root cause above."))
    assert 'if __name__ == "__main__":' in hint and "VLLM_ENABLE_V1_MULTIPROCESSING=0" in hint
    assert vllm_start_hint(OSError("model not found")) == ""


def test_vllm_engines_are_registered() -> None:
    from rmbench.engines import ENGINES

    assert ENGINES.entry("vllm").target == "rmbench.engines.vllm:VLLMClassifierEngine"
    assert ENGINES.entry("vllm-prm").target == "rmbench.engines.vllm_prm:VLLMProcessEngine"


def test_check_engine_exits_1_when_engines_disagree(tiny_rm: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The command's failing path, without vLLM: the length baseline is no stand-in for the model."""
    from rmbench.cli import main

    code = main(["check-engine", "--model", str(tiny_rm), "--engine", "length", "--max-length", "256", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and not report["passed"] and report["candidate"] == "length"
    assert report["n_requests"] == len(report["per_request"]) >= 16
