"""Runs the vLLM judge and DPO engines in a process of their own for tests/engines/test_judge_dpo_vllm.py and writes what
they returned as JSON: ``python tests/engines/judge_dpo_vllm_worker.py JOB.json OUT.json``.

vLLM changes process-wide state when it starts and spawns its engine core (which needs a ``__main__`` guard), so it
stays out of pytest. The test runs this with ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` (the engine core in this process:
seconds per model). The job file holds the model paths and requests, so the test compares against hf and a direct
computation on exactly the same inputs. Each model is loaded once.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from rmbench.modelspec import ModelSpec
from rmbench.requests import ScoreRequest

MAX_LENGTH = 512


def _requests(rows: list[dict[str, Any]]) -> list[ScoreRequest]:
    return [ScoreRequest(prompt=tuple((r, c) for r, c in row["prompt"]), response=row["response"]) for row in rows]


def dpo(job: dict[str, Any]) -> dict[str, Any]:
    """Per-model response log-probs and rewards from prompt log-probs, batched and one at a time."""
    from rmbench.engines.dpo import DPOOptions, VLLMDPOEngine

    spec = ModelSpec(model=job["policy"], engine="dpo-vllm", max_length=MAX_LENGTH)
    engine = VLLMDPOEngine(spec, DPOOptions(reference_model=job["reference"], beta=job["beta"]))
    encoded = engine.encode(_requests(job["dpo_requests"]))
    inputs = [e.payload for e in encoded]
    result = {
        "policy_logps": engine.response_logprobs(engine.policy, inputs),
        "reference_logps": engine.response_logprobs(engine.reference, inputs),
        "rewards": [s.value for s in engine.score(encoded)],
        "rewards_alone": [engine.score([e])[0].value for e in encoded],
        "fingerprint": engine.fingerprint,
        "fingerprint_of": VLLMDPOEngine.fingerprint_of(
            spec.model_copy(update={"reference_model": job["reference"], "beta": job["beta"]})
        ),
        "info": engine.info(),
    }
    engine.close()
    return result


def judge(job: dict[str, Any]) -> dict[str, Any]:
    """Greedy generations of a random LM as judge (texts, for hf parity) and the NaN scores they parse to."""
    from rmbench.engines.judge import JudgeEngine, VLLMGenerator, VLLMJudgeEngine
    from rmbench.judges import PairRequest, load_template

    spec = ModelSpec(model=job["judge"], engine="judge-vllm", max_length=MAX_LENGTH)
    engine = JudgeEngine(spec, VLLMGenerator(spec), load_template("verdict_only"))
    pairs = [
        PairRequest(prompt=tuple((r, c) for r, c in row["prompt"]), response=row["response"], second=row["second"])
        for row in job["pair_requests"]
    ]
    requests = [*pairs, *_requests(job["point_requests"])]
    encoded = engine.encode(requests)
    texts = engine.generator.generate([e.payload.backend_input for e in encoded], job["max_new_tokens"])
    scores = engine.score(encoded)
    result = {
        "texts": texts,
        "values": [s.value for s in scores],
        "counts": dict(engine.counts),
        "fingerprint_matches": engine.fingerprint
        == VLLMJudgeEngine.fingerprint_of(spec.model_copy(update={"judge_template": "verdict_only"})),
        "info": engine.info(),
    }
    engine.close()
    return result


def cli_run(job: dict[str, Any]) -> dict[str, Any]:
    """`rmbench run --engine judge-vllm` on the test's suite: the exit code (the run directory is read by the test)."""
    from rmbench.cli import main

    return {"exit_code": main(["run", "--no-progress", *job["run_args"]])}


def main() -> None:
    job_path, out_path = map(Path, sys.argv[1:3])
    job = json.loads(job_path.read_text(encoding="utf-8"))
    results: dict[str, Any] = {}
    timings = {}
    for name, run in (("dpo", dpo), ("judge", judge), ("cli_run", cli_run)):
        clock = time.perf_counter()
        results[name] = run(job)
        timings[name] = round(time.perf_counter() - clock, 1)
    results["timings_s"] = timings
    out_path.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
