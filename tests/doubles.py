"""Test doubles that stand in for heavy package parts; they live here, not in the package, because only tests use
them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rmbench.engines.judge import JudgeEngine, spec_template
from rmbench.modelspec import ModelSpec


class ScriptedGenerator:
    """A fake judge ``TextGenerator`` for tests: ``respond(messages)`` returns the judge's text. Token counts are
    whitespace words, so packing and too-long checks still run."""

    default_batch_tokens = 4096

    def __init__(self, respond: Callable[[list[dict[str, str]]], str]):
        self.respond = respond
        self.calls = 0

    def prepare(self, messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], int]:
        return messages, sum(len(m["content"].split()) for m in messages)

    def generate(self, inputs: Sequence[list[dict[str, str]]], max_new_tokens: int) -> list[str]:
        self.calls += len(inputs)
        return [self.respond(messages) for messages in inputs]

    def info(self) -> dict[str, Any]:
        return {"backend": "scripted"}


# --- a scripted judge engine for whole runs -------------------------------------------------------------------------

#: The prompt the scripted judges read (``--judge-template`` takes its path): one field a line, so a judge's script
#: sees the question and which response is shown as A and which as B.
SCRIPTED_JUDGE_TEMPLATE = """
name: scripted
pointwise:
  user: "Q: {question}\\nR: {response}"
  max_new_tokens: 8
pairwise:
  system: Judge the two answers.
  user: "Q: {question}\\nA: {response_a}\\nB: {response_b}"
  max_new_tokens: 8
"""


def shown(messages: list[dict[str, str]]) -> dict[str, str]:
    """The fields of a scripted-template prompt: Q (question), A and B (the responses as shown), R (pointwise)."""
    fields = {}
    for line in messages[-1]["content"].split("\n"):
        key, _, value = line.partition(": ")
        fields[key] = value
    return fields


def _prefers_good(fields: dict[str, str]) -> str:
    return "[[A]]" if fields["A"].lstrip("-* ").startswith("good") else "[[B]]"


#: Judges by model name (``--model NAME`` with ``--engine scripted-judge``), on responses that start with "good" (the
#: better one) or "bad": ``first`` always picks the response shown first, ``second`` the one shown second, ``fair``
#: the good one wherever it is shown, ``half`` is fair on questions ending in an even digit and picks the first
#: shown on the others.
SCRIPTED_JUDGES: dict[str, Callable[[list[dict[str, str]]], str]] = {
    "first": lambda messages: "[[A]]",
    "second": lambda messages: "[[B]]",
    "fair": lambda messages: _prefers_good(shown(messages)),
    "half": lambda messages: (
        _prefers_good(shown(messages)) if int(shown(messages)["Q"][-1]) % 2 == 0 else "[[A]]"
    ),
}


class ScriptedSpecGenerator(ScriptedGenerator):
    """A ``ScriptedGenerator`` that a judge engine class can name as its backend (batch budget without a model)."""

    @classmethod
    def default_batch_tokens_of(cls, spec: ModelSpec) -> int:
        return cls.default_batch_tokens


class ScriptedJudge(JudgeEngine):
    """Engine ``scripted-judge``: a generative judge whose verdicts are ``SCRIPTED_JUDGES[spec.model]``."""

    generator_class = ScriptedSpecGenerator  # type: ignore[assignment]

    def __init__(self, spec: ModelSpec):
        super().__init__(spec, ScriptedSpecGenerator(SCRIPTED_JUDGES[spec.model]), spec_template(spec))


#: Test engines to register with ``ENGINES.extended`` (monkeypatched in-process runs).
JUDGE_ENGINES = {"scripted-judge": "tests.doubles:ScriptedJudge"}
