"""``make bench-gpu``: rmbench's hf and vLLM engines and the reference loop on an 8B-shaped reward model, one GPU.

    python -m bench.gpu                                  # 8B shape on a GPU, the tiny shape on a CPU
    python -m bench.gpu --config tiny --requests 48      # what CI runs (seconds, CPU)

The model is a random-weight ``LlamaForSequenceClassification`` with Llama-3-8B's configuration (``bench.models``),
its weights created on the GPU in bf16, with the packaged MiniLM tokenizer (no download). The workload is
RewardBench-2-shaped, one prompt and four responses, with HH-RLHF texts (``bench.workload``). Scorers, each in a
process of its own: the hf engine and the vLLM engine through rmbench's scheduler, and the reference loop existing
tools use (fixed batch 8, data order; by default on a seeded random subset, its rate is what is compared). With two
GPUs it adds vLLM with tensor parallelism 2 and vLLM data parallel over two engines (rmbench's Ray executor).

Printed and written to bench/results/gpu-<time>.json: requests/s, tokens/s, the ratios, peak GPU memory, model
FLOP/s (2 × non-embedding parameters × tokens / time) as a share of the card's dense bf16 peak, and the hf-vs-vLLM
score differences (max, p99) and verdict agreement on the HH-RLHF pairs. Targets (reported, never asserted): vLLM ≥ 5×
the hf engine's requests/s, vLLM ≥ 40% of peak FLOP/s, verdict agreement ≥ 99.5%. Random weights cost the FLOPs
trained ones do, so throughput is real; their scores are near-ties more often than a trained model's, so the verdict
agreement is a harder test than on a trained RM.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import random
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import models
from bench.data import hh_path
from bench.measure import run_isolated
from bench.workload import build_workload, requests_to_json

HERE = Path(__file__).resolve().parent
TARGETS = {"vllm_over_hf": 5.0, "vllm_peak_share": 0.40, "verdict_agreement": 0.995}
#: Per config: the model shape, the dtype and max length it is scored with, and the default request count
#: (RewardBench 2 scores ~9k completions; CI's CPU run keeps it tiny).
CONFIGS: dict[str, dict[str, Any]] = {
    "8b": {"shape": models.LLAMA_8B, "dtype": "bfloat16", "max_length": 4096, "requests": 9000, "reference": 1000},
    "tiny": {"shape": models.LLAMA_TINY, "dtype": "float32", "max_length": 512, "requests": 200, "reference": None},
}
#: Dense (no sparsity) bf16 tensor-core peaks from NVIDIA's datasheets, FLOP/s, matched against the device name in
#: this order. An unlisted card gets none (``--peak-tflops`` supplies it).
BF16_PEAK = [
    ("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12), ("H200", 989e12), ("GH200", 989e12),
    ("B200", 2250e12), ("A100", 312e12), ("L40S", 362e12), ("L4", 121e12), ("A10G", 70e12),
]
#: How many GPUs the two-GPU rows need.
MULTI_GPUS = 2


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=["auto", *CONFIGS], default="auto", help="auto: 8b on a GPU, else tiny")
    parser.add_argument("--requests", type=int, default=None, help="workload size (config default; 4 per prompt)")
    parser.add_argument("--reference-requests", type=int, default=None,
                        help="reference loop on a seeded random subset of this size (8b default 1000; 0 = all)")
    parser.add_argument("--scorers", default="reference,hf,vllm", help="comma-separated: reference, hf, vllm")
    parser.add_argument("--no-multi-gpu", action="store_true", help="skip the two-GPU rows")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the card's dense bf16 peak, if not listed")
    parser.add_argument("--timeout", type=float, default=540.0, help="seconds per scorer before it is abandoned")
    parser.add_argument("--model-dir", type=Path, default=Path("runs/bench/gpu-models"), help="where models are built")
    parser.add_argument("--out", type=Path, default=None, help="JSON results (default bench/results/gpu-<time>.json)")
    return parser.parse_args(argv)


def cuda_device_count() -> int:
    """GPUs torch sees, without creating a CUDA context in this (driver) process."""
    import torch

    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def multi_gpu_plan(gpus: int, scorers: list[str], enabled: bool = True) -> tuple[list[str], str | None]:
    """The two-GPU rows to run, or why none run (a line for the output)."""
    if not enabled:
        return [], "2-GPU rows skipped: --no-multi-gpu"
    if "vllm" not in scorers:
        return [], "2-GPU rows skipped: they are vLLM rows and vllm is not among --scorers"
    if gpus < MULTI_GPUS:
        return [], f"2-GPU rows skipped: {gpus} CUDA device(s) visible, they need {MULTI_GPUS}"
    return ["vllm_tp2", "vllm_dp2"], None


def bf16_peak(gpu_name: str | None) -> float | None:
    if not gpu_name:
        return None
    return next((peak for key, peak in BF16_PEAK if key.lower() in gpu_name.lower()), None)


def _model(args: argparse.Namespace, config: dict[str, Any], name: str, device: str) -> tuple[Path, dict[str, Any]]:
    """The model directory (rebuilt unless one of the same shape, dtype and seed is there) and the build record."""
    path = args.model_dir / name
    marker = path / "bench_shape.json"
    wanted = {"shape": config["shape"], "dtype": config["dtype"], "seed": 0}
    if marker.exists() and json.loads(marker.read_text(encoding="utf-8")).get("wanted") == wanted:
        return path, json.loads(marker.read_text(encoding="utf-8"))["build"]
    build = run_isolated("bench.gpu_measure:build_model", timeout=args.timeout, path=str(path), shape=config["shape"],
                         device=device, dtype=config["dtype"])
    if "error" in build:
        raise SystemExit(f"building the {name} model failed: {build['error']}")
    marker.write_text(json.dumps({"wanted": wanted, "build": build}, indent=2) + "\n", encoding="utf-8")
    return path, build


def _rates(row: dict[str, Any], non_embedding: int, peak: float | None, gpus: int) -> None:
    """requests/s, tokens/s and model FLOP/s (on scored tokens, and for vLLM on the tokens it computed)."""
    seconds = row["seconds"]
    row["requests_per_s"] = row["requests"] / seconds
    row["tokens_per_s"] = row["tokens"] / seconds
    row["model_flops_per_s"] = 2 * non_embedding * row["tokens"] / seconds
    row["peak_share"] = row["model_flops_per_s"] / (peak * gpus) if peak else None
    if "computed_tokens" in row:
        row["computed_flops_per_s"] = 2 * non_embedding * row["computed_tokens"] / seconds
        row["computed_peak_share"] = row["computed_flops_per_s"] / (peak * gpus) if peak else None


def score_agreement(a: list[float], b: list[float], pairs: list[tuple[int, int]]) -> dict[str, Any]:
    """|a - b| over requests (max, p99) and the share of pairs whose verdict (chosen above, below or tied with
    rejected) is the same under both scorers."""
    diffs = sorted(abs(x - y) for x, y in zip(a, b) if math.isfinite(x) and math.isfinite(y))

    def verdict(s: list[float], c: int, r: int) -> int:
        return (s[c] > s[r]) - (s[c] < s[r])

    same = [verdict(a, c, r) == verdict(b, c, r) for c, r in pairs]
    p99 = diffs[min(len(diffs) - 1, math.ceil(0.99 * len(diffs)) - 1)] if diffs else float("nan")
    return {
        "compared": len(diffs),
        "max_abs_diff": diffs[-1] if diffs else float("nan"),
        "p99_abs_diff": p99,
        "pairs": len(same),
        "verdict_agreement": sum(same) / len(same) if same else float("nan"),
    }


def _write_workload(requests: list[Any], path: Path) -> str:
    path.write_text(json.dumps(requests_to_json(requests)), encoding="utf-8")
    return str(path)


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    gpus = cuda_device_count()
    name = args.config if args.config != "auto" else ("8b" if gpus else "tiny")
    config = CONFIGS[name]
    scorers = [s for s in args.scorers.split(",") if s]
    device = "cuda" if gpus else "cpu"
    console.print(f"[bold]bench-gpu[/bold]: config {name} on {gpus} GPU(s) ({device}); building the model …")
    path, build = _model(args, config, name, device)
    model_config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    non_embedding = models.non_embedding_params(model_config)
    gpu_name = build["gpus"][0] if build.get("gpus") else None
    peak = args.peak_tflops * 1e12 if args.peak_tflops else bf16_peak(gpu_name) if config["dtype"] == "bfloat16" else None

    workload = build_workload(args.requests or config["requests"], hh_path())
    reference_n = args.reference_requests if args.reference_requests is not None else config["reference"]
    common = {"model": str(path), "max_length": config["max_length"], "dtype": config["dtype"]}
    rows: dict[str, dict[str, Any]] = {}
    multi, skipped = multi_gpu_plan(gpus, scorers, not args.no_multi_gpu)
    env = {"VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"), "VLLM_NO_USAGE_STATS": "1",
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory(prefix="rmbench-bench-gpu-") as scratch:
        full = _write_workload(workload.requests, Path(scratch) / "workload.json")
        subset = list(range(len(workload.requests)))
        if reference_n and reference_n < len(subset):
            subset = sorted(random.Random(0).sample(subset, reference_n))
        sub = _write_workload([workload.requests[i] for i in subset], Path(scratch) / "reference.json")
        jobs: dict[str, dict[str, Any]] = {
            "reference": {"function": "bench.gpu_measure:score_reference", "workload": sub},
            "hf": {"function": "bench.gpu_measure:score_rmbench", "workload": full, "engine": "hf"},
            "vllm": {"function": "bench.gpu_measure:score_rmbench", "workload": full, "engine": "vllm"},
            "vllm_tp2": {"function": "bench.gpu_measure:score_rmbench", "workload": full, "engine": "vllm",
                         "env": {"RMBENCH_VLLM_TENSOR_PARALLEL_SIZE": str(MULTI_GPUS)}},
            "vllm_dp2": {"function": "bench.gpu_measure:score_rmbench", "workload": full, "engine": "vllm",
                         "workers": MULTI_GPUS},
        }
        for key in [s for s in scorers if s in jobs] + multi:
            job = dict(jobs[key])
            console.print(f"  scoring: {key} …")
            kwargs = {**common, **({"cache_dir": scratch} if job["function"].endswith("rmbench") else {})}
            rows[key] = run_isolated(job.pop("function"), timeout=args.timeout, env=env | job.pop("env", {}),
                                     **kwargs, **job)
    if skipped:
        console.print(f"[yellow]{skipped}[/yellow]")
    used_gpus = {"vllm_tp2": MULTI_GPUS, "vllm_dp2": MULTI_GPUS}
    for key, row in rows.items():
        if "error" not in row:
            _rates(row, non_embedding, peak, used_gpus.get(key, 1))
    return _results(args, name, config, build, workload, rows, subset, non_embedding, peak, skipped)


def _ratio(rows: dict[str, dict[str, Any]], top: str, bottom: str) -> float | None:
    a, b = rows.get(top, {}), rows.get(bottom, {})
    return a["requests_per_s"] / b["requests_per_s"] if "requests_per_s" in a and "requests_per_s" in b else None


def _results(args: argparse.Namespace, name: str, config: dict[str, Any], build: dict[str, Any], workload: Any,
             rows: dict[str, dict[str, Any]], subset: list[int], non_embedding: int, peak: float | None,
             skipped: str | None) -> dict[str, Any]:
    import torch

    summary: dict[str, Any] = {
        "vllm_over_hf": _ratio(rows, "vllm", "hf"),
        "hf_over_reference": _ratio(rows, "hf", "reference"),
        "vllm_over_reference": _ratio(rows, "vllm", "reference"),
        "vllm_tp2_over_vllm": _ratio(rows, "vllm_tp2", "vllm"),
        "vllm_dp2_over_vllm": _ratio(rows, "vllm_dp2", "vllm"),
        # Achieved: on the tokens vLLM computed (its prefix cache served the rest); on scored tokens beside it.
        "vllm_peak_share": rows.get("vllm", {}).get("computed_peak_share", rows.get("vllm", {}).get("peak_share")),
        "vllm_peak_share_scored_tokens": rows.get("vllm", {}).get("peak_share"),
    }
    hf, vllm, ref = (rows.get(k, {}).get("scores") for k in ("hf", "vllm", "reference"))
    if hf and vllm:
        summary["hf_vs_vllm"] = score_agreement(hf, vllm, workload.pairs)
        summary["verdict_agreement"] = summary["hf_vs_vllm"]["verdict_agreement"]
    if hf and ref:
        summary["hf_vs_reference_max_abs_diff"] = score_agreement([hf[i] for i in subset], ref, [])["max_abs_diff"]
    # The targets are about the 8B shape on a GPU; a tiny model on a CPU says nothing about them.
    judged = name == "8b" and bool(build.get("gpus"))
    summary["meets"] = {k: summary[k] >= v for k, v in TARGETS.items() if judged and summary.get(k) is not None}
    for row in rows.values():
        row.pop("scores", None)
    return {
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "config": name,
        "model": {"shape": config["shape"], "dtype": config["dtype"], "max_length": config["max_length"],
                  "non_embedding_params": non_embedding, "build": build},
        "machine": {"gpus": build.get("gpus", []), "cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "torch": torch.__version__, "bf16_peak_flops_per_gpu": peak},
        "workload": {"requests": len(workload.requests), "pairs": len(workload.pairs), "source": workload.source,
                     "reference_requests": len(subset)},
        "targets": TARGETS,
        "multi_gpu": skipped or "run",
        "rows": rows,
        "summary": summary,
    }


def _fmt(value: Any, spec: str = ".2f") -> str:
    return format(value, spec) if isinstance(value, (int, float)) and math.isfinite(value) else "—"


LABELS = {"reference": "reference loop (batch 8, data order)", "hf": "rmbench, hf engine", "vllm": "rmbench, vLLM",
          "vllm_tp2": "rmbench, vLLM tensor parallel 2", "vllm_dp2": "rmbench, vLLM data parallel 2 (Ray)"}


def table(results: dict[str, Any]) -> Table:
    gpus = results["machine"]["gpus"]
    where = f"{gpus[0]} × {len(gpus)}" if gpus else f"CPU ({results['machine']['cpu_count']} cores)"
    table = Table(title=f"bench-gpu — {results['config']} config, {results['model']['dtype']}, "
                        f"{results['workload']['requests']} requests — {where}")
    for column in ("scorer", "requests", "req/s", "× hf", "tokens/s", "GPU peak GiB", "model TFLOP/s",
                   "% of peak", "% computed", "peak RSS MB"):
        table.add_column(column, justify="left" if column == "scorer" else "right")
    rows = results["rows"]
    hf_rate = rows.get("hf", {}).get("requests_per_s")
    for key, row in rows.items():
        if "error" in row:
            table.add_row(LABELS[key], f"[red]failed: {row['error'][:70]}[/red]", *[""] * 8)
            continue
        share, computed = row.get("peak_share"), row.get("computed_peak_share")
        table.add_row(LABELS[key], str(row["requests"]), _fmt(row["requests_per_s"]),
                      _fmt(row["requests_per_s"] / hf_rate if hf_rate else None), _fmt(row["tokens_per_s"], ".0f"),
                      _fmt(row.get("gpu_peak_gib"), ".1f"), _fmt(row["model_flops_per_s"] / 1e12, ".3g"),
                      _fmt(share * 100 if share is not None else None, ".1f"),
                      _fmt(computed * 100 if computed is not None else None, ".1f"), _fmt(row.get("peak_rss_mb"), ".0f"))
    return table


def targets_table(results: dict[str, Any]) -> Table:
    summary, meets = results["summary"], results["summary"]["meets"]
    table = Table(title="targets (reported, not asserted; meaningful for the 8b config on a GPU)")
    for column in ("vLLM / hf req/s (≥5)", "vLLM % of peak, computed tokens (≥40)", "verdict agreement (≥99.5%)",
                   "max |Δ| hf–vLLM", "p99 |Δ|", "max |Δ| hf–reference"):
        table.add_column(column, justify="right")

    def mark(key: str, value: str) -> str:
        ok = meets.get(key)
        return value if ok is None else f"[{'green' if ok else 'red'}]{value}[/]"

    agreement = summary.get("hf_vs_vllm", {})
    share = summary.get("vllm_peak_share")
    table.add_row(mark("vllm_over_hf", _fmt(summary.get("vllm_over_hf"))),
                  mark("vllm_peak_share", _fmt(share * 100 if share is not None else None, ".1f")),
                  mark("verdict_agreement", _fmt(100 * agreement.get("verdict_agreement", float("nan")), ".2f")),
                  _fmt(agreement.get("max_abs_diff"), ".2e"), _fmt(agreement.get("p99_abs_diff"), ".2e"),
                  _fmt(summary.get("hf_vs_reference_max_abs_diff"), ".2e"))
    return table


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    console = Console(width=max(Console().width, 150))
    results = run(args, console)
    console.print(table(results))
    console.print(targets_table(results))
    out = args.out or HERE / "results" / f"gpu-{results['started'].replace(':', '')[:17]}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    console.print(f"results: {out}")
    failed = [key for key, row in results["rows"].items() if "error" in row]
    if failed:
        console.print(f"[red]failed scorers: {', '.join(failed)}[/red]")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
