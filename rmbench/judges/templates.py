"""Judge prompt templates: YAML files with a pointwise (rate one response) and a pairwise (A vs B) prompt.

A template is chosen by the model spec's ``judge_template``: a shipped name (``rmbench/judges/templates/*.yaml``,
default ``mt_bench``) or a path to a YAML file of the same shape. Placeholders are ``{question}`` and
``{response}`` (pointwise) or ``{response_a}`` / ``{response_b}`` (pairwise); they are replaced in one pass, so
braces elsewhere in a template and placeholder-like text inside a response are left alone. Each prompt carries
its own generation length and, optionally, its own verdict patterns, because both belong to the output format the
prompt asks for. The whole template is part of the judge's fingerprint.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rmbench.errors import ModelSpecError
from rmbench.items import Conversation
from rmbench.judges.parsing import EARLIEST_ERROR_PATTERNS, RATING_PATTERNS, VERDICT_PATTERNS, compile_patterns
from rmbench.modelspec import stable_hash

TEMPLATES_DIR = Path(__file__).parent / "templates"
DEFAULT_TEMPLATE = "mt_bench"
_PLACEHOLDER = re.compile(r"\{(question|response|response_a|response_b|tagged_response)\}")


class JudgePrompt(BaseModel):
    """One judging mode: the messages to send, how long the judge may answer, and how to read its answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    system: str = Field("", description="System message; empty = none (some chat templates reject one).")
    user: str = Field(description="User message with the placeholders of this mode.")
    max_new_tokens: int = Field(512, gt=0, description="Generation length: room for an explanation + verdict.")
    patterns: tuple[str, ...] | None = Field(None, description="Verdict regexes (one group each); default built in.")

    @field_validator("patterns")
    @classmethod
    def _compilable(cls, patterns: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if patterns is not None:
            compile_patterns(patterns)
        return patterns

    def messages(self, **values: str) -> list[dict[str, str]]:
        """Chat messages with the placeholders filled in."""
        def fill(text: str) -> str:
            return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)

        user = {"role": "user", "content": fill(self.user)}
        return [{"role": "system", "content": fill(self.system)}, user] if self.system else [user]

    def _require(self, *names: str) -> None:
        used = set(_PLACEHOLDER.findall(self.system + self.user))
        missing = [n for n in names if n not in used]
        if missing:
            raise ValueError(f"prompt lacks placeholder(s) {', '.join('{' + n + '}' for n in missing)}")


class PointwisePrompt(JudgePrompt):
    """Rate one response; the rating must lie in [min_rating, max_rating] (else it is unparseable)."""

    kind: ClassVar[str] = "rating"
    min_rating: float = 1
    max_rating: float = 10

    @model_validator(mode="after")
    def _placeholders(self) -> PointwisePrompt:
        self._require("question", "response")
        if self.min_rating >= self.max_rating:
            raise ValueError(f"min_rating {self.min_rating} must be below max_rating {self.max_rating}")
        return self

    @cached_property
    def compiled(self) -> tuple[re.Pattern[str], ...]:
        return compile_patterns(self.patterns or RATING_PATTERNS)


class PairwisePrompt(JudgePrompt):
    """Compare response A (shown first) with response B; the verdict is A, B or a tie."""

    kind: ClassVar[str] = "verdict"

    @model_validator(mode="after")
    def _placeholders(self) -> PairwisePrompt:
        self._require("question", "response_a", "response_b")
        return self

    @cached_property
    def compiled(self) -> tuple[re.Pattern[str], ...]:
        return compile_patterns(self.patterns or VERDICT_PATTERNS)


class CriticPrompt(JudgePrompt):
    """Find the earliest erroneous step of a step-split solution (ProcessBench's critic): the answer is a 0-based
    step index, or -1 for "no error". ``{tagged_response}`` is the solution with each step in
    ``<paragraph_i>…</paragraph_i>`` tags, indexed from 0, exactly as ProcessBench renders it."""

    kind: ClassVar[str] = "earliest error step"

    @model_validator(mode="after")
    def _placeholders(self) -> CriticPrompt:
        self._require("question", "tagged_response")
        return self

    @cached_property
    def compiled(self) -> tuple[re.Pattern[str], ...]:
        return compile_patterns(self.patterns or EARLIEST_ERROR_PATTERNS)


def tagged_steps(steps: tuple[str, ...]) -> str:
    """ProcessBench's ``tagged_response``: each step between ``<paragraph_i>`` tags, indexed from 0."""
    return "".join(f"<paragraph_{i}>\n{step}\n</paragraph_{i}>\n\n" for i, step in enumerate(steps)).strip()


class JudgeTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    source: str | None = Field(None, description="Where the prompt text comes from.")
    pointwise: PointwisePrompt | None = None
    pairwise: PairwisePrompt | None = None
    critic: CriticPrompt | None = Field(
        None, description="Earliest-error critic for step-split solutions; used for them when present."
    )

    @property
    def digest(self) -> str:
        return stable_hash(self.model_dump())

    def prompt(
        self, mode: Literal["pointwise", "pairwise", "critic"]
    ) -> PointwisePrompt | PairwisePrompt | CriticPrompt:
        prompt = {"pointwise": self.pointwise, "pairwise": self.pairwise, "critic": self.critic}[mode]
        if prompt is None:
            raise ModelSpecError(f"judge template '{self.name}' has no {mode} prompt")
        return prompt


def shipped_templates() -> list[str]:
    return sorted(p.stem for p in TEMPLATES_DIR.glob("*.yaml"))


def load_template(name_or_path: str | None) -> JudgeTemplate:
    """A shipped template by name, or a template YAML file by path (None: the default)."""
    name = name_or_path or DEFAULT_TEMPLATE
    path = TEMPLATES_DIR / f"{name}.yaml" if name in shipped_templates() else Path(name)
    if not path.is_file():
        raise ModelSpecError(
            f"judge template '{name}' is neither a shipped template ({', '.join(shipped_templates())}) nor a file"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return JudgeTemplate.model_validate(data)
    except (OSError, yaml.YAMLError) as exc:
        raise ModelSpecError(f"judge template {path}: cannot read YAML: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ModelSpecError(f"judge template {path}: {problems}") from exc


def conversation_text(prompt: Conversation) -> str:
    """The ``{question}``: a single user turn as it is; a longer conversation as labelled turns, so the judge sees
    the context the response answers."""
    if len(prompt) == 1 and prompt[0][0] == "user":
        return prompt[0][1]
    return "\n\n".join(f"{role.capitalize()}: {content}" for role, content in prompt)
