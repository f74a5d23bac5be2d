"""Runs the vLLM engines in a process of their own for tests/engines/test_engines_vllm.py and writes what they returned as
JSON: ``python tests/engines/vllm_worker.py OUT.json --rm PATH --rm2 PATH --prm PATH``; the end-to-end runs' directories
are written next to OUT.json.

vLLM changes process-wide state when it starts (OpenMP thread binding, NUMA memory policy, environment variables) and
starts its engine core with the spawn method, which needs a ``__main__`` guard; a worker process keeps all of that out
of pytest. The test runs it with ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` (the engine core in this process: seconds per
model instead of a spawned process that imports vLLM again); the check-engine test runs ``python -m rmbench`` with
vLLM's default, multiprocess, the way users run it.

The requests live here so that the test scores the very same ones with hf.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rmbench.devtools.tiny_models import EOS, STEP_TAG
from rmbench.items import user_turn
from rmbench.modelspec import ModelSpec
from rmbench.requests import Score, ScoreRequest

MAX_LENGTH = 256  # small: a short KV cache, quick loads, and the long requests below are truncated
RUN_LIMIT = 8  # math-robustness problems in the end-to-end runs (5 solutions each)

_LONG_PROMPT = "Explain, with care and an example, why the sky is blue and sunsets are red. " * 6

REQUESTS = [
    ScoreRequest(user_turn("What is the capital of France?"), "Paris."),
    ScoreRequest(user_turn("What is the capital of France?"), "The capital of France is Paris, a city on the Seine."),
    # eos (== pad) inside the text and at its end: both engines must read the last token, not the first eos.
    ScoreRequest(user_turn("Say something."), f"First part{EOS} and the part after the end token."),
    ScoreRequest(user_turn("Say something."), f"It ends with the end token{EOS}"),
    ScoreRequest(
        (("system", "Be brief."), ("user", "Explain why the sky is blue."), ("assistant", "Rayleigh."), ("user", "More?")),
        "Shorter wavelengths scatter more strongly off air molecules, so blue light reaches us from every direction. "
        * 4,  # longer than MAX_LENGTH: truncated on the left by both engines
    ),
    ScoreRequest(user_turn("Add."), "5"),
    # One long prompt, several responses: vLLM's prefix cache serves the prompt after the first.
    *(ScoreRequest(user_turn(_LONG_PROMPT), response) for response in ("Rayleigh scattering.", "Dust.", "I do not know.")),
]

PRM_REQUESTS = [
    ScoreRequest(user_turn("Add 2 and 3."), "", steps=("Step 1: 2 + 3.", "Step 2: that is 5.")),
    ScoreRequest(user_turn("Solve 3x + 4 = 19."), "", steps=("3x = 15.", "x = 5.", "Check: 19.")),
    # A step tag inside the prompt is not a step.
    ScoreRequest(user_turn(f"Mark steps with {STEP_TAG} please."), "", steps=("One.", "Two.")),
    # Long first steps: left truncation cuts their tags away, so they score NaN in both engines.
    ScoreRequest(user_turn("Count."), "", steps=("a long first step " * 40, "a long second step " * 40, "last.")),
]


def _scores(scores: list[Score]) -> list[dict[str, Any]]:
    return [{"value": s.value, "steps": list(s.steps), "n_tokens": s.n_tokens, "truncated": s.truncated} for s in scores]


def classifier(path: str) -> dict[str, Any]:
    """Batched and one-at-a-time scores, the scheduler path through the cache, hidden states refused, info."""
    import tempfile

    from rmbench.cache import ScoreCache
    from rmbench.engines import create_engine
    from rmbench.errors import ModelSpecError
    from rmbench.scoring import score_requests

    engine = create_engine(ModelSpec(model=path, engine="vllm", max_length=MAX_LENGTH))
    encoded = engine.encode(REQUESTS)
    batched = engine.score(encoded)
    batched_cache_hits = engine.cached_prompt_tokens  # within one score call: the shared prompt computed once
    alone = [engine.score([e])[0] for e in encoded]
    try:
        engine.score(encoded[:1], hidden=True)
        hidden_error = ""
    except ModelSpecError as exc:
        hidden_error = str(exc)
    with tempfile.TemporaryDirectory() as tmp, ScoreCache(Path(tmp) / "scores.sqlite") as cache:
        scheduled, first = score_requests(REQUESTS, engine, cache, token_budget=200, show_progress=False)
        _, second = score_requests(REQUESTS, engine, cache, show_progress=False)
    result = {
        "class": type(engine).__name__,
        "fingerprint": engine.fingerprint,
        "fingerprint_of": type(engine).fingerprint_of(engine.spec),
        "default_batch_tokens": engine.default_batch_tokens,
        "default_batch_tokens_of": type(engine).default_batch_tokens_of(engine.spec),
        "batched": _scores(batched),
        "alone": _scores(alone),
        "scheduled": _scores([scheduled[r.key] for r in REQUESTS]),
        "scheduled_batches": first.batches,
        "second_run_cache_hits": second.cache_hits,
        "hidden_error": hidden_error,
        "batched_cache_hits": batched_cache_hits,
        "info": engine.info(),
    }
    engine.close()
    return result


def two_labels(path: str) -> dict[str, Any]:
    """The second label through a sigmoid: spec.reward_index and spec.activation are honoured."""
    from rmbench.engines import create_engine

    engine = create_engine(ModelSpec(model=path, engine="vllm", max_length=MAX_LENGTH, reward_index=1, activation="sigmoid"))
    result = {"batched": _scores(engine.score(engine.encode(REQUESTS)))}
    engine.close()
    return result


def process(path: str) -> dict[str, Any]:
    """Per-step scores through the plain engine name (a step tag makes the spec's engine "vllm-prm")."""
    from rmbench.engines import create_engine

    engine = create_engine(ModelSpec(model=path, engine="vllm", max_length=MAX_LENGTH, step_tag=STEP_TAG))
    result = {
        "class": type(engine).__name__,
        "fingerprint_matches": engine.fingerprint == type(engine).fingerprint_of(engine.spec),
        "batched": _scores(engine.score(engine.encode(PRM_REQUESTS))),
        "info": engine.info(),
    }
    engine.close()
    return result


def process_parity(path: str) -> dict[str, Any]:
    """rmbench.runner.parity on the built-in canary, for a process RM (hf and vLLM both in this process)."""
    from rmbench.runner.parity import check_engines

    return check_engines(ModelSpec(model=path, max_length=MAX_LENGTH, step_tag=STEP_TAG)).as_dict()


def run_args(path: str, out: Path, engine: str, *extra: str, suite: str = "math-robustness") -> list[str]:
    """`rmbench run` on a few generated math-robustness problems (steps are there for a process RM); the
    step-level view (``math-robustness-steps``) for the step_level protocol."""
    return [
        "run", "--no-progress", "--suite", suite, "--limit", str(RUN_LIMIT), "--model", path,
        "--engine", engine, "--max-length", str(MAX_LENGTH), "--out", str(out), "--cache", str(out / "cache.sqlite"),
        *extra,
    ]  # fmt: skip


def cli_run(path: str, out: Path, *extra: str, suite: str = "math-robustness") -> dict[str, Any]:
    """`rmbench run --engine vllm` in this process; the test reads the run directory."""
    from rmbench.cli import main

    return {"exit_code": main(run_args(path, out, "vllm", *extra, suite=suite)), "out": str(out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--rm", required=True)
    parser.add_argument("--rm2", required=True)
    parser.add_argument("--prm", required=True)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    timings = {}
    runs = args.out.parent
    for name, run, path in (
        ("classifier", classifier, args.rm),
        ("two_labels", two_labels, args.rm2),
        ("process", process, args.prm),
        ("process_parity", process_parity, args.prm),
        ("run_classifier", lambda p: cli_run(p, runs / "run-rm"), args.rm),
        ("run_process", lambda p: cli_run(p, runs / "run-prm", "--step-tag", STEP_TAG), args.prm),
        (
            "run_process_steps",
            lambda p: cli_run(p, runs / "run-prm-steps", "--step-tag", STEP_TAG, suite="math-robustness-steps"),
            args.prm,
        ),
    ):
        clock = time.perf_counter()
        results[name] = run(path)
        timings[name] = round(time.perf_counter() - clock, 1)
    results["timings_s"] = timings
    args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
