"""Command-line values validated by the models they configure (RunConfig, MetricOptions, ModelSpec).

A flag is never checked against a list of its own: its value goes into the model, and a pydantic error is mapped
back to the flag that set the field, so a bad value exits 2 with one line naming the flag and what it accepts,
never a traceback. Help texts list allowed values from the same models and registries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ValidationError

from rmbench.metrics.options import MetricOptions
from rmbench.runner.config import ConfigError

M = TypeVar("M", bound=BaseModel)


def flag_for(field: str, renamed: Mapping[str, str]) -> str:
    """The flag that sets ``field``: ``--field-name`` unless the command names it differently."""
    return renamed.get(field, "--" + field.replace("_", "-"))


def validated(model: type[M], values: Mapping[str, Any], renamed: Mapping[str, str] | None = None) -> M:
    """``model`` from flag ``values`` (field name → value); ``ConfigError`` (exit 2) naming the flag if invalid."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as error:
        raise ConfigError(describe(error, renamed or {})) from None


def describe(error: ValidationError, renamed: Mapping[str, str]) -> str:
    """One line per pydantic error, joined: ``--tie-policy 'nope': input should be 'expected' or 'strict'``."""
    problems = []
    for e in error.errors():
        field = ".".join(map(str, e["loc"]))
        flag = flag_for(field, renamed) if field else "options"
        message = e["msg"].removeprefix("Value error, ")
        shown = f" {e['input']!r}" if field and not isinstance(e["input"], (dict, list, BaseModel)) else ""
        problems.append(f"{flag}{shown}: {message[:1].lower()}{message[1:]}")
    return "; ".join(problems)


def choices(model: type[BaseModel], field: str) -> str:
    """``a | b | c`` from a ``Literal`` field, for help texts that must not drift from the model."""
    return " | ".join(map(str, get_args(model.model_fields[field].annotation)))


AGGREGATE_HELP = f"PRM step aggregation (METRICS.md §3): {choices(MetricOptions, 'aggregate')}."
