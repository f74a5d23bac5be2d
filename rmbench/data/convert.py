"""Record values → item values: conversations, responses, ids. Pure functions, no I/O.

Problems are raised as ``RecordProblem`` (field + message, no file): only the loader knows which file and record a
value came from, so it turns them into ``DataError``s that name all three.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rmbench.items import Conversation, Response

ROLES = ("system", "user", "assistant")
_MISSING = object()


class RecordProblem(Exception):
    """A record value that cannot become an item value.

    ``field`` is the record key path; ``index`` the position of the offending input record when a transform raises
    it (the loader maps it to a line or array index of the file).
    """

    def __init__(self, message: str, field: str | None = None, index: int | None = None):
        super().__init__(message)
        self.message, self.field, self.index = message, field, index


def lookup(record: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` (``a.b``, list positions as ``a.0``, from the end as ``a.-1``); ``_MISSING``
    when absent."""
    value: Any = record
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and _is_index(part) and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _is_index(part: str) -> bool:
    return part.removeprefix("-").isdigit()


def required(record: Mapping[str, Any], path: str) -> Any:
    """The value at ``path``; a missing key or a null value is a problem named by the path."""
    value = lookup(record, path)
    if value is _MISSING:
        raise RecordProblem(f"missing (record keys: {', '.join(map(str, record)) or 'none'})", path)
    if value is None:
        raise RecordProblem("is null", path)
    return value


def optional(record: Mapping[str, Any], path: str) -> Any:
    """The value at ``path``, or None when absent."""
    value = lookup(record, path)
    return None if value is _MISSING else value


def _type_name(value: Any) -> str:
    return type(value).__name__


def to_id(value: Any, path: str) -> str:
    # bool is an int subclass; an id of `true` is a data bug, not an id.
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RecordProblem(f"expected a string or integer id, got {_type_name(value)}", path)
    text = str(value)
    if not text.strip():
        raise RecordProblem("id is empty", path)
    return text


def to_text(value: Any, path: str, what: str) -> str:
    if not isinstance(value, str):
        raise RecordProblem(f"expected {what} as a string, got {_type_name(value)}", path)
    return value


def to_conversation(value: Any, path: str) -> Conversation:
    """A prompt string (one user turn) or a list of ``{role, content}`` messages ending with a user turn."""
    if isinstance(value, str):
        if not value.strip():
            raise RecordProblem("prompt is empty", path)
        return (("user", value),)
    if not isinstance(value, list):
        raise RecordProblem(
            f"expected a prompt string or a list of {{role, content}} messages, got {_type_name(value)}", path
        )
    if not value:
        raise RecordProblem("prompt conversation has no messages", path)
    turns = []
    for position, message in enumerate(value):
        where = f"{path}.{position}"
        if not isinstance(message, Mapping):
            raise RecordProblem(f"expected a {{role, content}} message, got {_type_name(message)}", where)
        try:
            role, content = required(message, "role"), required(message, "content")
        except RecordProblem as problem:
            raise RecordProblem(problem.message, f"{where}.{problem.field}") from None
        if role not in ROLES:
            raise RecordProblem(f"role must be one of {', '.join(ROLES)}, got {role!r}", f"{where}.role")
        turns.append((role, to_text(content, f"{where}.content", "message content")))
    if turns[-1][0] != "user":
        raise RecordProblem(f"the last message must be the user's, got {turns[-1][0]!r}", path)
    # An empty last user turn inside a real conversation occurs upstream (RMB); a conversation with no text does not.
    if not any(content.strip() for _, content in turns):
        raise RecordProblem("prompt is empty (every message is empty)", path)
    return tuple(turns)


def _step_response(steps: list[Any], path: str, allow_empty: bool) -> Response:
    for number, step in enumerate(steps):
        to_text(step, f"{path}.{number}", "a solution step")
        if not allow_empty and not step.strip():
            raise RecordProblem(f"step {number} is empty", path)
    if not steps:
        raise RecordProblem("step-split response has no steps", path)
    return Response.from_steps(steps)


def _text_response(value: Any, path: str, allow_empty: bool) -> Response:
    text = to_text(value, path, "a response")
    if not allow_empty and not text.strip():
        raise RecordProblem("response is empty", path)
    return Response(text)


def to_response(value: Any, path: str, *, allow_empty: bool = False) -> Response:
    """One response: a string, or a list of step strings (a step-split solution)."""
    if isinstance(value, list):
        return _step_response(value, path, allow_empty)
    return _text_response(value, path, allow_empty)


def to_responses(value: Any, path: str, *, steps: bool = False, allow_empty: bool = False) -> tuple[Response, ...]:
    """Several responses: a string (one), a list of strings (one each), a list of step lists (one each).

    With ``steps`` a flat list of strings is one step-split solution instead (e.g. RewardMATH ``eval_solution``).
    """
    if isinstance(value, str):
        return (_text_response(value, path, allow_empty),)
    if not isinstance(value, list):
        raise RecordProblem(f"expected a response string or a list of responses, got {_type_name(value)}", path)
    if steps:
        return (_step_response(value, path, allow_empty),)
    if not value:
        raise RecordProblem("has no responses", path)
    return tuple(
        _step_response(v, f"{path}.{n}", allow_empty)
        if isinstance(v, list)
        else _text_response(v, f"{path}.{n}", allow_empty)
        for n, v in enumerate(value)
    )
