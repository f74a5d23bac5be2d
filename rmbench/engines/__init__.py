"""Scoring engines, created by name through lazy factories so that ``import rmbench`` never imports torch."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rmbench.errors import ModelSpecError
from rmbench.modelspec import ModelSpec
from rmbench.registry import Registry

if TYPE_CHECKING:
    from rmbench.engines.base import Encoded, Engine

__all__ = ["Encoded", "Engine", "ENGINES", "EngineFactory", "create_engine"]

#: An engine class, or a function building one, from a model spec.
EngineFactory = Callable[[ModelSpec], "Engine"]

#: engine name -> engine class or factory; the module is imported only when the engine is created. A process RM
#: (per-step scores at a step tag) is its own engine, chosen by name: hf-prm, vllm-prm.
ENGINES: Registry[EngineFactory] = Registry("engine", ModelSpecError)
ENGINES.lazy("hf", "rmbench.engines.hf:HFClassifierEngine", "transformers sequence-classifier RMs (decoder, encoder).")
ENGINES.lazy("hf-prm", "rmbench.engines.hf_prm:HFProcessEngine", "transformers process RMs: a score per solution step.")
ENGINES.lazy("vllm", "rmbench.engines.vllm:VLLMClassifierEngine", "vLLM pooling runner for classifier RMs (GPU, fast).")
ENGINES.lazy("vllm-prm", "rmbench.engines.vllm_prm:VLLMProcessEngine", "vLLM process RMs: a score per solution step.")
ENGINES.lazy("length", "rmbench.engines.baseline:LengthEngine", "Baseline: response length in characters (no model).")
ENGINES.lazy("random", "rmbench.engines.baseline:RandomEngine", "Baseline: seeded random score (no model).")
ENGINES.lazy(
    "random-prm", "rmbench.engines.step_baseline:RandomStepEngine", "Baseline: seeded random score per step (no model)."
)
ENGINES.lazy(
    "arith-prm",
    "rmbench.engines.step_baseline:ArithmeticStepEngine",
    "Baseline: per step, 0.1 if an 'a op b = c' in it is false, else 0.9 (no model).",
)
ENGINES.lazy("minilm", "rmbench.engines.baseline:MiniLMEngine", "Baseline: MiniLM prompt-response similarity.")
ENGINES.lazy("dpo", "rmbench.engines.dpo:DPOEngine", "DPO implicit reward beta*(log pi - log pi_ref), transformers.")
ENGINES.lazy("dpo-vllm", "rmbench.engines.dpo:VLLMDPOEngine", "DPO implicit reward through vLLM.")
ENGINES.lazy("judge", "rmbench.engines.judge:hf_judge", "LLM-as-judge: pointwise rating or pairwise verdict.")
ENGINES.lazy("judge-vllm", "rmbench.engines.judge:vllm_judge", "LLM-as-judge through vLLM.")
ENGINES.lazy("vllm-server", "rmbench.engines.vllm_server:VLLMServerEngine", "A classifier RM served by `vllm serve`.")
ENGINES.lazy(
    "vllm-server-prm", "rmbench.engines.vllm_server:VLLMServerProcessEngine", "A process RM served by `vllm serve`."
)
ENGINES.lazy(
    "remote-reward", "rmbench.engines.remote_reward:RemoteRewardEngine", "An HTTP reward endpoint (OpenRLHF, or declared)."
)
ENGINES.lazy("openai-judge", "rmbench.engines.openai_judge:OpenAIJudgeEngine", "LLM-as-judge via a chat-completions API.")


def create_engine(spec: ModelSpec) -> Engine:
    """Instantiate the engine ``spec.engine`` names (``ModelSpecError`` with a 'did you mean' for unknown names)."""
    factory = ENGINES.get(spec.engine)
    _quiet_transformers(spec.engine not in _NO_TRANSFORMERS)
    return factory(spec)


def __getattr__(name: str) -> Any:
    """``Engine`` and ``Encoded`` on first use: listing engines (``rmbench --help``) must not import numpy."""
    if name in ("Encoded", "Engine"):
        from rmbench.engines import base

        return getattr(base, name)
    raise AttributeError(f"module 'rmbench.engines' has no attribute '{name}'")


#: Engines that never import transformers (so creating them must not import it just to silence its bars).
_NO_TRANSFORMERS = frozenset({"length", "random"})


def _quiet_transformers(will_import: bool = True) -> None:
    """rmbench shows its own progress (or none, with --no-progress); transformers' bars ("Loading weights") would
    interleave with it. Silenced before the engine imports transformers, so the first load is quiet too."""
    import importlib.util
    import sys

    if "transformers" in sys.modules or (will_import and importlib.util.find_spec("transformers") is not None):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
