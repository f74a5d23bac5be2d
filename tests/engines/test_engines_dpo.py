"""The DPO implicit-reward engine against a direct computation on two tiny random causal LMs, batch invariance,
exact response masking, truncation, fingerprints and options. The vLLM prompt-log-prob path is checked against
the same direct computation in tests/engines/test_judge_dpo_vllm.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rmbench.cache import ScoreCache
from rmbench.devtools.tiny_models import EOS
from rmbench.engines.dpo import DPOEngine, DPOOptions
from rmbench.errors import ModelSpecError
from rmbench.items import user_turn
from rmbench.modelspec import ModelSpec
from rmbench.requests import ScoreRequest
from rmbench.scoring import score_requests

TOLERANCE = 1e-5  # fp32

REQUESTS = [
    ScoreRequest(user_turn("What is the capital of France?"), "Paris."),
    ScoreRequest(user_turn("What is the capital of France?"), "The capital of France is Paris, a city on the Seine."),
    ScoreRequest(user_turn("Say something."), f"First part{EOS} and the part after the end token."),
    ScoreRequest(
        (("system", "Be brief."), ("user", "Explain why the sky is blue."), ("assistant", "Rayleigh."), ("user", "More?")),
        "Shorter wavelengths scatter more strongly off air molecules, so blue light reaches us from every direction. "
        * 3,
    ),
    ScoreRequest(user_turn("Add."), "5"),
]


@pytest.fixture(scope="module")
def policy_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rmbench.devtools.tiny_models import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("policy"), seed=0)


@pytest.fixture(scope="module")
def reference_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rmbench.devtools.tiny_models import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("reference"), seed=1)


def _engine(policy: Path, reference: Path | None, **options: Any) -> DPOEngine:
    """DPO options live in the model spec (beta, reference_model, reference_free, length_normalize)."""
    if reference is not None:
        options["reference_model"] = str(reference)
    else:
        options["reference_free"] = True
    return DPOEngine(ModelSpec(model=str(policy), engine="dpo", **options))


def direct_logprob(model_dir: Path, request: ScoreRequest) -> tuple[float, int]:
    """Sum of log π(y_t | x, y_<t) over the response tokens, written out plainly: one unpadded forward,
    log_softmax, gather. The response is what the chat template adds after the prompt's generation prompt."""
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    prompt = [{"role": r, "content": c} for r, c in request.prompt]
    prompt_text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    full_text = tokenizer.apply_chat_template(request.messages(), tokenize=False)
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    ids = tokenizer(full_text, add_special_tokens=False)["input_ids"]
    assert ids[: len(prompt_ids)] == prompt_ids  # the texts here split cleanly, so the mask is unambiguous
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), dim=-1)
    response_positions = range(len(prompt_ids), len(ids))
    return sum(float(logprobs[t - 1, ids[t]]) for t in response_positions), len(response_positions)


@pytest.fixture(scope="module")
def direct(policy_lm: Path, reference_lm: Path) -> dict[str, list[tuple[float, int]]]:
    return {
        "policy": [direct_logprob(policy_lm, r) for r in REQUESTS],
        "reference": [direct_logprob(reference_lm, r) for r in REQUESTS],
    }


def test_reward_equals_the_direct_computation(policy_lm: Path, reference_lm: Path, direct: dict) -> None:
    engine = _engine(policy_lm, reference_lm, beta=0.5)
    values = [s.value for s in engine.score(engine.encode(REQUESTS))]
    expected = [0.5 * (p - r) for (p, _), (r, _) in zip(direct["policy"], direct["reference"])]
    assert np.max(np.abs(np.subtract(values, expected))) < TOLERANCE
    assert np.ptp(values) > 0.1  # not degenerate: the two models really differ per response


def test_reference_free_and_length_normalised_modes(policy_lm: Path, direct: dict) -> None:
    free = _engine(policy_lm, None, beta=0.1)
    normalised = _engine(policy_lm, None, beta=0.1, length_normalize=True)
    values_free = [s.value for s in free.score(free.encode(REQUESTS))]
    values_norm = [s.value for s in normalised.score(normalised.encode(REQUESTS))]
    assert np.allclose(values_free, [0.1 * p for p, _ in direct["policy"]], atol=TOLERANCE, rtol=0)
    assert np.allclose(values_norm, [0.1 * p / n for p, n in direct["policy"]], atol=TOLERANCE, rtol=0)
    assert free.fingerprint != normalised.fingerprint


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_score_does_not_depend_on_the_batch(policy_lm: Path, reference_lm: Path, padding_side: str) -> None:
    engine = _engine(policy_lm, reference_lm, padding_side=padding_side)
    encoded = engine.encode(REQUESTS)
    lengths = [e.n_tokens for e in encoded]
    assert max(lengths) > 4 * min(lengths)  # the batch really is padded
    alone = [engine.score([e])[0].value for e in encoded]
    batched = [s.value for s in engine.score(encoded)]
    assert np.max(np.abs(np.subtract(alone, batched))) < TOLERANCE


def test_only_response_tokens_are_counted(policy_lm: Path) -> None:
    """Same response after a longer prompt: the target count is the response's, and targets end the sequence."""
    engine = _engine(policy_lm, None)
    short, long = engine.encode(
        [ScoreRequest(user_turn("Hi."), "Paris."), ScoreRequest(user_turn("Hi. " * 30), "Paris.")]
    )
    assert len(short.payload.targets) == len(long.payload.targets) > 0
    assert long.payload.targets[-1] == len(long.payload.ids) - 1
    assert long.payload.targets == list(range(long.n_tokens - len(long.payload.targets), long.n_tokens))


def test_truncation_cuts_the_prompt_first_and_is_reported(policy_lm: Path) -> None:
    """Left truncation cuts the prompt's start: the response is still scored whole (under a shorter context)."""
    request = ScoreRequest(user_turn("Tell me more. " * 20), "Paris.")
    (full,) = _engine(policy_lm, None).encode([request])
    (cut,) = _engine(policy_lm, None, max_length=24).encode([request])
    assert not full.truncated and full.n_tokens > 24
    assert cut.truncated and cut.n_tokens == 24
    assert cut.payload.ids[0] == full.payload.ids[0]  # BOS kept
    assert cut.payload.ids[-len(cut.payload.targets) :] == full.payload.ids[-len(full.payload.targets) :]
    assert len(cut.payload.targets) == len(full.payload.targets)


def test_scores_through_the_scheduler_and_cache(policy_lm: Path, reference_lm: Path, tmp_path: Path) -> None:
    engine = _engine(policy_lm, reference_lm)
    with ScoreCache(tmp_path / "cache.sqlite") as cache:
        first, stats = score_requests(REQUESTS, engine, cache, token_budget=64, show_progress=False)
        again, stats_again = score_requests(REQUESTS, engine, cache, show_progress=False)
    assert stats.batches > 1 and stats_again.cache_hits == len(REQUESTS)
    assert all(abs(first[k].value - again[k].value) < 1e-9 for k in first)


def test_every_option_changes_the_fingerprint(policy_lm: Path, reference_lm: Path) -> None:
    prints = {
        _engine(policy_lm, reference_lm).fingerprint,
        _engine(policy_lm, reference_lm, beta=0.2).fingerprint,
        _engine(policy_lm, policy_lm).fingerprint,  # another reference model
        _engine(policy_lm, None).fingerprint,
    }
    assert len(prints) == 4


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="needs reference_model"):
        DPOOptions()
    with pytest.raises(ValueError, match="exclude each other"):
        DPOOptions(reference_model="ref", reference_free=True)
    with pytest.raises(ValueError):
        DPOOptions(reference_free=True, beta=0)


def test_options_come_from_the_model_spec(policy_lm: Path, reference_lm: Path) -> None:
    """The engine reads its options from spec fields of the same names (ModelSpec gains them; a subclass stands
    in here), and refuses to run without a reference unless told it is reference-free."""

    class SpecWithDPO(ModelSpec):
        reference_model: str | None = None
        beta: float = 0.1
        reference_free: bool = False

    spec = SpecWithDPO(model=str(policy_lm), engine="dpo", reference_model=str(reference_lm), beta=0.3)
    assert DPOOptions.from_spec(spec) == DPOOptions(reference_model=str(reference_lm), beta=0.3)
    with pytest.raises(ModelSpecError, match="needs reference_model"):
        DPOEngine(SpecWithDPO(model=str(policy_lm), engine="dpo"))
    with pytest.raises(ModelSpecError, match="hidden state"):
        _engine(policy_lm, None).score([], hidden=True)
