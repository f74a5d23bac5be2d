"""The GPU benchmark's measurements, each run in a process of its own by ``bench.measure.run_isolated`` (so GPU
memory is freed between scorers and each peak is that scorer's own).

Every scorer times scoring only (model load and a two-request warm-up excluded; tokenizing, templating, batching
and, for rmbench, the score cache included) and returns its scores in workload order, so the driver can compare them.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

GIB = 1024**3


class MemoryPeak:
    """Device memory in use on the visible GPUs (summed) while the block runs, sampled every 50 ms through NVML, so
    it sees vLLM's engine processes too: ``peak_gib`` is the peak in use (loaded weights included), ``added_gib``
    that less what was in use when the block began (what scoring added). ``None`` without NVML or a GPU."""

    def __init__(self) -> None:
        self.peak_gib: float | None = None
        self.added_gib: float | None = None
        self._stop = threading.Event()
        self._handles: list[Any] = []
        try:
            import pynvml

            pynvml.nvmlInit()
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            indexes = [int(i) for i in visible.split(",") if i.strip()] if visible else range(pynvml.nvmlDeviceGetCount())
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in indexes]
        except Exception:  # no pynvml, no driver, no GPU: nothing to sample
            self._handles = []

    def _used(self) -> int:
        import pynvml

        return sum(int(pynvml.nvmlDeviceGetMemoryInfo(h).used) for h in self._handles)

    def __enter__(self) -> MemoryPeak:
        if self._handles:
            self._base = self._used()
            self._max = self._base
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self._max = max(self._max, self._used())

    def __exit__(self, *exc: object) -> None:
        if self._handles:
            self._stop.set()
            self._thread.join()
            self._max = max(self._max, self._used())
            self.peak_gib = self._max / GIB
            self.added_gib = (self._max - self._base) / GIB


def _torch_peak_gib() -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / GIB if torch.cuda.is_available() and torch.cuda.is_initialized() else None


def _load_workload(path: str):
    from bench.workload import requests_from_json

    return requests_from_json(json.loads(Path(path).read_text(encoding="utf-8")))


def build_model(path: str, shape: dict[str, Any], device: str, dtype: str, seed: int = 0) -> dict[str, Any]:
    """Build the random-weight model (weights created on ``device``) and describe the machine's GPUs."""
    import torch

    from bench.models import build_llama_shape

    start = time.perf_counter()
    build_llama_shape(Path(path), shape, device=device, dtype=dtype, seed=seed)
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "seconds": time.perf_counter() - start,
        "gpus": gpus,
        "gpu_memory_gib": [torch.cuda.get_device_properties(i).total_memory / GIB for i in range(len(gpus))],
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
    }


def score_rmbench(model: str, workload: str, engine: str, max_length: int, dtype: str, cache_dir: str,
                  workers: int | None = None) -> dict[str, Any]:
    """rmbench's scheduler (unique requests, length-sorted token-budget batches, cold score cache) on ``engine``;
    with ``workers``, over that many Ray actors (one engine per GPU: data parallel). Tensor parallelism comes from
    ``$RMBENCH_VLLM_TENSOR_PARALLEL_SIZE`` in this process's environment."""
    from rmbench.cache import ScoreCache
    from rmbench.engines import create_engine
    from rmbench.executors import create_executor
    from rmbench.modelspec import ModelSpec
    from rmbench.requests import ScoreRequest
    from rmbench.scoring import score_requests

    requests = _load_workload(workload)
    spec = ModelSpec(model=model, engine=engine, max_length=max_length, dtype=dtype)
    scorer: Any = create_executor("ray", spec, workers=workers) if workers else create_engine(spec)
    warm = [ScoreRequest((("user", "warm up"),), f"warm up {i}") for i in range(2)]
    score_requests(warm, scorer, ScoreCache(Path(cache_dir) / f"warm-{os.getpid()}.sqlite"), show_progress=False)
    cache = ScoreCache(Path(cache_dir) / f"cold-{os.getpid()}.sqlite")  # every scorer starts cold
    before = scorer.info()
    with MemoryPeak() as memory:
        start = time.perf_counter()
        scores, stats = score_requests(requests, scorer, cache, show_progress=False)
        seconds = time.perf_counter() - start
    info = scorer.info()
    result: dict[str, Any] = {
        "seconds": seconds,
        "requests": len(requests),
        "unique_requests": stats.unique_requests,
        "tokens": sum(scores[r.key].n_tokens for r in requests),
        "unique_tokens": stats.real_tokens,
        "truncated": stats.truncated,
        "batches": stats.batches,
        "padding_efficiency": stats.padding_efficiency if engine == "hf" else None,  # vLLM packs without padding
        "gpu_peak_gib": memory.peak_gib,
        "gpu_added_gib": memory.added_gib,
        "torch_peak_gib": _torch_peak_gib(),
        "scores": [scores[r.key].value for r in requests],
        "engine_info": {k: v for k, v in info.items() if isinstance(v, (str, int, float, bool))},
    }
    if "prefix_cache_hit_tokens" in info and not workers:  # Ray actors' counts stay on the actors
        # vLLM: the prompt tokens its prefix cache served were not computed (warm-up tokens not counted)
        computed = int(info["prompt_tokens"]) - int(info["prefix_cache_hit_tokens"])
        result["computed_tokens"] = computed - (int(before["prompt_tokens"]) - int(before["prefix_cache_hit_tokens"]))
    close = getattr(scorer, "close", None)
    if close is not None:  # vLLM and Ray: stop their processes now, not in interpreter teardown
        close()
    return result


def score_reference(model: str, workload: str, max_length: int, dtype: str, batch_size: int = 8) -> dict[str, Any]:
    """The loop existing tools use (rewardbench's pipeline): requests in data order, a fixed batch size, each batch
    padded to its longest member, the score read by the model's own forward (one GPU, or the CPU)."""
    import torch
    import transformers

    from bench.measure import reference_pass

    requests = _load_workload(workload)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = transformers.AutoTokenizer.from_pretrained(model)
    tokenizer.truncation_side = "left"  # as rmbench's default, so both see the same tokens
    tokenizer.padding_side = "right"
    classifier = transformers.AutoModelForSequenceClassification.from_pretrained(model, dtype=getattr(torch, dtype))
    classifier = classifier.to(device).eval()
    with torch.inference_mode():  # first-call kernel setup, outside the timing (rmbench gets the same)
        classifier(**tokenizer(["warm up"] * 2, padding=True, return_tensors="pt").to(device))
    with MemoryPeak() as memory:
        start = time.perf_counter()
        scores, tokens, padded = reference_pass(classifier, tokenizer, requests, batch_size, max_length, device)
        seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "requests": len(requests),
        "tokens": tokens,
        "padding_efficiency": tokens / padded,
        "gpu_peak_gib": memory.peak_gib,
        "gpu_added_gib": memory.added_gib,
        "torch_peak_gib": _torch_peak_gib(),
        "scores": scores,
        "engine_info": {"device": device, "dtype": dtype, "batch_size": batch_size, "order": "data order"},
    }
