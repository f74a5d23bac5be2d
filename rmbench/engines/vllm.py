"""The vLLM engine: sequence-classifier reward models through vLLM's pooling runner (``LLM(runner="pooling")``).

Parity with the hf engine is by construction wherever it can be: prompts are rendered, tokenized and truncated by
the encoder the hf engine uses (``rmbench.engines.encoding``) and reach vLLM as token ids (``TokensPrompt``), vLLM returns the raw head logits (activation
switched off per request) and rmbench applies ``spec.activation`` itself. What is left is numerics (kernels, dtype),
which ``rmbench.runner.parity`` measures (``rmbench check-engine``).

vLLM schedules and batches by itself, so ``score`` hands the scheduler's whole batch to one call. Prefix caching is
switched on, and each batch goes in two calls (every prompt's first response, then the rest), so that a prompt's KV
blocks are computed once and serve its other responses (vLLM shares no blocks between requests admitted in the same
scheduler step); ``info`` records how many prompt tokens the cache served. Tensor
parallelism (GPUs per model): ``tensor_parallel_size=`` or ``$RMBENCH_VLLM_TENSOR_PARALLEL_SIZE``.

vLLM starts its engine core in a spawned process: a script that creates this engine needs an
``if __name__ == "__main__":`` guard (the ``rmbench`` command has one), or ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` to run
the engine in-process.

This module imports vllm; it is only imported when a vllm engine is created. Process RMs: ``vllm_prm``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cached_property
from typing import Any, ClassVar

import torch

from rmbench.engines.base import Encoded, SpecFingerprint
from rmbench.engines.devices import route_vllm_logs, vllm_device, vllm_dtype_name, vllm_start_hint
from rmbench.engines.encoding import ChatEncoder, binding_limit, chat_template_key, declared_max_length
from rmbench.engines.hf import HFEngineBase, activate, finite_or_nan
from rmbench.errors import ModelSpecError
from rmbench.modelspec import ModelSpec, engine_fingerprint, resolve_dtype_name
from rmbench.requests import Score, ScoreRequest

route_vllm_logs()  # before vllm is imported, and inherited by its engine process

#: Tensor-parallel degree (GPUs per model) when the engine is not given one; it does not change a score's meaning,
#: so it is not part of the model spec or the cache key.
TENSOR_PARALLEL_ENV = "RMBENCH_VLLM_TENSOR_PARALLEL_SIZE"

# vLLM packs requests itself without padding, so the scheduler's budget only sets how much goes into one call
# (and how much a killed run loses): large, so that one prompt's many responses share a call and its prefix cache.
CPU_BATCH_TOKENS = 32768
GPU_BATCH_TOKENS = 262144

HIDDEN_UNSUPPORTED = (
    "engine '{engine}' cannot return hidden states: vLLM's pooling runner serves a reward model's classify and "
    "token_classify tasks, not its embeddings. Use --engine hf for probing."
)


class VLLMEngineBase(SpecFingerprint):
    """Loading a model into vLLM's pooling runner and running one pooling task over token-id prompts; subclasses
    read the scores."""

    #: The vLLM pooling task this engine runs (the LLM is built for it: one pooling task per vLLM instance).
    pooling_task: ClassVar[str] = "classify"
    #: Prefix caching: one prompt's KV blocks serve all its responses. Safe for last-token pooling (the response's
    #: own tokens are always computed); the process engine turns it off (see ``vllm_prm``).
    prefix_caching: ClassVar[bool] = True
    encoder_class: ClassVar[type[ChatEncoder]] = ChatEncoder
    #: The spec fields that change this engine's scores: the hf engine's (the same encoding and head reading).
    #: Tensor parallelism, prefix caching and the seed (nothing is sampled) change none.
    score_fields: ClassVar[tuple[str, ...]] = HFEngineBase.score_fields

    @classmethod
    def fingerprint_of(cls, spec: ModelSpec) -> str:
        """As the hf engine's, with vLLM's resolved dtype; the engine name keeps hf and vLLM scores apart."""
        return cls._fingerprint(spec, declared_max_length(spec))

    @classmethod
    def _fingerprint(cls, spec: ModelSpec, max_length: int | None) -> str:
        return engine_fingerprint(
            spec, cls.score_fields, dtype=vllm_dtype_name(spec), chat_template=chat_template_key(spec),
            **binding_limit(spec, max_length),
        )

    @cached_property
    def fingerprint(self) -> str:
        """Keyed by the limit the loaded encoder cuts to and vLLM is given as ``max_model_len``."""
        return self._fingerprint(self.spec, self.encoder.max_length)

    @classmethod
    def default_batch_tokens_of(cls, spec: ModelSpec) -> int:
        return CPU_BATCH_TOKENS if vllm_device(spec) == "cpu" else GPU_BATCH_TOKENS

    def __init__(self, spec: ModelSpec, *, tensor_parallel_size: int | None = None):
        self.device = vllm_device(spec)
        if not spec.model:
            raise ModelSpecError(f"engine '{spec.engine}' needs a model: pass --model PATH_OR_HUB_ID")
        self.spec = spec
        on_cpu = self.device == "cpu"
        self.dtype = resolve_dtype_name(spec, self.device)
        self.tensor_parallel_size = tensor_parallel_size or int(os.environ.get(TENSOR_PARALLEL_ENV, "1"))
        self.default_batch_tokens = self.default_batch_tokens_of(spec)
        # Before the (slow) model load, so a missing chat template fails at once.
        self.encoder = self.encoder_class(spec)
        self.llm = self._load(enforce_eager=on_cpu)
        #: Prompt tokens sent, and how many of them vLLM's prefix cache served (reported by ``info``).
        self.prompt_tokens = 0
        self.cached_prompt_tokens = 0
        hf_config = self.llm.llm_engine.model_config.hf_config
        num_labels = int(getattr(hf_config, "num_labels", 1))
        if spec.reward_index >= num_labels:
            raise ModelSpecError(f"reward_index {spec.reward_index} is out of range: the model has {num_labels} labels")

    def _load(self, *, enforce_eager: bool) -> Any:
        from vllm import LLM
        from vllm.config import PoolerConfig

        spec = self.spec
        try:
            return LLM(
                model=spec.model,
                revision=spec.revision,
                tokenizer_revision=spec.revision,
                trust_remote_code=spec.trust_remote_code,
                runner="pooling",
                pooler_config=PoolerConfig(task=self.pooling_task),
                dtype=self.dtype,
                # The effective limit: vLLM refuses a max_model_len above the model's derived one.
                max_model_len=self.encoder.max_length,
                tensor_parallel_size=self.tensor_parallel_size,
                enable_prefix_caching=self.prefix_caching,
                # On CPU, compiling the graph takes minutes and buys little; on GPU, CUDA graphs pay off.
                enforce_eager=enforce_eager,
                seed=spec.seed,
            )
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelSpecError(f"vLLM cannot load model '{spec.model}': {exc}{vllm_start_hint(exc)}") from exc

    def encode(self, requests: Sequence[ScoreRequest]) -> list[Encoded]:
        return self.encoder.encode(requests)

    def _pool(self, token_ids: Sequence[list[int]]) -> list[torch.Tensor]:
        """The raw pooled logits of each prompt ([labels] for classify, [tokens, labels] for token_classify)."""
        from vllm import PoolingParams
        from vllm.inputs import TokensPrompt

        outputs = self.llm.encode(
            [TokensPrompt(prompt_token_ids=list(ids)) for ids in token_ids],
            pooling_params=PoolingParams(use_activation=False),  # raw logits: spec.activation is applied here
            pooling_task=self.pooling_task,
            use_tqdm=False,
        )
        for ids, output in zip(token_ids, outputs):
            if output.error is not None:
                raise RuntimeError(f"vLLM failed to score a request: {output.error}")
            self.prompt_tokens += len(ids)
            self.cached_prompt_tokens += int(output.num_cached_tokens or 0)
        return [output.outputs.data for output in outputs]

    def _pool_prompt_first(self, batch: Sequence[Encoded]) -> list[torch.Tensor]:
        """``_pool`` in two calls: each prompt's first response, then the others, which find the prompt's KV blocks
        computed (vLLM shares no blocks between requests it admits in the same step). One call when no prompt repeats."""
        seen: set[object] = set()
        first: list[int] = []
        rest: list[int] = []
        for i, encoded in enumerate(batch):
            (rest if encoded.request.prompt in seen else first).append(i)
            seen.add(encoded.request.prompt)
        pooled: list[torch.Tensor | None] = [None] * len(batch)
        for part in (first, rest):
            if part:
                for i, out in zip(part, self._pool([batch[i].payload for i in part])):
                    pooled[i] = out
        return [out for out in pooled if out is not None]

    def _check_hidden(self, hidden: bool) -> None:
        if hidden:
            raise ModelSpecError(HIDDEN_UNSUPPORTED.format(engine=self.spec.engine))

    def close(self) -> None:
        """Stop vLLM's engine (and its process) now rather than at garbage collection: a GPU is freed for the next."""
        llm = self.__dict__.pop("llm", None)
        if llm is not None:
            llm.llm_engine.engine_core.shutdown()

    def info(self) -> dict[str, Any]:
        import transformers
        import vllm

        config = self.llm.llm_engine.vllm_config
        architectures = getattr(config.model_config.hf_config, "architectures", None) or ["?"]
        return {
            "engine": self.spec.engine,
            "backend": "vllm",
            "model_class": architectures[0],
            "pooling_task": self.pooling_task,
            "dtype": self.dtype,
            "device": self.device,
            "tensor_parallel_size": self.tensor_parallel_size,
            "prefix_caching": bool(config.cache_config.enable_prefix_caching),
            "prompt_tokens": self.prompt_tokens,
            "prefix_cache_hit_tokens": self.cached_prompt_tokens,
            "chat_template_source": self.encoder.chat_template_source,
            **self.encoder.limits_info(),
            "max_model_len": int(config.model_config.max_model_len),
            "vllm": vllm.__version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        }


class VLLMClassifierEngine(VLLMEngineBase):
    """A sequence-classification reward model: one scalar per request, the head's logit at the last token. Process
    RMs (a step tag) are ``vllm_prm.VLLMProcessEngine``, engine ``vllm-prm``."""

    def __init__(self, spec: ModelSpec, **options: Any):
        if spec.step_tag is not None:
            raise ModelSpecError(f"engine '{spec.engine}' reads one score per request; a step tag needs 'vllm-prm'")
        super().__init__(spec, **options)

    def score(self, batch: Sequence[Encoded], *, hidden: bool = False) -> list[Score]:
        self._check_hidden(hidden)
        runnable = [e for e in batch if e.n_tokens]  # vLLM refuses empty prompts; hf scores them NaN too
        logits = iter(self._pool_prompt_first(runnable))
        raw = torch.tensor(
            [next(logits)[self.spec.reward_index].item() if e.n_tokens else float("nan") for e in batch],
            dtype=torch.float32,
        )
        values = finite_or_nan(activate(raw, self.spec.activation))
        return [Score(value=v, n_tokens=e.n_tokens, truncated=e.truncated) for e, v in zip(batch, values)]
