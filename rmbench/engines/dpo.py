"""DPO implicit rewards: r(x, y) = β·(log π(y|x) − log π_ref(y|x)), summed over the response's tokens.

A DPO-trained policy is a reward model in disguise (Rafailov et al. 2023); this engine reads that reward. The
response tokens are exactly the tokens after the prompt: the prompt is rendered with the chat template and its
generation prompt, the response is whatever the full conversation's rendering adds after that text, and the two
are tokenized separately and concatenated (as DPO trainers do), so no prompt token is ever counted and none of
the response is lost to a merge across the boundary.

Options (``DPOOptions``, read from the model spec): ``reference_model`` (π_ref), ``beta``, ``reference_free``
(β·log π(y|x), no reference) and ``length_normalize`` (divide by the number of response tokens; off by default,
so the reward is the sum the DPO objective uses). The hf path computes per-token log-probs in one padded forward
with explicit position ids, so a score does not depend on its batch; the vLLM path (``dpo-vllm``) reads the same
log-probs from vLLM's prompt log-probs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rmbench.engines.base import Encoded, SpecFingerprint
from rmbench.engines.devices import (
    CPU_BATCH_TOKENS,
    VLLMGenerateDefaults,
    resolve_device,
    torch_dtype_name,
)
from rmbench.engines.encoding import ChatEncoder, binding_limit, chat_template_key, declared_max_length, truncate_ids
from rmbench.errors import ModelSpecError
from rmbench.modelspec import ModelSpec, engine_fingerprint, model_identity
from rmbench.requests import Score, ScoreRequest


class DPOOptions(BaseModel):
    """What turns a policy into an implicit reward; every field changes the score, so all enter the fingerprint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reference_model: str | None = Field(None, description="π_ref: local path or hub id (usually the SFT model).")
    reference_revision: str | None = Field(None, description="Hub revision of the reference model. Pin a sha.")
    beta: float = Field(0.1, gt=0, description="β of the DPO objective the policy was trained with.")
    reference_free: bool = Field(False, description="Score β·log π(y|x) alone; no reference model.")
    length_normalize: bool = Field(False, description="Divide by the response's token count (off by default).")

    @model_validator(mode="after")
    def _one_mode(self) -> DPOOptions:
        if self.reference_free and self.reference_model:
            raise ValueError("reference_free and reference_model exclude each other")
        if not self.reference_free and not self.reference_model:
            raise ValueError("the dpo engine needs reference_model (π_ref), or reference_free: true")
        return self

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> DPOOptions:
        """The options under the same names in the model spec (absent names keep their defaults)."""
        fields = spec.model_dump()
        try:
            return cls(**{name: fields[name] for name in cls.model_fields if name in fields})
        except ValidationError as exc:
            problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
            raise ModelSpecError(f"engine '{spec.engine}': {problems}") from exc


@dataclass(frozen=True)
class DPOInput:
    """Token ids of prompt + response; ``targets`` are the positions of the response tokens whose log-prob counts
    (never position 0, which nothing predicts)."""

    ids: list[int]
    targets: list[int]


def split_prompt_response(chat: ChatEncoder, request: ScoreRequest) -> tuple[list[int], list[int]]:
    """(prompt ids, response ids) from two renderings of the chat template."""
    prompt_messages = [{"role": role, "content": content} for role, content in request.prompt]
    prompt_text = chat.render(prompt_messages, generation_prompt=True)
    full_text = chat.render(request.messages())
    if not full_text.startswith(prompt_text):
        raise ModelSpecError(
            f"chat template ({chat.chat_template_source}): the conversation with the response does not start with the "
            "prompt rendered with its generation prompt, so the response tokens cannot be told apart"
        )
    return chat.ids(prompt_text), chat.ids(full_text[len(prompt_text) :], continuation=True)


def fit(
    prompt: list[int], response: list[int], spec: ModelSpec, special_ids: set[int], max_length: int | None = None
) -> tuple[DPOInput, bool]:
    """Cut prompt + response to ``max_length`` (default the spec's) exactly as the hf engine cuts a sequence (same
    side, framing special tokens kept), keeping track of which kept tokens belong to the response."""
    ids = prompt + response
    framing = {i for i in (0, len(ids) - 1) if ids and ids[i] in special_ids}
    kept, truncated = truncate_ids(
        list(range(len(ids))), max_length or spec.max_length, spec.truncation_side, framing
    )
    targets = [i for i, position in enumerate(kept) if position >= len(prompt) and i > 0]
    return DPOInput(ids=[ids[p] for p in kept], targets=targets), truncated


class DPOEngineBase(SpecFingerprint):
    """Encoding, the reward formula and the fingerprint; backends provide ``response_logprobs`` and their dtype."""

    default_batch_tokens: int
    policy: Any  # the backend's model objects, set by subclasses
    reference: Any  # None in reference-free mode
    #: The spec fields that change a DPO reward besides ``DPOOptions`` and the resolved dtype. Padding side does not
    #: (explicit position ids; tested batch-invariant on both sides), nor do reward_index, activation or the seed.
    score_fields: tuple[str, ...] = ("max_length", "truncation_side", "trust_remote_code")

    @classmethod
    def dtype_of(cls, spec: ModelSpec) -> str:
        """The dtype this backend loads the policy (and reference) in."""
        raise NotImplementedError

    @classmethod
    def fingerprint_of(cls, spec: ModelSpec) -> str:
        options = DPOOptions.from_spec(spec)
        return cls._fingerprint(spec, options, cls.declared_max_length(spec, options))

    @classmethod
    def declared_max_length(cls, spec: ModelSpec, options: DPOOptions) -> int | None:
        """The effective max length read without loading: the smaller of the policy's and the reference's (None
        while either's limits are not at hand)."""
        limits = [declared_max_length(spec)]
        if options.reference_model:
            limits.append(declared_max_length(spec, options.reference_model, options.reference_revision))
        return None if None in limits else min(limit for limit in limits if limit is not None)

    @classmethod
    def _fingerprint(cls, spec: ModelSpec, options: DPOOptions, max_length: int | None) -> str:
        """The policy's key + every DPO option + the reference model's identity (content digest when local, so not
        its path) + the effective max length where it binds; the same as ``fingerprint_of(spec)`` whenever
        ``options`` are the spec's own."""
        reference = None
        if options.reference_model:
            reference = model_identity(options.reference_model, options.reference_revision)
        dpo = options.model_dump(exclude={"reference_model", "reference_revision"})
        return engine_fingerprint(
            spec,
            cls.score_fields,
            dtype=cls.dtype_of(spec),
            chat_template=chat_template_key(spec),
            dpo=dpo,
            reference=reference,
            **binding_limit(spec, max_length),
        )

    def __init__(self, spec: ModelSpec, options: DPOOptions | None = None):
        self.spec = spec
        self.options = options or DPOOptions.from_spec(spec)
        self.chat = ChatEncoder(spec)
        #: The effective max length: the spec's, or less where the policy (or the reference) allows less.
        self.max_length = self.chat.max_length
        if self.options.reference_model:
            reference = ChatEncoder(spec, self.options.reference_model, self.options.reference_revision)
            self.max_length = min(self.max_length, reference.max_length)
            if not self.chat.same_vocabulary(reference):
                raise ModelSpecError(
                    f"reference model '{self.options.reference_model}' has a different vocabulary from "
                    f"'{spec.model}': log-probs of the same token ids would not be comparable"
                )

    @cached_property
    def fingerprint(self) -> str:
        return self._fingerprint(self.spec, self.options, self.max_length)

    def encode(self, requests: Sequence[ScoreRequest]) -> list[Encoded]:
        encoded = []
        for request in requests:
            prompt, response = split_prompt_response(self.chat, request)
            inputs, truncated = fit(prompt, response, self.spec, self.chat.special_ids, self.max_length)
            encoded.append(Encoded(request=request, n_tokens=len(inputs.ids), truncated=truncated, payload=inputs))
        return encoded

    def response_logprobs(self, model: Any, inputs: Sequence[DPOInput]) -> list[float]:
        """Per input: the sum of log π(token | prefix) over its target positions, in float64."""
        raise NotImplementedError

    def score(self, batch: Sequence[Encoded], *, hidden: bool = False) -> list[Score]:
        if hidden:
            raise ModelSpecError(f"engine '{self.spec.engine}' has no reward-reading hidden state to return")
        if not batch:
            return []
        inputs = [e.payload for e in batch]
        logps = self.response_logprobs(self.policy, inputs)
        if self.options.reference_model:
            ref_logps = self.response_logprobs(self.reference, inputs)
            logps = [lp - ref for lp, ref in zip(logps, ref_logps)]
        return [
            Score(value=self._reward(logp, len(x.targets)), n_tokens=e.n_tokens, truncated=e.truncated)
            for e, x, logp in zip(batch, inputs, logps)
        ]

    def _reward(self, logp: float, n_targets: int) -> float:
        if n_targets == 0 or not math.isfinite(logp):  # nothing of the response left: no reward, counted as invalid
            return math.nan
        value = self.options.beta * logp
        return value / n_targets if self.options.length_normalize else value

    def info(self) -> dict[str, Any]:
        return {
            "engine": self.spec.engine,
            "reward": "beta * (log pi(y|x)" + (")" if self.options.reference_free else " - log pi_ref(y|x))"),
            "summed_over": "response tokens" + (", divided by their count" if self.options.length_normalize else ""),
            "beta": self.options.beta,
            "reference_model": self.options.reference_model,
            "chat_template_source": self.chat.chat_template_source,
            "max_length": self.max_length,
        }


class DPOEngine(DPOEngineBase):
    """transformers backend: policy and reference as ``AutoModelForCausalLM``, fp32 on CPU."""

    @classmethod
    def dtype_of(cls, spec: ModelSpec) -> str:
        return torch_dtype_name(spec)

    @classmethod
    def default_batch_tokens_of(cls, spec: ModelSpec) -> int:
        # The logits are (batch tokens × vocabulary) floats: a quarter of the classifier budget on GPU.
        return 4096 if resolve_device(spec).type == "cuda" else CPU_BATCH_TOKENS

    def __init__(self, spec: ModelSpec, options: DPOOptions | None = None):
        from rmbench.engines.causal_lm import load_causal_lm

        super().__init__(spec, options)
        self.policy = load_causal_lm(spec)
        self.reference = (
            load_causal_lm(spec, self.options.reference_model, self.options.reference_revision)
            if self.options.reference_model
            else None
        )
        self.device = next(self.policy.parameters()).device
        self.default_batch_tokens = self.default_batch_tokens_of(spec)

    def response_logprobs(self, model: Any, inputs: Sequence[DPOInput]) -> list[float]:
        import torch

        from rmbench.engines.hf import accepted_inputs, pad_batch, position_ids

        with torch.inference_mode():
            input_ids, mask = pad_batch([x.ids for x in inputs], self.chat.pad_id, self.spec.padding_side)
            input_ids, mask = input_ids.to(self.device), mask.to(self.device)
            width = input_ids.shape[1]
            offsets = [width - len(x.ids) if self.spec.padding_side == "left" else 0 for x in inputs]
            targets = torch.zeros_like(mask, dtype=torch.bool)
            for row, (x, offset) in enumerate(zip(inputs, offsets)):
                targets[row, [offset + t for t in x.targets]] = True
            # Only logits that predict a target are needed: keep the last positions from the first one on.
            first = min((offset + x.targets[0] - 1 for x, offset in zip(inputs, offsets) if x.targets), default=0)
            forward = {
                "input_ids": input_ids,
                "attention_mask": mask,
                "position_ids": position_ids(mask),
                "use_cache": False,
                "logits_to_keep": width - first,
            }
            forward = accepted_inputs(model, forward)
            logits = model(**forward).logits
            start = width - logits.shape[1]  # 0 when the model ignores logits_to_keep
            predicted = logits[:, : width - 1 - start].float()  # position p predicts token p + 1
            tokens = input_ids[:, start + 1 :]
            token_logps = predicted.gather(-1, tokens.unsqueeze(-1)).squeeze(-1) - predicted.logsumexp(-1)
            token_logps = torch.where(targets[:, start + 1 :], token_logps, torch.zeros_like(token_logps))
            return token_logps.double().sum(dim=1).cpu().tolist()


class VLLMDPOEngine(VLLMGenerateDefaults, DPOEngineBase):
    """vLLM backend: the same token ids, log-probs from ``SamplingParams(prompt_logprobs=0, max_tokens=1)``."""

    def __init__(self, spec: ModelSpec, options: DPOOptions | None = None):
        from rmbench.engines.causal_lm import vllm_llm

        super().__init__(spec, options)
        share = 0.5 if self.options.reference_model else 1.0
        self.policy = vllm_llm(spec, memory_share=share, max_model_len=self.max_length)
        self.reference = (
            vllm_llm(
                spec,
                self.options.reference_model,
                self.options.reference_revision,
                memory_share=share,
                max_model_len=self.max_length,
            )
            if self.options.reference_model
            else None
        )

    def response_logprobs(self, model: Any, inputs: Sequence[DPOInput]) -> list[float]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False)
        outputs = model.generate([TokensPrompt(prompt_token_ids=x.ids) for x in inputs], params, use_tqdm=False)
        sums = []
        for x, output in zip(inputs, outputs):
            # prompt_logprobs[p] maps token ids to log-probs at position p; the prompt's own token is always there.
            sums.append(math.fsum(output.prompt_logprobs[p][x.ids[p]].logprob for p in x.targets))
        return sums

    def close(self) -> None:
        """Stop both vLLM engines now rather than at garbage collection."""
        from rmbench.engines.causal_lm import close_vllm

        close_vllm(self.__dict__.pop("policy", None))
        close_vllm(self.__dict__.pop("reference", None))

    def info(self) -> dict[str, Any]:
        import vllm

        return super().info() | {"backend": "vllm", "vllm": vllm.__version__}
