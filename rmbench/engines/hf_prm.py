"""Process reward models: a token-classification model read at a step tag appended after each solution step.

The response is rebuilt from its steps as ``step + tag`` joined by ``spec.step_separator`` (e.g. Math-Shepherd's
"ки", Qwen-PRM's "<extra_0>"), rendered with the chat template, and the reward logit is read at every tag token.
A step whose tag was truncated away scores NaN, so the scheduler counts it instead of silently shifting steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from rmbench.engines.base import Encoded
from rmbench.engines.encoding import StepEncoder
from rmbench.engines.hf import HFEngineBase, activate, finite_or_nan
from rmbench.requests import Score


class HFProcessEngine(HFEngineBase):
    """Per-step scores from ``AutoModelForTokenClassification``; ``Score.value`` is the last step's score.
    Encoding (steps, tags, their positions) is the shared ``StepEncoder``, so vllm-prm reads the same tokens."""

    auto_class = "AutoModelForTokenClassification"
    encoder_class = StepEncoder
    score_fields = (*HFEngineBase.score_fields, "step_tag", "step_separator")

    @torch.inference_mode()
    def score(self, batch: Sequence[Encoded], *, hidden: bool = False) -> list[Score]:
        if not batch:
            return []
        sequences = [e.payload[0] for e in batch]
        input_ids, attention_mask = self._pad(sequences)
        if self.head is not None:
            states = self._decoder_hidden(input_ids, attention_mask)
            logits = self.head(states)
        else:
            logits, states = self._encoder_outputs(input_ids, attention_mask)
        rewards = activate(logits[..., self.spec.reward_index], self.spec.activation)
        width = input_ids.shape[1]
        scores = []
        for row, (encoded, ids) in enumerate(zip(batch, sequences)):
            offset = width - len(ids) if self.padding_side == "left" else 0
            found = [p + offset for p in encoded.payload[1] if p is not None]
            values = iter(finite_or_nan(rewards[row, found]))
            steps = tuple(float("nan") if p is None else next(values) for p in encoded.payload[1])
            read_at = found[-1] if found else offset + len(ids) - 1
            state = np.ascontiguousarray(states[row, read_at].float().cpu().numpy()) if hidden else None
            scores.append(step_score(steps, encoded, state))
        return scores


def step_score(steps: tuple[float, ...], encoded: Encoded, hidden: np.ndarray | None = None) -> Score:
    """A process RM's Score: the per-step scores, the last one as the value (NaN without steps); both backends
    build it here so hf and vLLM step scores mean the same."""
    return Score(
        value=steps[-1] if steps else float("nan"),
        steps=steps,
        n_tokens=encoded.n_tokens,
        truncated=encoded.truncated,
        hidden=hidden,
    )
