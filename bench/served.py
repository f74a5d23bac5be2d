"""The served path: rmbench's HTTP client against a naive one-request-at-a-time loop, on the same local vLLM server.

    python -m bench.served                      # 300 HH-RLHF harmless pairs, the bench's Llama RM, vllm serve on CPU
    python -m bench.served --pairs 50 --model PATH --url http://127.0.0.1:8000   # an already running server

Both scorers send the same token ids (the hf engine's chat rendering and truncation) to ``POST /classify`` of one
``vllm serve``: the naive loop one request per call and waits for each reply (how a quick script calls an endpoint);
rmbench's ``vllm-server`` engine batches requests (``server.batch_size``) and keeps ``server.concurrency`` calls in
flight, so the server's own batch stays full. Reported: pairs/s of each, the ratio, and the largest score difference
(the two send the same ids to the same server, so they agree to float rounding: vLLM's kernels vary slightly with batch shape). The server is started here unless ``--url`` is given, and both
scorers run against it warm (one warm-up call each); timings include tokenizing, as for the other bench rows.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

MAX_LENGTH = 512
SERVED = "bench-rm"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.served", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=300, help="HH-RLHF harmless test pairs (from the first)")
    parser.add_argument("--model", type=Path, default=None, help="model directory (default: the bench's Llama RM)")
    parser.add_argument("--model-dir", type=Path, default=Path("runs/bench/models"), help="where models are built")
    parser.add_argument("--url", default=None, help="a running server's base URL serving --model as 'bench-rm'")
    parser.add_argument("--batch-size", type=int, default=16, help="rmbench: requests per call")
    parser.add_argument("--concurrency", type=int, default=4, help="rmbench: calls in flight")
    parser.add_argument("--out", type=Path, default=None, help="JSON results (default bench/results/served-<time>.json)")
    return parser.parse_args(argv)


def _start_server(model: Path) -> tuple[str, subprocess.Popen[bytes]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model), "--runner", "pooling",
        "--dtype", "float32", "--max-model-len", str(MAX_LENGTH), "--enforce-eager", "--host", "127.0.0.1",
        "--port", str(port), "--served-model-name", SERVED,
    ]  # fmt: skip
    env = os.environ | {"VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"), "HF_HUB_OFFLINE": "1"}
    log = Path(tempfile.gettempdir()) / f"bench-vllm-serve-{port}.log"
    process = subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"vllm serve exited ({process.returncode}); log: {log}")
        try:
            if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                return url, process
        except httpx.TransportError:
            pass
        time.sleep(1)
    process.terminate()
    raise SystemExit(f"vllm serve did not start in 600 s; log: {log}")


def naive_loop(url: str, model: Path, requests: list[Any]) -> dict[str, Any]:
    """One request per call, each awaited before the next: same ids as rmbench (its encoder), no batching."""
    from rmbench.engines.encoding import ChatEncoder
    from rmbench.modelspec import ModelSpec

    encoder = ChatEncoder(ModelSpec(model=str(model), max_length=MAX_LENGTH))
    with httpx.Client(timeout=120) as client:

        def classify(ids: list[int]) -> float:
            body = {"model": SERVED, "input": [ids], "use_activation": False, "add_special_tokens": False}
            reply = client.post(f"{url}/classify", json=body)
            reply.raise_for_status()
            return float(reply.json()["data"][0]["probs"][0])

        classify(encoder.encode(requests[:1])[0].payload)  # warm-up, outside the timing
        start = time.perf_counter()
        scores = {e.request.key: classify(e.payload) for e in encoder.encode(requests)}
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "calls": len(requests), "scores": scores}


def rmbench_client(url: str, model: Path, requests: list[Any], batch_size: int, concurrency: int) -> dict[str, Any]:
    """rmbench's scheduler and ``vllm-server`` engine on a fresh cache."""
    from rmbench.cache import ScoreCache
    from rmbench.engines import create_engine
    from rmbench.modelspec import ModelSpec
    from rmbench.scoring import score_requests

    server = {"served_model": SERVED, "tokenizer": str(model), "batch_size": batch_size, "concurrency": concurrency}
    engine = create_engine(
        ModelSpec.build({"model": url, "engine": "vllm-server", "max_length": MAX_LENGTH, "server": server})
    )
    engine.score(engine.encode(requests[:1]))  # warm-up, outside the timing
    with tempfile.TemporaryDirectory(prefix="rmbench-served-") as scratch, ScoreCache(Path(scratch) / "c.sqlite") as cache:
        start = time.perf_counter()
        scores, stats = score_requests(requests, engine, cache, show_progress=False)
        seconds = time.perf_counter() - start
    usage = engine.usage()  # type: ignore[attr-defined]
    engine.close()  # type: ignore[attr-defined]
    return {"seconds": seconds, "calls": usage["calls"], "batches": stats.batches,
            "scores": {k: s.value for k, s in scores.items()}}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    from bench import models
    from bench.data import load_pairs

    args = _parse(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = args.model or args.model_dir / "llama"
    if args.model is None and not (model / "config.json").exists():
        models.build_llama(model)
    pairs = load_pairs(args.pairs)
    requests = [c for c, _ in pairs] + [r for _, r in pairs]
    url, process = (args.url, None) if args.url else _start_server(model)
    try:
        naive = naive_loop(url, model, requests)
        ours = rmbench_client(url, model, requests, args.batch_size, args.concurrency)
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=60)
    diffs = [abs(ours["scores"][k] - v) for k, v in naive["scores"].items() if math.isfinite(v)]
    result: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H%M%S", time.gmtime()),
        "pairs": len(pairs),
        "cpu_count": os.cpu_count(),
        "naive": {"pairs_per_s": len(pairs) / naive["seconds"], "seconds": naive["seconds"], "calls": naive["calls"]},
        "rmbench": {
            "pairs_per_s": len(pairs) / ours["seconds"],
            "seconds": ours["seconds"],
            "calls": ours["calls"],
            "batch_size": args.batch_size,
            "concurrency": args.concurrency,
        },
        "max_abs_score_diff": max(diffs, default=float("nan")),
    }
    result["ratio"] = result["rmbench"]["pairs_per_s"] / result["naive"]["pairs_per_s"]
    print(
        f"served path, {len(pairs)} pairs: naive {result['naive']['pairs_per_s']:.2f} pairs/s, "
        f"rmbench {result['rmbench']['pairs_per_s']:.2f} pairs/s ({result['ratio']:.2f}x), "
        f"max |diff| {result['max_abs_score_diff']:.1e}"
    )
    out = args.out or Path(__file__).resolve().parent / "results" / f"served-{result['started']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
