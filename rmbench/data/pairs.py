"""Preference records in the shapes people have → prompt, chosen and rejected responses.

Recognised without any mapping (TRL's preference formats):

* standard, explicit prompt: ``prompt`` text, ``chosen`` / ``rejected`` texts;
* conversational, explicit prompt: ``prompt`` a list of ``{role, content}`` messages, ``chosen`` / ``rejected``
  lists of messages (the response is the assistant turn(s) after the prompt; a chosen list that repeats the prompt
  messages first has them split off);
* implicit prompt (no ``prompt`` key and ``fields.prompt`` not declared): conversational ``chosen`` / ``rejected``
  share their leading messages, and the prompt is the longest shared prefix that ends with a user turn; standard
  texts share a leading text, split as TRL's ``extract_prompt`` does (a space before the first difference goes to the
  responses).

Declared in a suite's ``pairs:`` key:

* ``kind: label`` -- two candidate fields and a label field; ``first_better`` / ``second_better`` are the label
  values meaning the first / second candidate is better (LLMBar's ``output_1``, ``output_2``, ``label: 1|2``);
* ``kind: rated`` -- a list of completions, each with a text and a score (UltraFeedback's ``completions`` with
  ``response`` and ``overall_score``): ``select: best_vs_worst`` gives one pair per record (highest vs lowest score,
  first of equals; a record whose scores are all equal gives none), ``select: all_ordered`` one pair per ordered
  pair of completions with different scores (id ``<id>:<better>><worse>``, positions in the list).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rmbench.data.convert import RecordProblem, lookup, required, to_conversation, to_responses
from rmbench.items import Conversation, Response

Scalar = str | int | float | bool
_MISSING = lookup({}, "x")
#: Role names used when a response spans several messages and is written out as one text.
_SPEAKERS = {"user": "User", "assistant": "Assistant", "system": "System"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LabelPairs(_Strict):
    """Two candidates and a label that says which one is better."""

    kind: Literal["label"]
    first: str = Field(description="Record key path of the first candidate response.")
    second: str = Field(description="Record key path of the second candidate response.")
    label: str = Field(description="Record key path of the label.")
    first_better: Scalar = Field(description="Label value meaning the first candidate is better.")
    second_better: Scalar = Field(description="Label value meaning the second candidate is better.")


class RatedPairs(_Strict):
    """A list of completions with scores: best vs worst, or every ordered pair of different scores."""

    kind: Literal["rated"]
    completions: str = Field(description="Record key path of the list of completions.")
    text: str = Field("response", description="Key path of the response text inside one completion.")
    score: str = Field("score", description="Key path of the score inside one completion (higher is better).")
    select: Literal["best_vs_worst", "all_ordered"] = Field(
        "best_vs_worst", description="best_vs_worst: one pair per record; all_ordered: every pair of unequal scores."
    )


PairsSpec = Annotated[LabelPairs | RatedPairs, Field(discriminator="kind")]

#: Item fields a ``pairs:`` declaration fills (so a suite may not map them as well).
PAIR_FIELDS = frozenset({"chosen", "rejected"})

Pair = tuple[str, tuple[Response, ...], tuple[Response, ...]]  # (id suffix, chosen, rejected)


# --- conversations ------------------------------------------------------------------------------------------------


def is_messages(value: Any) -> bool:
    """A non-empty list of ``{role, ...}`` mappings: a conversation, not a list of responses."""
    return isinstance(value, list) and bool(value) and all(isinstance(m, Mapping) and "role" in m for m in value)


def _message(value: Any, path: str) -> tuple[str, str]:
    role, content = value.get("role"), value.get("content")
    if role not in _SPEAKERS:
        raise RecordProblem(f"role must be one of {', '.join(_SPEAKERS)}, got {role!r}", f"{path}.role")
    if not isinstance(content, str):
        raise RecordProblem(f"expected message content as a string, got {type(content).__name__}", f"{path}.content")
    return role, content


def _messages(value: list[Any], path: str) -> list[tuple[str, str]]:
    return [_message(m, f"{path}.{n}") for n, m in enumerate(value)]


def _response_text(turns: Sequence[tuple[str, str]], path: str) -> str:
    """The response a list of messages after the prompt stands for: the assistant turn's content; several turns
    (transcripts that diverge before their last turn) are written out as one text, later turns as ``\\n\\nUser: …``."""
    if not turns:
        raise RecordProblem("has no response message after the prompt", path)
    if turns[0][0] != "assistant":
        raise RecordProblem(f"the response must start with an assistant message, got {turns[0][0]!r}", path)
    return turns[0][1] + "".join(f"\n\n{_SPEAKERS[role]}: {content}" for role, content in turns[1:])


def _strip_prompt(turns: list[tuple[str, str]], prompt: Conversation) -> list[tuple[str, str]]:
    return turns[len(prompt) :] if tuple(turns[: len(prompt)]) == prompt else turns


def _implicit_conversation(
    chosen: list[tuple[str, str]], rejected: list[tuple[str, str]], paths: tuple[str, str]
) -> tuple[Conversation, str, str]:
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    # Back off to a prefix that ends with a user turn and is followed by an assistant turn on both sides.
    while shared > 0 and not (
        chosen[shared - 1][0] == "user"
        and shared < len(chosen)
        and shared < len(rejected)
        and chosen[shared][0] == "assistant" == rejected[shared][0]
    ):
        shared -= 1
    if shared == 0:
        raise RecordProblem(
            "chosen and rejected share no leading conversation ending with a user turn (implicit prompt); "
            "map fields.prompt if the prompt is elsewhere",
            paths[0],
        )
    prompt = tuple(chosen[:shared])
    return prompt, _response_text(chosen[shared:], paths[0]), _response_text(rejected[shared:], paths[1])


def _implicit_text(chosen: str, rejected: str, path: str) -> tuple[Conversation, str, str]:
    """TRL's ``extract_prompt`` rule for standard texts: the common leading text, less a trailing space."""
    index = 0
    limit = min(len(chosen), len(rejected))
    while index < limit and chosen[index] == rejected[index]:
        index += 1
    if index < limit and index > 0 and chosen[index - 1] == " ":
        index -= 1
    if not chosen[:index].strip():
        raise RecordProblem(
            "chosen and rejected share no leading text (implicit prompt); map fields.prompt if the prompt is elsewhere",
            path,
        )
    return (("user", chosen[:index]),), chosen[index:], rejected[index:]


# --- one record ---------------------------------------------------------------------------------------------------


def _responses(value: Any, path: str, prompt: Conversation, steps: bool, allow_empty: bool) -> tuple[Response, ...]:
    if is_messages(value):
        text = _response_text(_strip_prompt(_messages(value, path), prompt), path)
        return to_responses(text, path, allow_empty=allow_empty)
    return to_responses(value, path, steps=steps, allow_empty=allow_empty)


def preference_parts(
    record: Mapping[str, Any],
    *,
    prompt_path: str,
    prompt_declared: bool,
    chosen: tuple[str, bool],
    rejected: tuple[str, bool],
    pairs: LabelPairs | RatedPairs | None,
    allow_empty: bool,
) -> tuple[Conversation, list[Pair]]:
    """The prompt and the (id suffix, chosen, rejected) pairs of one record; ``chosen`` / ``rejected`` are
    (path, steps) of the field mapping, used when ``pairs`` is None."""
    if pairs is None and not prompt_declared and lookup(record, prompt_path) is _MISSING:
        return _implicit(record, chosen[0], rejected[0], allow_empty)
    prompt = to_conversation(required(record, prompt_path), prompt_path)
    if isinstance(pairs, LabelPairs):
        return prompt, [_label_pair(record, pairs, prompt, allow_empty)]
    if isinstance(pairs, RatedPairs):
        return prompt, _rated_pairs(record, pairs, prompt, allow_empty)
    return prompt, [
        (
            "",
            _responses(required(record, chosen[0]), chosen[0], prompt, chosen[1], allow_empty),
            _responses(required(record, rejected[0]), rejected[0], prompt, rejected[1], allow_empty),
        )
    ]


def _implicit(record: Mapping[str, Any], chosen_path: str, rejected_path: str, allow_empty: bool) -> tuple[Conversation, list[Pair]]:
    chosen, rejected = required(record, chosen_path), required(record, rejected_path)
    if is_messages(chosen) and is_messages(rejected):
        prompt, c_text, r_text = _implicit_conversation(
            _messages(chosen, chosen_path), _messages(rejected, rejected_path), (chosen_path, rejected_path)
        )
    elif isinstance(chosen, str) and isinstance(rejected, str):
        prompt, c_text, r_text = _implicit_text(chosen, rejected, chosen_path)
    else:
        raise RecordProblem(
            f"missing (record keys: {', '.join(map(str, record)) or 'none'}); without a prompt, chosen and rejected "
            "must both be conversations or both texts sharing the prompt (TRL's implicit prompt)",
            "prompt",
        )
    return prompt, [
        ("", to_responses(c_text, chosen_path, allow_empty=allow_empty), to_responses(r_text, rejected_path, allow_empty=allow_empty))
    ]


def _label_pair(record: Mapping[str, Any], spec: LabelPairs, prompt: Conversation, allow_empty: bool) -> Pair:
    label = required(record, spec.label)
    first = _responses(required(record, spec.first), spec.first, prompt, False, allow_empty)
    second = _responses(required(record, spec.second), spec.second, prompt, False, allow_empty)
    # Compare as text too: a label written as "1" in one file and 1 in another means the same.
    if label == spec.first_better or str(label) == str(spec.first_better):
        return "", first, second
    if label == spec.second_better or str(label) == str(spec.second_better):
        return "", second, first
    raise RecordProblem(
        f"label {label!r} is neither first_better ({spec.first_better!r}) nor second_better ({spec.second_better!r})",
        spec.label,
    )


def _score(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RecordProblem(f"expected a finite number score, got {value!r}", path)
    return float(value)


def _rated_pairs(record: Mapping[str, Any], spec: RatedPairs, prompt: Conversation, allow_empty: bool) -> list[Pair]:
    completions = required(record, spec.completions)
    if not isinstance(completions, list):
        raise RecordProblem(f"expected a list of completions, got {type(completions).__name__}", spec.completions)
    rated: list[tuple[float, tuple[Response, ...]]] = []
    for n, completion in enumerate(completions):
        where = f"{spec.completions}.{n}"
        if not isinstance(completion, Mapping):
            raise RecordProblem(f"expected a completion object, got {type(completion).__name__}", where)
        try:
            score = _score(required(completion, spec.score), spec.score)
            text = _responses(required(completion, spec.text), spec.text, prompt, False, allow_empty)
        except RecordProblem as problem:
            raise RecordProblem(problem.message, f"{where}.{problem.field}") from None
        rated.append((score, text))
    if spec.select == "best_vs_worst":
        if len(rated) < 2:
            return []
        best = max(range(len(rated)), key=lambda i: rated[i][0])  # first of equals
        worst = min(range(len(rated)), key=lambda i: rated[i][0])
        return [] if rated[best][0] == rated[worst][0] else [("", rated[best][1], rated[worst][1])]
    return [
        (f":{i}>{j}", rated[i][1], rated[j][1])
        for i in range(len(rated))
        for j in range(len(rated))
        if rated[i][0] > rated[j][0]
    ]


def identical(chosen: Sequence[Response], rejected: Sequence[Response]) -> bool:
    """Whether some chosen response has exactly the text of some rejected one (a pair no model can order)."""
    texts = {response.text for response in chosen}
    return any(response.text in texts for response in rejected)
