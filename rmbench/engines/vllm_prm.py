"""Process reward models through vLLM: a token-classification model read at the step tag after each step.

Encoding (steps joined as ``step + tag``, rendered, tokenized, truncated, tag positions found) is the shared
``StepEncoder`` the hf process engine uses, so a step is read at the same token by both engines. vLLM's ``token_classify`` pooling returns the raw
logits of every prompt token and the step scores are read at those positions, rather than through vLLM's STEP
pooler: that would need the tag id fixed in the engine config and would count tags in the prompt as steps. Prefix
caching is off for this engine (all-token pooling). A step whose tag was truncated away scores NaN, as with hf.
"""

from __future__ import annotations

from collections.abc import Sequence

from rmbench.engines.base import Encoded
from rmbench.engines.encoding import StepEncoder
from rmbench.engines.hf import activate, finite_or_nan
from rmbench.engines.hf_prm import HFProcessEngine, step_score
from rmbench.engines.vllm import VLLMEngineBase
from rmbench.requests import Score


class VLLMProcessEngine(VLLMEngineBase):
    """Per-step scores from a token classifier; ``Score.value`` is the last step's score."""

    pooling_task = "token_classify"
    # Every prompt token's logits are read (step tags sit anywhere in the response, and a prompt's cached blocks are
    # never recomputed): no prefix cache, so no row can be missing after a cache hit.
    prefix_caching = False
    encoder_class = StepEncoder
    score_fields = HFProcessEngine.score_fields

    def score(self, batch: Sequence[Encoded], *, hidden: bool = False) -> list[Score]:
        self._check_hidden(hidden)
        runnable = [e for e in batch if e.n_tokens]
        logits = iter(self._pool([e.payload[0] for e in runnable]))
        scores = []
        for encoded in batch:
            positions: list[int | None] = encoded.payload[1]
            found = [p for p in positions if p is not None]
            token_logits = next(logits) if encoded.n_tokens else None
            rewards = [] if token_logits is None else token_logits[found, self.spec.reward_index]
            values = iter(finite_or_nan(activate(rewards, self.spec.activation)) if found else [])
            steps = tuple(float("nan") if p is None else next(values) for p in positions)
            scores.append(step_score(steps, encoded))
        return scores
