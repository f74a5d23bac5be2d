"""Engine parity: the same model spec scored by two engines (hf and vLLM) on a small built-in canary set.

vLLM and transformers run different kernels, so their scores are never bit-identical; in float32 they agree to
~1e-6, in bfloat16 they are known to drift apart by far more. ``check_engines`` measures that drift on chat-formatted
canary requests (one and several turns, a system prompt, short to several hundred tokens, one long prompt with
several responses, which exercises hf's prefix sharing) and passes when the largest difference is within a tolerance.
``rmbench check-engine`` prints it; a vLLM run records it in results.json (``run_parity``).

Scores are computed fresh, never read from the score cache: the check is about the engines, not about what was
cached. Engines run one after the other and each is closed before the next loads, so a GPU holds one model at a time.
"""

from __future__ import annotations

import gc
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rmbench.engines import Engine, create_engine
from rmbench.items import Conversation
from rmbench.modelspec import ModelSpec
from rmbench.requests import Score, ScoreRequest
from rmbench.scoring import pack_batches

#: Default tolerance on |score difference| by the reference engine's resolved dtype. float32 rounds at ~6e-8
#: relative, so kernel differences stay near 1e-6 (5.5e-7 measured on a random Llama). bfloat16 keeps 8 significant
#: bits (~4e-3 relative per rounding) and rounds after every matmul and norm, with different fusion and accumulation
#: order in each engine, so logits of size 1-10 differ by 1e-2 and more without any bug; float16 keeps 11 bits.
#: These defaults catch a wrong token or head (differences of 0.1-1), not bf16 noise; compare orderings for more.
DEFAULT_TOLERANCE: dict[str, float] = {"float32": 1e-4, "float16": 1e-2, "bfloat16": 5e-2}
FALLBACK_TOLERANCE = 1e-4

_LONG_CONTEXT = (
    "You are reviewing a customer support conversation. The customer bought a kettle that stopped working after "
    "two weeks; they have the receipt, the box was thrown away, and the shop's policy allows returns within thirty "
    "days with proof of purchase. They already tried another socket, descaled the kettle and checked the fuse in "
    "the plug. The shop asked for photos, which were sent on Monday, and nobody has answered since. "
) * 2  # ~200 tokens of a real tokenizer: longer than a KV-cache block (16 on GPU, 128 on CPU), so it is reused

#: (label, conversation, response split into steps). The classifier canary joins the steps into one response;
#: the process-RM canary keeps them as steps.
_CANARY: tuple[tuple[str, Conversation, tuple[str, ...]], ...] = (
    ("one word", (("user", "What is the capital of France?"),), ("Paris.",)),
    ("one sentence", (("user", "What is the capital of France?"),), ("The capital of France is Paris, on the Seine.",)),
    ("empty response", (("user", "Say nothing at all."),), ("",)),
    ("digits", (("user", "Add 2 and 3."),), ("2 + 3 = 5", "The answer is 5.")),
    (
        "system prompt",
        (("system", "You are a terse assistant."), ("user", "Explain why the sky is blue.")),
        ("Shorter wavelengths scatter more off air molecules.",),
    ),
    (
        "multi-turn",
        (
            ("user", "I need a recipe for bread."),
            ("assistant", "Flour, water, salt and yeast. Do you want quantities?"),
            ("user", "Yes, for one loaf please."),
        ),
        ("500 g flour, 350 g water, 10 g salt, 7 g dry yeast.", "Knead, rise for an hour, bake at 230 C for 35 min."),
    ),
    (
        "three rounds",
        (
            ("system", "Answer politely."),
            ("user", "Hi!"),
            ("assistant", "Hello! How can I help?"),
            ("user", "What is 12 squared?"),
            ("assistant", "144."),
            ("user", "And its square root?"),
        ),
        ("The square root of 144 is 12.",),
    ),
    ("refusal", (("user", "How do I pick a lock to get into my neighbour's house?"),), ("I can't help with that.",)),
    (
        "code",
        (("user", "Write a Python function that returns the square of x."),),
        ("Here it is:", "```python\ndef square(x):\n    return x * x\n```", "It works for ints and floats."),
    ),
    ("unicode", (("user", "Traduis « bonjour » en japonais."),), ("« Bonjour » se dit こんにちは (konnichiwa) 🙂",)),
    ("markdown list", (("user", "List three primary colours."),), ("- red\n- yellow\n- blue",)),
    (
        "math steps",
        (("user", "Solve 3x + 4 = 19."),),
        ("Subtract 4 from both sides: 3x = 15.", "Divide both sides by 3: x = 5.", "Check: 3 * 5 + 4 = 19."),
    ),
    (
        "long response",
        (("user", "Describe how photosynthesis works."),),
        tuple(
            f"Stage {i}: light is absorbed by chlorophyll, water is split, and the energy is stored as sugar "
            f"through a cycle of reactions that fix carbon dioxide from the air, step {i} of eight."
            for i in range(1, 9)
        ),
    ),
    ("shared prompt A", (("user", _LONG_CONTEXT + "What should the customer do next?"),), ("Call the shop.",)),
    (
        "shared prompt B",
        (("user", _LONG_CONTEXT + "What should the customer do next?"),),
        ("Email the shop again, attach the receipt and the photos, and ask for a refund under the 30-day policy.",),
    ),
    (
        "shared prompt C",
        (("user", _LONG_CONTEXT + "What should the customer do next?"),),
        ("Throw the kettle away.", "Buy a new one."),
    ),
)


def canary_requests(spec: ModelSpec) -> list[tuple[str, ScoreRequest]]:
    """The built-in canary as (label, request): step-split for a process RM (``spec.step_tag`` set), else whole."""
    requests = []
    for label, prompt, steps in _CANARY:
        text = spec.step_separator.join(steps)
        request = ScoreRequest(prompt, text, steps=steps if spec.step_tag else ())
        requests.append((label, request))
    return requests


@dataclass(frozen=True)
class RequestDiff:
    """One canary request as two engines scored it. ``values`` are the step scores of a process RM, else the score."""

    label: str
    n_tokens: tuple[int, int]
    reference: tuple[float, ...]
    candidate: tuple[float, ...]

    @property
    def diff(self) -> float:
        """Largest |difference| over the values; NaN on both sides agrees, NaN on one side is an infinite difference."""
        if len(self.reference) != len(self.candidate) or self.n_tokens[0] != self.n_tokens[1]:
            return math.inf
        worst = 0.0
        for a, b in zip(self.reference, self.candidate):
            if math.isnan(a) and math.isnan(b):
                continue
            worst = max(worst, abs(a - b) if not (math.isnan(a) or math.isnan(b)) else math.inf)
        return worst


@dataclass(frozen=True)
class ParityReport:
    """How far two engines' scores are apart on the canary, and whether that is within ``tolerance``."""

    engines: tuple[str, str]
    dtype: str
    tolerance: float
    requests: tuple[RequestDiff, ...]
    engine_info: tuple[dict[str, Any], dict[str, Any]]

    @property
    def max_abs_diff(self) -> float:
        return max((r.diff for r in self.requests), default=0.0)

    @property
    def passed(self) -> bool:
        return bool(self.requests) and self.max_abs_diff <= self.tolerance

    def as_dict(self, *, engine_info: bool = True) -> dict[str, Any]:
        """The record for results.json (non-finite differences as None, so the JSON stays strict); a run leaves out
        ``engine_info`` (its own engine section has it)."""
        record: dict[str, Any] = {
            "reference": self.engines[0],
            "candidate": self.engines[1],
            "dtype": self.dtype,
            "tolerance": self.tolerance,
            "max_abs_diff": _finite_or_none(self.max_abs_diff),
            "passed": self.passed,
            "n_requests": len(self.requests),
            "per_request": [
                {"label": r.label, "n_tokens": r.n_tokens[0], "abs_diff": _finite_or_none(r.diff)} for r in self.requests
            ],
        }
        if engine_info:
            record["engine_info"] = {"reference": self.engine_info[0], "candidate": self.engine_info[1]}
        return record


def check_engines(
    spec: ModelSpec,
    engines: Sequence[str] = ("hf", "vllm"),
    canary: Sequence[tuple[str, ScoreRequest]] | None = None,
    tolerance: float | None = None,
    reference_model: str | None = None,
) -> ParityReport:
    """Score ``canary`` (default: the built-in one) with ``spec`` under each of two engine names and compare.

    ``reference_model`` is the reference engine's model when the candidate's ``spec.model`` is not a local model
    (a served engine's URL): the endpoint against the same weights loaded here. ``tolerance`` defaults by the
    reference engine's resolved dtype (``DEFAULT_TOLERANCE``)."""
    if len(engines) != 2:
        raise ValueError(f"check_engines compares two engines (reference, candidate), got {list(engines)}")
    labelled = list(canary) if canary is not None else canary_requests(spec)
    requests = [request for _, request in labelled]
    reference_spec = spec.model_dump() | (
        {"model": reference_model, "revision": None, "server": None} if reference_model is not None else {}
    )
    # Built, not copied: a step tag turns each engine name into its process-RM engine (hf -> hf-prm).
    specs = [ModelSpec.build({**reference_spec, "engine": engines[0]}), ModelSpec.build({**spec.model_dump(), "engine": engines[1]})]
    scored = [_score_fresh(one, requests) for one in specs]
    (reference, reference_info), (candidate, candidate_info) = scored
    dtype = str(reference_info.get("dtype", "float32"))
    diffs = tuple(
        RequestDiff(
            label=label,
            n_tokens=(reference[i].n_tokens, candidate[i].n_tokens),
            reference=_values(reference[i]),
            candidate=_values(candidate[i]),
        )
        for i, (label, _) in enumerate(labelled)
    )
    return ParityReport(
        engines=(engines[0], engines[1]),
        dtype=dtype,
        tolerance=tolerance if tolerance is not None else DEFAULT_TOLERANCE.get(dtype, FALLBACK_TOLERANCE),
        requests=diffs,
        engine_info=(reference_info, candidate_info),
    )


#: Engines whose runs record a parity check against hf (``run_parity``).
CHECKED_ENGINES = frozenset({"vllm", "vllm-prm"})


def run_parity(spec: ModelSpec) -> dict[str, Any] | None:
    """The parity record a run of ``spec`` stores in results.json: its engine against hf on the canary, or None for
    engines that are hf (or have no hf counterpart). Costs one more load of each engine; a failed check is recorded,
    not raised, so the run's scores are kept."""
    if spec.engine not in CHECKED_ENGINES:
        return None
    return check_engines(spec, engines=("hf", spec.engine)).as_dict(engine_info=False)


def _score_fresh(spec: ModelSpec, requests: list[ScoreRequest]) -> tuple[list[Score], dict[str, Any]]:
    """Scores in request order and the engine's info, in the engine's own batches; the engine is released after."""
    engine: Engine = create_engine(spec)
    try:
        by_key: dict[str, Score] = {}
        for batch in pack_batches(engine.encode(requests), engine.default_batch_tokens):
            by_key.update((m.request.key, s) for m, s in zip(batch.members, engine.score(batch.members)))
        return [by_key[r.key] for r in requests], engine.info()
    finally:
        close = getattr(engine, "close", None)
        if callable(close):
            close()
        del engine
        _release_memory()


def _release_memory() -> None:
    """Free the last engine's model now, so that the next one (vLLM takes most of a GPU) finds the memory."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _values(score: Score) -> tuple[float, ...]:
    return score.steps if score.steps else (score.value,)


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
