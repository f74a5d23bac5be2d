"""One measurement per fresh process (``run_isolated``), so each scorer's peak RSS is its own.

Every measurement times the scoring only (model loading excluded, tokenizing and chat templating included) and
returns the per-request scores, so the driver can check that all scorers agree.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MAX_LENGTH = 512


def run_isolated(function: str, *, timeout: float | None = None, env: dict[str, str] | None = None,
                 **kwargs: Any) -> dict[str, Any]:
    """Run ``bench.measure.<function>(**kwargs)`` (or ``module:function``) in a fresh Python process, with ``env``
    added to its environment; its result plus that process's peak RSS. A failure (vLLM missing, out of memory, past
    ``timeout`` seconds) comes back as ``{"error": ...}`` instead of ending the benchmark.

    A plain subprocess rather than a multiprocessing pool: pool workers are daemons, and vLLM must start its own
    engine process."""
    with tempfile.TemporaryDirectory(prefix="rmbench-measure-") as scratch:
        out = Path(scratch) / "result.json"
        try:
            done = subprocess.run(
                [sys.executable, "-m", "bench.measure", function, json.dumps(kwargs), str(out)],
                cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=timeout,
                env=None if env is None else os.environ | env,
            )
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f} s"}
        if done.returncode != 0 or not out.exists():
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            return {"error": lines[-1] if lines else f"exit status {done.returncode}"}
        return json.loads(out.read_text(encoding="utf-8"))


def _main(argv: list[str]) -> int:
    function, kwargs, out = argv
    if ":" in function:
        module, name = function.split(":")
        run = getattr(importlib.import_module(module), name)
    else:
        run = globals()[function]
    result = run(**json.loads(kwargs))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(out).write_text(json.dumps(result), encoding="utf-8")
    return 0


def _pairs(n_pairs: int):
    from bench.data import load_pairs

    return load_pairs(n_pairs)


def reference_loop(model: str, n_pairs: int, batch_size: int = 8) -> dict[str, Any]:
    """What the peer tools do (rewardbench's pipeline scoring): chosen texts then rejected texts, in data order,
    a fixed batch size, each batch padded to its longest member, the logit read by the model's own forward."""
    import torch
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(model)
    tokenizer.truncation_side = "left"  # as rmbench's default, so both see the same tokens
    tokenizer.padding_side = "right"
    classifier = transformers.AutoModelForSequenceClassification.from_pretrained(model, dtype=torch.float32).eval()
    pairs = _pairs(n_pairs)
    requests = [c for c, _ in pairs] + [r for _, r in pairs]
    with torch.inference_mode():  # first-call kernel setup, outside the timing (rmbench gets the same)
        classifier(**tokenizer(["warm up"] * 2, padding=True, return_tensors="pt"))
    start = time.perf_counter()
    scores, real, padded = reference_pass(classifier, tokenizer, requests, batch_size, MAX_LENGTH)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "pairs_per_s": len(pairs) / seconds,
        "padding_efficiency": real / padded,
        "real_tokens": real,
        "scores": dict(zip([r.key for r in requests], scores)),
    }


def reference_pass(classifier: Any, tokenizer: Any, requests: list[Any], batch_size: int, max_length: int,
                   device: str = "cpu") -> tuple[list[float], int, int]:
    """The reference loop's scoring: chat-templated texts in data order, ``batch_size`` at a time, each batch padded
    to its longest member; (scores, real tokens, padded tokens)."""
    import torch

    real = padded = 0
    scores: list[float] = []
    with torch.inference_mode():
        texts = [tokenizer.apply_chat_template(r.messages(), tokenize=False) for r in requests]
        for i in range(0, len(texts), batch_size):
            inputs = tokenizer(texts[i : i + batch_size], padding=True, truncation=True, max_length=max_length,
                               return_tensors="pt").to(device)
            real += int(inputs["attention_mask"].sum())
            padded += int(inputs["attention_mask"].numel())
            scores.extend(classifier(**inputs).logits[:, 0].float().tolist())
    return scores, real, padded


def rmbench_scoring(model: str, n_pairs: int, cache_dir: str, engine: str = "hf", token_budget: int | None = None,
                    prefix_sharing: bool = True, rerun: bool = True) -> dict[str, Any]:
    """rmbench's scheduler and engine on a cold cache, then the same requests again on the warm cache."""
    from rmbench.cache import ScoreCache
    from rmbench.engines import create_engine
    from rmbench.modelspec import ModelSpec
    from rmbench.requests import ScoreRequest
    from rmbench.scoring import score_requests

    scorer = create_engine(ModelSpec(model=model, engine=engine, max_length=MAX_LENGTH, device="cpu"))
    if hasattr(scorer, "prefix_sharing"):
        scorer.prefix_sharing = scorer.prefix_sharing and prefix_sharing
    pairs = _pairs(n_pairs)
    requests = [c for c, _ in pairs] + [r for _, r in pairs]
    cache_path = Path(cache_dir) / f"{engine}-{prefix_sharing}.sqlite"
    warm = [ScoreRequest((("user", "warm up"),), f"warm up {i}") for i in range(2)]
    scorer.score(scorer.encode(warm))  # first-call kernel setup, outside the timing (the reference gets the same)
    start = time.perf_counter()
    scores, stats = score_requests(requests, scorer, ScoreCache(cache_path), token_budget=token_budget,
                                   show_progress=False)
    seconds = time.perf_counter() - start
    result: dict[str, Any] = {
        "seconds": seconds,
        "pairs_per_s": len(pairs) / seconds,
        "padding_efficiency": stats.padding_efficiency,
        "token_budget": token_budget or scorer.default_batch_tokens,
        "prefix_sharing": bool(getattr(scorer, "prefix_sharing", False)),
        "batches": stats.batches,
        "real_tokens": stats.real_tokens,
        "scores": {key: score.value for key, score in scores.items()},
        "engine_info": {k: v for k, v in scorer.info().items() if isinstance(v, (str, int, float, bool))},
    }
    if rerun:
        start = time.perf_counter()
        _, again = score_requests(requests, scorer, ScoreCache(cache_path), token_budget=token_budget,
                                  show_progress=False)
        result["cached_seconds"] = time.perf_counter() - start
        result["cached_hits"] = again.cache_hits
    close = getattr(scorer, "close", None)
    if close is not None:  # vLLM: stop its engine process now, not in interpreter teardown (which can abort)
        close()
    return result


def cached_rerun(model: str, n_pairs: int, cache_dir: str, engine: str = "hf") -> dict[str, Any]:
    """Whole-process wall time of ``rmbench run`` on the first ``n_pairs`` HH-RLHF harmless pairs, on a cold cache
    and again fully cached (which loads no model), and whether both wrote the same results.json."""
    import os

    from bench.data import hh_path

    scratch = Path(cache_dir) / f"rerun-{engine}"
    data_dir = hh_path().parents[1]
    env = os.environ | {"HF_HUB_OFFLINE": "1"}
    seconds: list[float] = []
    for name in ("first", "again"):
        command = [sys.executable, "-m", "rmbench", "run", "--suite", "hh-rlhf-harmless", "--data-dir", str(data_dir),
                   "--limit", str(n_pairs), "--model", model, "--engine", engine, "--max-length", str(MAX_LENGTH),
                   "--cache", str(scratch / "cache.sqlite"), "--out", str(scratch / name), "--no-progress", "--json"]
        start = time.perf_counter()
        subprocess.run(command, cwd=Path(__file__).resolve().parents[1], env=env, check=True, capture_output=True)
        seconds.append(time.perf_counter() - start)
    same = (scratch / "first" / "results.json").read_bytes() == (scratch / "again" / "results.json").read_bytes()
    loaded = json.loads((scratch / "again" / "run.json").read_text(encoding="utf-8")).get("engines_loaded")
    return {"first_s": seconds[0], "rerun_s": seconds[1], "rerun_ratio": seconds[1] / seconds[0],
            "results_identical": same, "rerun_engines_loaded": loaded}


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
