"""The effective max length is the smaller of the spec's and the model's own (issue 15, item 10), and the shared
encoder cuts an over-long message before tokenizing it (a 10 MB response is never tokenized whole)."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rmbench.devtools.tiny_models import build_tokenizer
from rmbench.engines import create_engine
from rmbench.engines.encoding import (
    NO_TOKENIZER_LIMIT,
    ChatEncoder,
    effective_max_length,
    limit_notice,
    position_limit,
    tokenizer_limit,
)
from rmbench.items import user_turn
from rmbench.modelspec import ModelSpec
from rmbench.requests import ScoreRequest

POSITIONS = 128


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GPT-2 style sequence classifier with 128 position embeddings (its tokenizer claims 4096)."""
    import torch
    from transformers import GPT2Config, GPT2ForSequenceClassification

    path = tmp_path_factory.mktemp("gpt2-128")
    tokenizer = build_tokenizer(path)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=POSITIONS,
        n_embd=64,
        n_layer=1,
        n_head=2,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        GPT2ForSequenceClassification(config).eval().save_pretrained(str(path))
    return path


def _long_conversation(turns: int = 12) -> ScoreRequest:
    """An HH-RLHF-like conversation of several hundred tokens, far over 128."""
    prompt = tuple(
        (role, f"turn {i}: the assistant explains why the sky is blue, with an example for beginners, politely.")
        for i, role in enumerate(["user", "assistant"] * (turns // 2))
    ) + (user_turn("and now a recipe for bread please")[0],)
    return ScoreRequest(prompt=prompt, response="Sure, here is a recipe for bread in two steps. " * 20)


def test_gpt2_with_128_positions_scores_long_conversations(tiny_gpt2: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="rmbench.engines.encoding"):
        engine: Any = create_engine(ModelSpec(model=str(tiny_gpt2), engine="hf"))  # spec max_length: 4096
    assert any("max_length 4096" in r.message and "= 128" in r.message for r in caplog.records)
    encoded = engine.encode([_long_conversation(), ScoreRequest(prompt=user_turn("hi"), response="hello")])
    assert [e.n_tokens for e in encoded][0] == POSITIONS and encoded[0].truncated  # cut and counted
    assert not encoded[1].truncated
    scores = engine.score(encoded)  # an IndexError here before: positions past 128 have no embedding
    assert all(s.value == s.value for s in scores)  # finite, not NaN
    info = engine.info()
    assert info["max_length"] == POSITIONS
    assert info["model_limits"] == {"config.max_position_embeddings": POSITIONS, "tokenizer.model_max_length": 4096}


def test_a_spec_within_the_models_limit_is_kept_and_says_nothing(tiny_gpt2: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="rmbench.engines.encoding"):
        encoder = ChatEncoder(ModelSpec(model=str(tiny_gpt2), engine="hf", max_length=64))
    assert encoder.max_length == 64
    assert not [r for r in caplog.records if r.name == "rmbench.engines.encoding"]


def test_limit_rules() -> None:
    assert position_limit(SimpleNamespace(n_positions=128)) == (128, "n_positions")
    # As vLLM derives max_model_len: the smallest bound the config names.
    assert position_limit(SimpleNamespace(max_position_embeddings=4096, seq_length=2048)) == (2048, "seq_length")
    # RoBERTa counts positions from pad_token_id + 1: 514 embeddings hold 512 tokens.
    assert position_limit(SimpleNamespace(model_type="roberta", max_position_embeddings=514, pad_token_id=1)) == (
        512,
        "max_position_embeddings",
    )
    assert position_limit(SimpleNamespace(text_config=SimpleNamespace(max_position_embeddings=2048))) == (
        2048,
        "max_position_embeddings",
    )
    assert position_limit(SimpleNamespace()) is None
    assert tokenizer_limit(SimpleNamespace(model_max_length=512)) == 512
    assert tokenizer_limit(SimpleNamespace(model_max_length=int(1e30))) is None  # transformers' "unset"
    assert tokenizer_limit(SimpleNamespace(model_max_length=NO_TOKENIZER_LIMIT)) is None
    limits = {"config.n_positions": 512, "tokenizer.model_max_length": 1024}
    assert effective_max_length(4096, limits) == 512
    assert effective_max_length(256, limits) == 256
    assert effective_max_length(4096, {}) == 4096
    notice = limit_notice("m", 4096, limits)
    assert notice is not None and "config.n_positions = 512" in notice and "cut to 512" in notice
    assert limit_notice("m", 512, limits) is None


@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed")
def test_vllm_is_given_the_effective_limit_as_max_model_len(monkeypatch: pytest.MonkeyPatch) -> None:
    """vLLM refuses a max_model_len above the model's derived one ("max_model_len 4096 > derived 512")."""
    import vllm

    from rmbench.engines.vllm import VLLMClassifierEngine

    seen: dict[str, Any] = {}
    monkeypatch.setattr(vllm, "LLM", lambda **options: seen.update(options))
    engine = VLLMClassifierEngine.__new__(VLLMClassifierEngine)
    engine.spec = ModelSpec(model="some/model", engine="vllm")  # max_length 4096
    engine.dtype, engine.tensor_parallel_size = "float32", 1
    engine.encoder = SimpleNamespace(max_length=512)  # type: ignore[assignment]
    engine._load(enforce_eager=True)
    assert seen["max_model_len"] == 512


# --- cut before tokenizing -------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["left", "right"])
def encoder(request: pytest.FixtureRequest, tiny_rm: Path) -> ChatEncoder:
    return ChatEncoder(ModelSpec(model=str(tiny_rm), engine="hf", max_length=64, truncation_side=request.param))


def _whole(encoder: ChatEncoder, request: ScoreRequest) -> tuple[list[int], bool]:
    """The ids as before: the whole rendering tokenized, then truncated."""
    return encoder.tokenize(encoder.render(request.messages()))


@pytest.mark.parametrize(
    "response",
    [
        " ".join(f"word{i} explains the derivative of x squared, café-naïve!" for i in range(400)),
        "short answer",
        "x" * 5000,  # no whitespace at all: tokenized whole, as before
        "=" * 3000 + " " + "=" * 3000,  # long tokens: the window holds too few, so it is tokenized whole
        "Step 1: 1 + 3 = 4.\n\n" * 300,
    ],
)
def test_cut_message_gives_the_same_ids(encoder: ChatEncoder, response: str) -> None:
    request = ScoreRequest(prompt=user_turn("Explain it " * 200), response=response)
    [encoded] = encoder.encode([request])
    assert (encoded.payload, encoded.truncated) == _whole(encoder, request)


def test_a_10_mb_response_is_not_tokenized_whole(encoder: ChatEncoder, monkeypatch: pytest.MonkeyPatch) -> None:
    huge = "lorem ipsum dolor sit amet " * 400_000  # ~10.8 MB
    seen: list[int] = []
    real = encoder.tokenizer

    class Recording:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def __call__(self, text: str, **kwargs: Any) -> Any:
            seen.append(len(text))
            return real(text, **kwargs)

    monkeypatch.setattr(encoder, "tokenizer", Recording())
    [encoded] = encoder.encode([ScoreRequest(prompt=user_turn("write lorem ipsum"), response=huge)])
    assert encoded.truncated and encoded.n_tokens == 64
    assert max(seen) < 2 * 64 * 16  # the window and its rendering, never the 10 MB
