"""Generative critics on step-level suites: the judge engines with ProcessBench's critic prompt answer the earliest
erroneous step, unparseable answers are counted, and critics land on the same step_level table as PRMs."""

from __future__ import annotations

import re

import pytest

from rmbench.engines.base import Encoded
from rmbench.engines.judge import JudgeEngine, critic_steps
from rmbench.items import Response, StepItem, user_turn
from rmbench.judges.parsing import EARLIEST_ERROR_PATTERNS, compile_patterns, parse_earliest_error
from rmbench.judges.templates import load_template, tagged_steps
from rmbench.modelspec import ModelSpec
from rmbench.protocols.base import MetricOptions
from rmbench.protocols.steps import StepLevelProtocol
from rmbench.requests import ScoreRequest
from tests.doubles import ScriptedGenerator

PATTERNS = compile_patterns(EARLIEST_ERROR_PATTERNS)


def test_parse_takes_the_last_boxed_index_like_processbench() -> None:
    assert parse_earliest_error("first \\boxed{2}, on reflection \\boxed{ 1 }", PATTERNS, 4) == 1
    assert parse_earliest_error("no error: \\boxed{-1}", PATTERNS, 4) == -1
    assert parse_earliest_error("\\boxed{4}", PATTERNS, 4) is None  # past the last step
    assert parse_earliest_error("paragraph 2 is wrong", PATTERNS, 4) is None


def test_prompt_has_processbench_shape() -> None:
    prompt = load_template("processbench_critic").critic
    assert prompt is not None
    text = prompt.messages(question="Q?", tagged_response=tagged_steps(("a", "b")))[0]["content"]
    assert "<paragraph_0>\na\n</paragraph_0>\n\n<paragraph_1>\nb\n</paragraph_1>" in text
    assert text.rstrip().endswith("Please put your final answer (i.e., the index) in \\boxed{}.")
    assert critic_steps(1, 3) == (1.0, 0.0, 0.0) and critic_steps(-1, 2) == (1.0, 1.0)


def _answer(messages: list[dict[str, str]]) -> str:
    """A scripted critic: flags the first paragraph containing 'wrong', says -1 otherwise, and babbles on 'garble'."""
    text = messages[-1]["content"]
    if "garble" in text:
        return "I cannot tell."
    paragraphs = re.findall(r"<paragraph_(\d+)>\n(.*?)\n</paragraph_\d+>", text, re.S)
    wrong = [int(i) for i, body in paragraphs if "wrong" in body]
    return f"Reviewed. \\boxed{{{wrong[0] if wrong else -1}}}"


def test_critic_scores_run_through_the_step_level_protocol() -> None:
    def item(i: int, steps: tuple[str, ...], errors: tuple[int, ...]) -> StepItem:
        return StepItem(f"i{i}", user_turn(f"q{i}"), Response.from_steps(steps), errors, True, "math", {})

    items = [
        item(0, ("ok", "wrong here", "so 3"), (2,)),  # found
        item(1, ("ok", "fine"), ()),  # correct, passed
        item(2, ("ok", "subtle", "wrong later"), (2,)),  # critic flags step 3, truth is step 2: missed
        item(3, ("garble", "x"), (1,)),  # unparseable: excluded and counted
    ]
    engine = JudgeEngine(
        ModelSpec(model="scripted-critic", engine="judge"),
        ScriptedGenerator(_answer),
        load_template("processbench_critic"),
    )
    requests = [ScoreRequest.of(it.prompt, it.response) for it in items]
    scores = engine.score(engine.encode(requests))
    assert engine.counts["unparseable"] == 1 and scores[1].steps == (1.0, 1.0)
    result = StepLevelProtocol().evaluate(items, {r.key: s for r, s in zip(requests, scores)}, MetricOptions())
    assert result.excluded == {"invalid_score": 1}
    assert result.metric("first_error_acc_error").value == pytest.approx(0.5)
    assert result.metric("first_error_acc_correct").value == pytest.approx(1.0)


def test_templates_without_a_critic_keep_rating_step_split_solutions() -> None:
    engine = JudgeEngine(
        ModelSpec(model="scripted-judge", engine="judge"),
        ScriptedGenerator(lambda m: "Rating: [[7]]"),
        load_template("verdict_only"),
    )
    request = ScoreRequest(user_turn("q"), "a\n\nb", steps=("a", "b"))
    (score,) = engine.score(engine.encode([request]))
    assert score.value == 7 and score.steps == ()


def test_encoded_critic_requests_use_the_critic_prompt() -> None:
    engine = JudgeEngine(
        ModelSpec(model="scripted-critic", engine="judge"),
        ScriptedGenerator(_answer),
        load_template("processbench_critic"),
    )
    (encoded,) = engine.encode([ScoreRequest(user_turn("q"), "a\n\nb", steps=("a", "b"))])
    assert isinstance(encoded, Encoded) and encoded.payload.prompt.kind == "earliest error step"
