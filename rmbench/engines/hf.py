"""The transformers engine: sequence-classification reward models, decoders (Llama-style) and encoders (BERT-style).

Scores must not depend on what else is in a batch, so the engine pads batches itself and finds the reward-reading
token itself: the last real token from the attention mask (never by searching for pad_token_id, which is often the
eos the chat template ends with). Decoders get explicit position ids, so left and right padding give the same score;
their hidden state at that token goes through the classification head (``score``) here. Encoders pool position 0,
so they are always padded on the right and read through the model's own pooled logits.

This module imports torch; it is only imported when an hf engine is created.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import torch

from rmbench.engines import prefix
from rmbench.engines.base import Encoded, SpecFingerprint
from rmbench.engines.devices import (
    CPU_BATCH_TOKENS,
    GPU_BATCH_TOKENS,
    resolve_device,
    resolve_dtype,
    torch_dtype_name,
)
from rmbench.engines.encoding import ChatEncoder, binding_limit, chat_template_key, declared_max_length
from rmbench.errors import ModelSpecError
from rmbench.modelspec import Activation, ModelSpec, engine_fingerprint
from rmbench.requests import Score, ScoreRequest


def pad_batch(sequences: Sequence[list[int]], pad_id: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) padded to the longest sequence on ``side``."""
    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        start = width - len(seq) if side == "left" else 0
        input_ids[row, start : start + len(seq)] = torch.tensor(seq, dtype=torch.long)
        attention_mask[row, start : start + len(seq)] = 1
    return input_ids, attention_mask


def last_real_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of each row's last attended token, for either padding side (the mask, not pad_token_id, decides)."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (positions * attention_mask).argmax(dim=1)


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """0, 1, 2, ... over real tokens only, so a left-padded sequence sees the positions it would see alone."""
    return (attention_mask.cumsum(dim=1) - 1).clamp(min=0)


def activate(logits: torch.Tensor, activation: Activation) -> torch.Tensor:
    logits = logits.float()
    if activation == "sigmoid":
        return torch.sigmoid(logits)
    if activation == "tanh":
        return torch.tanh(logits)
    if activation == "log_sigmoid":
        return torch.nn.functional.logsigmoid(logits)
    return logits


def finite_or_nan(values: torch.Tensor) -> list[float]:
    """Python floats with every non-finite value (inf too) as NaN: the scheduler counts them, nothing raises."""
    values = values.detach().float().cpu()
    return torch.where(torch.isfinite(values), values, torch.full_like(values, float("nan"))).tolist()


def accepted_inputs(module: torch.nn.Module, inputs: dict[str, Any]) -> dict[str, Any]:
    """Only the keyword arguments ``module.forward`` accepts (Llama rejects token_type_ids, for one)."""
    params = inspect.signature(module.forward).parameters
    return {k: v for k, v in inputs.items() if k in params}


class HFEngineBase(SpecFingerprint):
    """Loading and running a transformers model on the shared encoder's token ids; subclasses read the scores."""

    auto_class: ClassVar[str] = "AutoModelForSequenceClassification"
    encoder_class: ClassVar[type[ChatEncoder]] = ChatEncoder
    #: The spec fields that change this engine's scores. Left out because they change none: padding side (scores
    #: are tested invariant to it), device, seed (nothing is sampled), batch budgets and prefix sharing.
    score_fields: ClassVar[tuple[str, ...]] = (
        "max_length",
        "truncation_side",
        "reward_index",
        "activation",
        "trust_remote_code",
    )

    @classmethod
    def fingerprint_of(cls, spec: ModelSpec) -> str:
        """Model identity + ``score_fields`` + the dtype the weights load in + the chat template override's text +
        the effective max length where the model's own limit binds (read from its config files, not loaded)."""
        return cls._fingerprint(spec, declared_max_length(spec))

    @classmethod
    def _fingerprint(cls, spec: ModelSpec, max_length: int | None) -> str:
        return engine_fingerprint(
            spec, cls.score_fields, dtype=torch_dtype_name(spec), chat_template=chat_template_key(spec),
            **binding_limit(spec, max_length),
        )

    @cached_property
    def fingerprint(self) -> str:
        """Keyed by the limit the loaded encoder really cuts to (the runner checks it against ``fingerprint_of``)."""
        return self._fingerprint(self.spec, self.encoder.max_length)

    @classmethod
    def default_batch_tokens_of(cls, spec: ModelSpec) -> int:
        return GPU_BATCH_TOKENS if resolve_device(spec).type == "cuda" else CPU_BATCH_TOKENS

    def __init__(self, spec: ModelSpec):
        import transformers

        if not spec.model:
            raise ModelSpecError(f"engine '{spec.engine}' needs a model: pass --model PATH_OR_HUB_ID")
        self.spec = spec
        self.device = resolve_device(spec)
        self.dtype = resolve_dtype(spec, self.device)
        self.default_batch_tokens = self.default_batch_tokens_of(spec)
        # Built before the (slow) model load, so a missing template or a bad step tag fails at once.
        self.encoder = self.encoder_class(spec)
        self.tokenizer = self.encoder.tokenizer
        self.chat_template_source = self.encoder.chat_template_source
        load = {"revision": spec.revision, "trust_remote_code": spec.trust_remote_code}
        try:
            auto = getattr(transformers, self.auto_class)
            self.model = auto.from_pretrained(spec.model, dtype=self.dtype, **load).to(self.device).eval()
        except (OSError, ValueError) as exc:
            raise ModelSpecError(f"cannot load model '{spec.model}' with {self.auto_class}: {exc}") from exc
        num_labels = int(getattr(self.model.config, "num_labels", 1))
        if spec.reward_index >= num_labels:
            raise ModelSpecError(f"reward_index {spec.reward_index} is out of range: the model has {num_labels} labels")
        self.head = self._decoder_head()
        # Encoders pool position 0: left padding would move it (the notes measured 27% of verdicts flipping).
        self.padding_side = spec.padding_side if self.head is not None else "right"
        self.pad_id = self.encoder.pad_id

    def _decoder_head(self) -> torch.nn.Module | None:
        """The linear reward head transformers' decoder classifiers call ``score``; None for encoder models,
        whose pooler + ``classifier`` are run by their own forward."""
        head = getattr(self.model, "score", None)
        return head if isinstance(head, torch.nn.Module) else None

    def encode(self, requests: Sequence[ScoreRequest]) -> list[Encoded]:
        return self.encoder.encode(requests)

    # --- running ----------------------------------------------------------------------------------------------
    def _pad(self, sequences: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        input_ids, attention_mask = pad_batch(sequences, self.pad_id, self.padding_side)
        return input_ids.to(self.device), attention_mask.to(self.device)

    def _decoder_hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Final (normed) hidden states [B, T, H] of the decoder body, with positions counted over real tokens."""
        body = self.model.base_model
        inputs = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "position_ids": position_ids(attention_mask),
            "use_cache": False,
        }
        return body(**accepted_inputs(body, inputs)).last_hidden_state

    def _encoder_outputs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the model's own logits, final hidden states [B, T, H]) of an encoder, right-padded."""
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        # output_hidden_states is a standard option (in **kwargs in transformers 5), so it bypasses the filter.
        outputs = self.model(**accepted_inputs(self.model, inputs), output_hidden_states=True)
        return outputs.logits, outputs.hidden_states[-1]

    def info(self) -> dict[str, Any]:
        import transformers

        return {
            "engine": self.spec.engine,
            "model_class": type(self.model).__name__,
            "num_params": int(sum(p.numel() for p in self.model.parameters())),
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
            "padding_side": self.padding_side,
            "reads": "decoder last real token via score head" if self.head is not None else "encoder pooled logits",
            "chat_template_source": self.chat_template_source,
            **self.encoder.limits_info(),
            "prefix_sharing": bool(getattr(self, "prefix_sharing", False)),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        }


class HFClassifierEngine(HFEngineBase):
    """A sequence-classification reward model: one scalar per request, read at the last real token. Process RMs
    (a step tag) are ``hf_prm.HFProcessEngine``, engine ``hf-prm``."""

    def __init__(self, spec: ModelSpec):
        if spec.step_tag is not None:
            raise ModelSpecError(f"engine '{spec.engine}' reads one score per request; a step tag needs 'hf-prm'")
        super().__init__(spec)
        #: Run a prompt's tokens once for all its responses (``rmbench.engines.prefix``). Only for decoder sequence
        #: classifiers read at the last token (an encoder attends both ways), and not with
        #: flash-attention kernels, which take no custom mask. It changes no score, so it is not in the fingerprint.
        self.prefix_sharing: bool = (
            bool(getattr(spec, "prefix_sharing", True))
            and self.head is not None
            and not str(getattr(self.model.config, "_attn_implementation", "")).startswith("flash")
        )
        self.prefix_cost = prefix.CostModel.of(self.model.config)

    def encode(self, requests: Sequence[ScoreRequest]) -> list[Encoded]:
        encoded = super().encode(requests)
        if self.prefix_sharing:
            prefix.annotate_groups(encoded, self.prefix_cost)
        return encoded

    def _shared_states(self, batch: Sequence[Encoded]) -> torch.Tensor | None:
        """Hidden states at each member's reward token, computed with shared prompt prefixes; None when no two
        members of this batch share one (then the plain padded path runs)."""
        rows = prefix.plan_rows([e.payload for e in batch], [e.request.prompt for e in batch], self.prefix_cost)
        if len(rows) == len(batch):
            return None
        packed = prefix.build_row_batch(rows, len(batch), self.pad_id, self.dtype, self.device)
        body = self.model.base_model
        inputs = {
            "input_ids": packed.input_ids,
            "attention_mask": packed.attention_mask,
            "position_ids": packed.position_ids,
            "use_cache": False,
        }
        states = body(**accepted_inputs(body, inputs)).last_hidden_state
        return states[packed.read_row, packed.read_col]

    @torch.inference_mode()
    def score(self, batch: Sequence[Encoded], *, hidden: bool = False) -> list[Score]:
        if not batch:
            return []
        if self.head is not None:
            shared = self._shared_states(batch) if self.prefix_sharing else None
            if shared is not None:
                states = shared
            else:
                input_ids, attention_mask = self._pad([e.payload for e in batch])
                rows = torch.arange(len(batch), device=self.device)
                states = self._decoder_hidden(input_ids, attention_mask)[rows, last_real_index(attention_mask)]
            logits = self.head(states)
        else:
            logits, all_states = self._encoder_outputs(*self._pad([e.payload for e in batch]))
            states = all_states[:, 0]
        values = finite_or_nan(activate(logits[:, self.spec.reward_index], self.spec.activation))
        vectors = states.float().cpu().numpy() if hidden else None
        return [
            Score(
                value=value if e.n_tokens else float("nan"),
                n_tokens=e.n_tokens,
                truncated=e.truncated,
                hidden=None if vectors is None else np.ascontiguousarray(vectors[i]),
            )
            for i, (e, value) in enumerate(zip(batch, values))
        ]
