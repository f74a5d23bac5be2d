"""Baseline engines (length, random, MiniLM) and the promise that ``import rmbench`` stays light."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from rmbench.engines import ENGINES, Engine, create_engine
from rmbench.engines.baseline import LengthEngine, MiniLMEngine, RandomEngine
from rmbench.errors import ModelSpecError
from rmbench.items import user_turn
from rmbench.modelspec import ModelSpec
from rmbench.requests import ScoreRequest

REQUESTS = [
    ScoreRequest(user_turn("What is the capital of France?"), "The capital of France is Paris."),
    ScoreRequest(user_turn("What is the capital of France?"), "Bananas are a good source of potassium."),
    ScoreRequest(user_turn("How do I bake bread?"), "Mix flour, water, yeast and salt, knead, let it rise, then bake."),
    ScoreRequest(user_turn("How do I bake bread?"), "The stock market closed slightly higher on Tuesday."),
    ScoreRequest(
        (("user", "Tell me about cats."), ("assistant", "Cats are small felines."), ("user", "What do cats eat?")),
        "Cats are carnivores: they eat meat, such as fish, chicken and commercial cat food.",
    ),
    ScoreRequest(
        (("user", "Tell me about cats."), ("assistant", "Cats are small felines."), ("user", "What do cats eat?")),
        "Python is a programming language created by Guido van Rossum.",
    ),
]


def _spec(engine: str, **options: object) -> ModelSpec:
    return ModelSpec(model="", engine=engine, **options)


@pytest.fixture(scope="module")
def minilm() -> MiniLMEngine:
    engine = create_engine(_spec("minilm"))
    assert isinstance(engine, MiniLMEngine)
    return engine


def test_import_rmbench_does_not_import_torch() -> None:
    code = (
        "import sys, rmbench, rmbench.engines, rmbench.engines.baseline, rmbench.scoring, rmbench.cache\n"
        "from rmbench.modelspec import ModelSpec\n"
        "from rmbench.engines import create_engine\n"
        "engine = create_engine(ModelSpec(model='', engine='length'))\n"
        "engine.score(engine.encode([]))\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'vllm') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", ["length", "random", "minilm"])
def test_baselines_are_engines_registered_by_name(name: str) -> None:
    assert name in ENGINES
    engine = create_engine(_spec(name))
    assert isinstance(engine, Engine)
    assert engine.fingerprint == create_engine(_spec(name)).fingerprint
    assert engine.info()["engine"] == name


def test_length_scores_characters_and_estimates_tokens() -> None:
    engine = LengthEngine(_spec("length"))
    encoded = engine.encode(REQUESTS)
    assert [s.value for s in engine.score(encoded)] == [float(len(r.response)) for r in REQUESTS]
    assert [e.n_tokens for e in encoded] == [max(1, r.char_length // 4) for r in REQUESTS]


def test_random_is_a_pure_function_of_seed_and_key() -> None:
    engine = RandomEngine(_spec("random", seed=7))
    encoded = engine.encode(REQUESTS)
    batched = [s.value for s in engine.score(encoded)]
    alone = [engine.score([e])[0].value for e in reversed(encoded)][::-1]
    again = [s.value for s in RandomEngine(_spec("random", seed=7)).score(encoded)]
    other_seed = [s.value for s in RandomEngine(_spec("random", seed=8)).score(encoded)]
    assert batched == alone == again
    assert all(0.0 <= v < 1.0 for v in batched) and len(set(batched)) == len(batched)
    assert all(a != b for a, b in zip(batched, other_seed))
    assert RandomEngine(_spec("random", seed=7)).fingerprint != RandomEngine(_spec("random", seed=8)).fingerprint


def test_random_scores_look_uniform() -> None:
    engine = RandomEngine(_spec("random"))
    requests = [ScoreRequest(user_turn(f"q{i}"), f"r{i}") for i in range(2000)]
    values = np.array([s.value for s in engine.score(engine.encode(requests))])
    assert abs(values.mean() - 0.5) < 0.03 and values.min() < 0.01 and values.max() > 0.99


def test_minilm_prefers_the_relevant_response(minilm: MiniLMEngine) -> None:
    values = [s.value for s in minilm.score(minilm.encode(REQUESTS))]
    for relevant, irrelevant in zip(values[0::2], values[1::2]):
        assert relevant > irrelevant + 0.2
    assert all(-1.0 <= v <= 1.0 for v in values)


def test_minilm_is_deterministic_and_batch_invariant(minilm: MiniLMEngine) -> None:
    encoded = minilm.encode(REQUESTS)
    assert [e.n_tokens for e in encoded] == [len(e.payload[0]) + len(e.payload[1]) for e in encoded]
    batched = minilm.score(encoded, hidden=True)
    alone = [minilm.score([e])[0].value for e in encoded]
    assert max(abs(a - b.value) for a, b in zip(alone, batched)) < 1e-5
    assert [s.value for s in batched] == [s.value for s in minilm.score(encoded)]
    assert batched[0].hidden is not None and batched[0].hidden.shape == (384,)


def test_minilm_reads_the_last_user_turn_and_counts_truncation() -> None:
    assert MiniLMEngine.prompt_text(REQUESTS[4]) == "What do cats eat?"
    engine = MiniLMEngine(_spec("minilm", max_length=8))
    encoded = engine.encode(REQUESTS)
    assert all(e.truncated for e in encoded if len(e.request.response) > 40)
    assert all(len(e.payload[1]) <= 8 for e in encoded)
    tokens = engine.tokenizer.convert_ids_to_tokens(encoded[2].payload[1])
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert engine.fingerprint != MiniLMEngine(_spec("minilm")).fingerprint


def test_unknown_engine_suggests_a_name() -> None:
    with pytest.raises(ModelSpecError, match="did you mean 'minilm'"):
        create_engine(_spec("minilmm"))
