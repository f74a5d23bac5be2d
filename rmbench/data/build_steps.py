"""Records → ``StepItem``: a step-split solution and the 1-based indices of its erroneous steps (METRICS.md §10).
Registered in ``rmbench.data.builders.BUILDERS``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rmbench.data.builders import BuildContext
from rmbench.data.convert import RecordProblem, optional, required, to_conversation, to_responses
from rmbench.items import StepItem


def _error_steps(value: Any, path: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise RecordProblem(f"expected a list of 1-based step numbers, got {type(value).__name__}", path)
    for position, step in enumerate(value):
        # bool is an int subclass; a step of `true` is a data bug.
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise RecordProblem(f"expected a step number >= 1, got {step!r}", f"{path}.{position}")
    return tuple(sorted(set(value)))


def build_step_item(record: Mapping[str, Any], ctx: BuildContext, position: int) -> StepItem:
    prompt_path, steps_path, errors_path = (ctx.fields[name].path for name in ("prompt", "steps", "error_steps"))
    assert prompt_path is not None and steps_path is not None and errors_path is not None
    prompt = to_conversation(required(record, prompt_path), prompt_path)
    steps = required(record, steps_path)
    if not isinstance(steps, list):
        raise RecordProblem(f"expected a list of solution steps, got {type(steps).__name__}", steps_path)
    (response,) = to_responses(steps, steps_path, steps=True, allow_empty=ctx.allow_empty)
    # Out-of-range error steps (PRMBench has ~100 of them) are kept: the metrics ignore them as the upstream code does.
    first_path = ctx.fields["first_error_only"].path
    first_only = optional(record, first_path) if first_path is not None else None
    first_only = False if first_only is None else first_only
    if not isinstance(first_only, bool):
        raise RecordProblem(f"expected true or false, got {first_only!r}", str(first_path))
    return StepItem(
        id=ctx.item_id(record, position),
        prompt=prompt,
        response=response,
        error_steps=_error_steps(required(record, errors_path), errors_path),
        first_error_only=first_only,
        subset=ctx.subset(record),
        meta=ctx.meta(record, prompt),
    )
