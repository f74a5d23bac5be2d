"""The MiniLM baseline truncates before tokenizing (issue 15): a 10 MB response is never tokenized whole, and the
ids are exactly those of tokenizing everything and then truncating."""

from __future__ import annotations

from typing import Any

import pytest

from rmbench.engines import create_engine
from rmbench.engines.baseline import MiniLMEngine
from rmbench.engines.encoding import truncate_ids
from rmbench.modelspec import ModelSpec


@pytest.fixture(scope="module", params=["left", "right"])
def engine(request: pytest.FixtureRequest) -> MiniLMEngine:
    made = create_engine(ModelSpec(model="", engine="minilm", truncation_side=request.param))
    assert isinstance(made, MiniLMEngine)
    return made


def _reference(engine: MiniLMEngine, text: str) -> tuple[list[int], bool]:
    ids = list(engine.tokenizer(text)["input_ids"])
    return truncate_ids(ids, engine.max_tokens, engine.spec.truncation_side, engine.special_ids)


@pytest.mark.parametrize("text", [
    " ".join(f"word{i} unbelievably, café-naïve!" for i in range(3000)),
    "short text",
    "x" * 20000,  # no whitespace at all: tokenized whole, as before
    "Das ist ein Satz. " * 500 + "Ende",
])
def test_same_ids_as_tokenizing_everything(engine: MiniLMEngine, text: str) -> None:
    assert engine._ids(text) == _reference(engine, text)


def test_a_10_mb_response_is_cut_before_tokenizing(engine: MiniLMEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    huge = "lorem ipsum dolor sit amet " * 400_000  # ~10.8 MB
    seen: list[int] = []
    real = engine.tokenizer

    class Recording:
        def __call__(self, text: str, **kwargs: Any) -> Any:
            seen.append(len(text))
            return real(text, **kwargs)

    monkeypatch.setattr(engine, "tokenizer", Recording())
    ids, truncated = engine._ids(huge)
    assert truncated and len(ids) == engine.max_tokens
    assert max(seen) <= engine.max_tokens * MiniLMEngine.CHARS_PER_TOKEN
