"""Causal-LM plumbing shared by the engines that read a language model rather than a reward head (dpo, judge).

Conversations are rendered by the shared encoder (``rmbench.engines.encoding.ChatEncoder``), so the transformers and
vLLM paths see the same token ids. ``load_causal_lm`` and ``vllm_llm`` load a model for each backend from the same
model spec, in the dtype the spec resolves to on that backend's device (``rmbench.engines.devices``). Nothing here
reads a score; torch is imported lazily, vLLM only when a vLLM engine asks for it.
"""

from __future__ import annotations

from typing import Any

from rmbench.engines.devices import resolve_device, resolve_dtype, vllm_device, vllm_start_hint
from rmbench.errors import ModelSpecError
from rmbench.modelspec import ModelSpec, resolve_dtype_name


def load_causal_lm(spec: ModelSpec, model: str | None = None, revision: str | None = None) -> Any:
    """``AutoModelForCausalLM`` in eval mode on the spec's device and dtype (fp32 on CPU by default)."""
    import transformers

    name = model or spec.model
    device = resolve_device(spec)
    load = {"revision": revision if model else spec.revision, "trust_remote_code": spec.trust_remote_code}
    try:
        lm = transformers.AutoModelForCausalLM.from_pretrained(name, dtype=resolve_dtype(spec, device), **load)
    except (OSError, ValueError) as exc:
        raise ModelSpecError(f"cannot load '{name}' with AutoModelForCausalLM: {exc}") from exc
    return lm.to(device).eval()


def vllm_llm(
    spec: ModelSpec,
    model: str | None = None,
    revision: str | None = None,
    *,
    memory_share: float = 1.0,
    max_model_len: int | None = None,
) -> Any:
    """A vLLM ``LLM`` for generation or prompt log-probs, in the dtype the spec resolves to on vLLM's device.

    On CPU vLLM needs eager mode (no graph capture); ``memory_share`` splits one GPU between several models (the
    DPO policy and its reference); ``max_model_len`` is the effective max length (default the spec's)."""
    device = vllm_device(spec)  # also routes vLLM's logs to stderr before vllm is imported
    from vllm import LLM

    on_gpu = device != "cpu"
    dtype = resolve_dtype_name(spec, device)
    name = model or spec.model
    options: dict[str, Any] = {
        "model": name,
        "revision": revision if model else spec.revision,
        "dtype": dtype,
        "max_model_len": max_model_len or spec.max_length,
        "seed": spec.seed,
        "trust_remote_code": spec.trust_remote_code,
        "enforce_eager": not on_gpu,
    }
    if on_gpu:
        options["gpu_memory_utilization"] = 0.9 * memory_share
    try:
        return LLM(**options)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelSpecError(f"vLLM cannot load '{name}': {exc}{vllm_start_hint(exc)}") from exc


def close_vllm(llm: Any) -> None:
    """Stop a vLLM ``LLM``'s engine (and its process) now, so memory is free for the next model."""
    if llm is not None:
        llm.llm_engine.engine_core.shutdown()
