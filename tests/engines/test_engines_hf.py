"""The transformers engine: batch invariance for both padding sides, the reward-reading token, chat templates,
truncation, hidden states, process RMs and the error paths."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rmbench.cache import ScoreCache
from rmbench.devtools.tiny_models import EOS, STEP_TAG
from rmbench.engines import create_engine
from rmbench.engines.hf import HFEngineBase
from rmbench.engines.hf_prm import HFProcessEngine
from rmbench.errors import ModelSpecError
from rmbench.items import user_turn
from rmbench.modelspec import ModelSpec
from rmbench.requests import Score, ScoreRequest
from rmbench.scoring import score_requests

TOLERANCE = 1e-5  # fp32

REQUESTS = [
    ScoreRequest(user_turn("What is the capital of France?"), "Paris."),
    ScoreRequest(user_turn("What is the capital of France?"), "The capital of France is Paris, a city on the Seine."),
    # eos (== pad) inside the text and at its end: a pad-token search would stop reading there.
    ScoreRequest(user_turn("Say something."), f"First part{EOS} and the part after the end token."),
    ScoreRequest(user_turn("Say something."), f"It ends with the end token{EOS}"),
    ScoreRequest(
        (("system", "Be brief."), ("user", "Explain why the sky is blue."), ("assistant", "Rayleigh."), ("user", "More?")),
        "Shorter wavelengths scatter more strongly off air molecules, so blue light reaches us from every direction. "
        * 4,
    ),
    ScoreRequest(user_turn("Add."), "5"),
]


def _engine(path: Path, **options: Any) -> Any:
    engine = create_engine(ModelSpec(model=str(path), **options))
    assert isinstance(engine, HFEngineBase)
    assert isinstance(engine, HFProcessEngine) == (engine.spec.engine == "hf-prm")  # the class is the name's
    return engine


def _alone_and_batched(engine: HFEngineBase, requests: list[ScoreRequest]) -> tuple[list[Score], list[Score]]:
    encoded = engine.encode(requests)
    alone = [engine.score([e], hidden=True)[0] for e in encoded]
    batched = engine.score(encoded, hidden=True)
    return alone, batched


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_decoder_score_alone_equals_score_in_a_mixed_length_batch(tiny_rm: Path, padding_side: str) -> None:
    engine = _engine(tiny_rm, padding_side=padding_side)
    assert engine.padding_side == padding_side
    alone, batched = _alone_and_batched(engine, REQUESTS)
    lengths = [s.n_tokens for s in alone]
    assert max(lengths) > 4 * min(lengths)  # the batch really is padded
    diffs = [abs(a.value - b.value) for a, b in zip(alone, batched)]
    assert max(diffs) < TOLERANCE, diffs
    hidden_diff = max(float(np.abs(a.hidden - b.hidden).max()) for a, b in zip(alone, batched))
    assert hidden_diff < 1e-4
    # Not a degenerate model: different texts get clearly different scores.
    assert np.ptp([s.value for s in alone]) > 0.05


def test_left_and_right_padding_give_the_same_scores(tiny_rm: Path) -> None:
    left = _engine(tiny_rm, padding_side="left")
    right = _engine(tiny_rm, padding_side="right")
    values_left = [s.value for s in left.score(left.encode(REQUESTS))]
    values_right = [s.value for s in right.score(right.encode(REQUESTS))]
    assert np.allclose(values_left, values_right, atol=TOLERANCE, rtol=0)
    assert left.fingerprint == right.fingerprint  # scores do not depend on the padding side: neither does the key


def test_reads_the_last_real_token_even_when_it_is_the_pad_token(tiny_rm: Path) -> None:
    """The template ends with eos == pad. transformers' own pooling searches for the pad id and reads the token
    before it; rmbench reads the eos itself, which matches the head applied to the unpadded last hidden state."""
    engine = _engine(tiny_rm)
    encoded = engine.encode([REQUESTS[3]])[0]
    assert encoded.payload[-1] == engine.tokenizer.eos_token_id == engine.tokenizer.pad_token_id
    ids = torch.tensor([encoded.payload])
    with torch.inference_mode():
        reference = engine.model.score(engine.model.model(ids).last_hidden_state[0, -1])[0].item()
        transformers_pooled = engine.model(ids).logits[0, 0].item()
    value = engine.score([encoded])[0].value
    assert value == pytest.approx(reference, abs=TOLERANCE)
    assert abs(value - transformers_pooled) > 1e-3


def test_matches_the_models_own_logit_when_no_pad_token_is_present(tiny_rm: Path) -> None:
    template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"  # no eos at the end
    engine = _engine(tiny_rm, chat_template=template)
    encoded = engine.encode([REQUESTS[1]])[0]
    assert engine.tokenizer.pad_token_id not in encoded.payload
    with torch.inference_mode():
        expected = engine.model(torch.tensor([encoded.payload])).logits[0, 0].item()
    assert engine.score([encoded])[0].value == pytest.approx(expected, abs=TOLERANCE)


def test_one_bos_whether_or_not_the_template_writes_it(tiny_rm: Path) -> None:
    bos_id = _engine(tiny_rm).tokenizer.bos_token_id
    with_bos = _engine(tiny_rm).encode(REQUESTS[:1])[0].payload  # the tiny template writes {{ bos_token }}
    without = _engine(tiny_rm, chat_template="plain").encode(REQUESTS[:1])[0].payload  # the tokenizer adds it
    for ids in (with_bos, without):
        assert ids[0] == bos_id and ids.count(bos_id) == 1


def test_truncation_is_applied_marked_and_counted(tiny_rm: Path, tmp_path: Path) -> None:
    engine = _engine(tiny_rm, max_length=24, truncation_side="left")
    encoded = engine.encode(REQUESTS)
    long = [e for e in encoded if e.truncated]
    assert long and all(e.n_tokens == 24 and len(e.payload) == 24 for e in long)
    # BOS and the final eos frame the sequence and survive; the cut is at the start of the content.
    full = _engine(tiny_rm).encode([long[0].request])[0].payload
    assert long[0].payload[0] == full[0] and long[0].payload[-23:] == full[-23:]
    right = _engine(tiny_rm, max_length=24, truncation_side="right").encode([long[0].request])[0].payload
    assert right[:23] == full[:23] and right[-1] == full[-1]

    with ScoreCache(tmp_path / "cache.sqlite") as cache:
        scores, stats = score_requests(REQUESTS, engine, cache, show_progress=False)
    assert stats.truncated == len(long) == sum(s.truncated for s in scores.values())
    assert all(math.isfinite(s.value) for s in scores.values())


def test_chat_template_override_string_file_and_builtin(tiny_rm: Path, tmp_path: Path) -> None:
    template = "{{ bos_token }}{% for m in messages %}[{{ m['role'] | upper }}] {{ m['content'] }}\n{% endfor %}"
    file = tmp_path / "template.jinja"
    file.write_text(template, encoding="utf-8")
    default = _engine(tiny_rm)
    from_string = _engine(tiny_rm, chat_template=template)
    from_file = _engine(tiny_rm, chat_template=str(file))
    plain = _engine(tiny_rm, chat_template="plain")

    request = REQUESTS[0]
    text = from_string.tokenizer.decode(from_string.encode([request])[0].payload)
    assert "[USER] What is the capital of France?" in text and "[ASSISTANT] Paris." in text
    assert from_file.encode([request])[0].payload == from_string.encode([request])[0].payload
    assert "assistant: Paris." in plain.tokenizer.decode(plain.encode([request])[0].payload)
    assert from_string.encode([request])[0].payload != default.encode([request])[0].payload
    assert (from_string.chat_template_source, from_file.chat_template_source) == ("spec", f"file:{file}")
    assert len({default.fingerprint, from_string.fingerprint, plain.fingerprint}) == 3
    assert from_string.fingerprint == from_file.fingerprint  # the key holds the template's text, not its path


def test_missing_chat_template_is_a_clear_error(tiny_bert_rm: Path) -> None:
    with pytest.raises(ModelSpecError, match="--chat-template.*plain"):
        _engine(tiny_bert_rm)
    with pytest.raises(ModelSpecError, match="neither an existing file"):
        _engine(tiny_bert_rm, chat_template="no-such-template.jinja")


def test_hidden_states_have_the_model_width(tiny_rm: Path) -> None:
    engine = _engine(tiny_rm)
    scores = engine.score(engine.encode(REQUESTS[:3]), hidden=True)
    width = engine.model.config.hidden_size
    assert all(s.hidden is not None and s.hidden.shape == (width,) and s.hidden.dtype == np.float32 for s in scores)
    assert all(s.hidden is None for s in engine.score(engine.encode(REQUESTS[:3])))


def test_encoder_is_right_padded_and_batch_invariant(tiny_bert_rm: Path) -> None:
    engine = _engine(tiny_bert_rm, chat_template="plain", padding_side="left")
    assert engine.padding_side == "right" and engine.head is None  # CLS pooling: never pad on the left
    alone, batched = _alone_and_batched(engine, REQUESTS)
    assert max(abs(a.value - b.value) for a, b in zip(alone, batched)) < TOLERANCE
    assert alone[0].hidden is not None and alone[0].hidden.shape == (engine.model.config.hidden_size,)
    tokens = engine.tokenizer.convert_ids_to_tokens(engine.encode(REQUESTS[:1])[0].payload)
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"


def test_tokenizer_extras_such_as_token_type_ids_never_reach_a_llama_forward(tiny_rm: Path) -> None:
    """A BERT-style tokenizer paired with a Llama model emits token_type_ids, which Llama's forward rejects."""
    engine = _engine(tiny_rm)
    engine.tokenizer.model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    assert "token_type_ids" in engine.tokenizer("a b")
    assert all(s.is_valid for s in engine.score(engine.encode(REQUESTS)))


def test_reward_index_and_activation(tiny_rm_two_labels: Path) -> None:
    raw = _engine(tiny_rm_two_labels, reward_index=1)
    squashed = _engine(tiny_rm_two_labels, reward_index=1, activation="sigmoid")
    first = _engine(tiny_rm_two_labels, reward_index=0)
    raw_values = np.array([s.value for s in raw.score(raw.encode(REQUESTS))])
    squashed_values = np.array([s.value for s in squashed.score(squashed.encode(REQUESTS))])
    first_values = np.array([s.value for s in first.score(first.encode(REQUESTS))])
    assert np.allclose(squashed_values, 1 / (1 + np.exp(-raw_values)), atol=1e-6)
    assert not np.allclose(raw_values, first_values)
    with pytest.raises(ModelSpecError, match="reward_index 2"):
        _engine(tiny_rm_two_labels, reward_index=2)


def test_non_finite_outputs_become_nan_without_raising(tiny_rm: Path) -> None:
    engine = _engine(tiny_rm)
    with torch.no_grad():
        engine.model.score.weight.fill_(float("inf"))  # +inf and -inf products: inf and nan logits
    scores = engine.score(engine.encode(REQUESTS))
    assert all(math.isnan(s.value) and not s.is_valid for s in scores)


def test_fingerprint_info_and_defaults(tiny_rm: Path) -> None:
    engine = _engine(tiny_rm)
    assert engine.fingerprint == _engine(tiny_rm).fingerprint
    assert engine.default_batch_tokens == 1024  # CPU
    info = engine.info()
    assert info["dtype"] == "float32" and info["device"] == "cpu"
    assert info["model_class"] == "LlamaForSequenceClassification" and info["num_params"] > 1_000_000
    assert {"torch", "transformers"} <= info.keys()
    with pytest.raises(ModelSpecError, match="needs a model"):
        create_engine(ModelSpec(model=""))


# --- process reward models ------------------------------------------------------------------------------------

PRM_REQUESTS = [
    ScoreRequest(user_turn("What is 2 + 3?"), "", steps=("Step 1: 2 + 3 = 5.", "So the answer is 5.")),
    ScoreRequest(user_turn("What is 2 + 3?"), "It is five."),  # no step split: one step
    ScoreRequest(user_turn("Add them."), "", steps=tuple(f"Step {i}: {i} + {i * 3} = {i * 4}." for i in range(8))),
]


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_process_rm_scores_every_step_batch_invariantly(tiny_prm: Path, padding_side: str) -> None:
    engine = _engine(tiny_prm, step_tag=STEP_TAG, padding_side=padding_side)
    assert isinstance(engine, HFProcessEngine) and engine.spec.engine == "hf-prm"  # "hf" + a step tag = "hf-prm"
    alone, batched = _alone_and_batched(engine, PRM_REQUESTS)
    assert [len(s.steps) for s in batched] == [2, 1, 8]
    assert all(s.value == s.steps[-1] and s.is_valid for s in batched)
    diffs = [abs(x - y) for a, b in zip(alone, batched) for x, y in zip(a.steps, b.steps)]
    assert max(diffs) < TOLERANCE
    assert batched[0].hidden is not None and batched[0].hidden.shape == (engine.model.config.hidden_size,)


def test_process_rm_steps_cut_by_truncation_are_nan(tiny_prm: Path) -> None:
    engine = _engine(tiny_prm, step_tag=STEP_TAG, max_length=30)
    score = engine.score(engine.encode(PRM_REQUESTS[2:]))[0]
    assert score.truncated and len(score.steps) == 8
    assert math.isnan(score.steps[0]) and math.isfinite(score.steps[-1]) and not score.is_valid


def test_process_rm_spec_errors(tiny_prm: Path) -> None:
    with pytest.raises(ModelSpecError, match="--step-tag"):
        create_engine(ModelSpec(model=str(tiny_prm), engine="hf-prm"))
    with pytest.raises(ModelSpecError, match="one token"):
        _engine(tiny_prm, step_tag="several tokens here")
    tags = _engine(tiny_prm, engine="hf-prm", step_tag=STEP_TAG).encode(PRM_REQUESTS[:1])[0].payload[1]
    assert len(tags) == 2 and None not in tags


def test_tiny_models_are_deterministic_given_the_seed(tmp_path: Path) -> None:
    from rmbench.devtools.tiny_models import build_tiny_llama_classifier
    from rmbench.modelspec import directory_digest

    digests = [
        directory_digest(build_tiny_llama_classifier(tmp_path / name, layers=1, seed=seed))
        for name, seed in (("a", 0), ("b", 0), ("c", 1))
    ]
    assert digests[0] == digests[1] != digests[2]
