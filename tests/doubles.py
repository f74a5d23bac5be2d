"""Test doubles that stand in for heavy package parts; they live here, not in the package, because only tests use
them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


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
