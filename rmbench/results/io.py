"""Reading and writing results.json through the typed contract (``rmbench.results.schema.RunResults``).

Reading is strict: a file that is not valid JSON, carries NaN or infinity (Python's json accepts ``NaN``), lacks a
key, has a value of the wrong type or another schema version raises one ``ResultsFileError`` naming the file and
the field (``metrics[3].value``), so compare, gate and leaderboards exit 2 instead of judging corrupt numbers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rmbench import RESULTS_SCHEMA_VERSION, __version__
from rmbench.atomic import dumps_json, json_document
from rmbench.errors import RmbenchError
from rmbench.results.schema import RunResults

RESULTS = "results.json"


class ResultsFileError(RmbenchError):
    """A results.json that does not satisfy the contract: unusable input (exit 2)."""


def field_path(loc: Sequence[str | int]) -> str:
    """``("metrics", 3, "value")`` → ``metrics[3].value``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "(document)"


def _non_finite(value: Any, loc: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    """Where the first NaN or infinity is, anywhere in the document (also in free-form dicts such as ``extra``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return loc
    if isinstance(value, Mapping):
        children: Any = value.items()
    elif isinstance(value, list):
        children = enumerate(value)
    else:
        return None
    for key, child in children:
        found = _non_finite(child, (*loc, key))
        if found is not None:
            return found
    return None


def parse_results(document: Any, source: str) -> RunResults:
    """Validate a parsed results document; every problem is a ``ResultsFileError`` naming ``source`` and a field."""
    if not isinstance(document, dict):
        raise ResultsFileError(f"{source}: results must be a JSON object, got {type(document).__name__}")
    version = document.get("schema_version")
    if version != RESULTS_SCHEMA_VERSION:
        raise ResultsFileError(
            f"{source}: results schema_version {version!r}; this rmbench reads {RESULTS_SCHEMA_VERSION}"
        )
    where = _non_finite(document)
    if where is not None:
        raise ResultsFileError(f"{source}: {field_path(where)}: {_value_at(document, where)} is not a finite number")
    try:
        return RunResults.model_validate(document)
    except ValidationError as exc:
        problems = [problem for e in exc.errors() for problem in _problems(e)]
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise ResultsFileError(f"{source}: invalid results: {shown}") from None


def _data_loc(loc: Sequence[str | int]) -> tuple[str | int, ...]:
    """Drop pydantic's union-member labels (``float``, ``none``...) from a location: the file has no such keys."""
    names = {"float", "int", "str", "bool", "none", "list[...]", "dict[...]", "function-after[...]"}
    return tuple(p for p in loc if not (isinstance(p, str) and (p in names or p.endswith("]") or "[" in p)))


def _problems(error: Any) -> list[str]:
    """``field: what is wrong`` for one pydantic error; a missing metric option is named as its own field."""
    loc = _data_loc(error["loc"])
    if error["type"] == "missing_options":
        return [f"{field_path((*loc, name))}: missing" for name in error["ctx"]["missing"]]
    return [f"{field_path(loc)}: {_message(error)}"]


def _message(error: Any) -> str:
    if error["type"] == "missing":
        return "missing"
    if error["type"] == "extra_forbidden":
        return "unknown key"
    return f"{error['msg']} (got {error['input']!r})" if not isinstance(error["input"], (dict, list)) else error["msg"]


def _value_at(document: Any, loc: tuple[str | int, ...]) -> Any:
    for part in loc:
        document = document[part]
    return document


def read_results(path: Path) -> RunResults:
    """A run directory's (or a bare) results.json, validated against the contract."""
    path = Path(path)
    file = path / RESULTS if path.is_dir() else path
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsFileError(f"{file}: cannot read results: {exc}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsFileError(f"{file}: not valid JSON: {exc}") from exc
    return parse_results(document, str(file))


def dumps_results(results: RunResults) -> str:
    """The text of results.json: deterministic (sorted keys, fixed indentation), with a final newline."""
    return json_document(results.model_dump(mode="json"))


def write_results(path: Path, results: RunResults) -> None:
    """Write results.json atomically (a run directory's files are staged together by ``rmbench.results.rundir``)."""
    from rmbench.atomic import write_text

    write_text(path, dumps_results(results))


def to_results(document: Mapping[str, Any], source: str = "results") -> RunResults:
    """A results document as a writer builds it (numpy scalars, NaN for undefined values) → the validated model.

    NaN and infinity become null first, exactly as results.json has always written them.
    """
    plain = json.loads(dumps_json(dict(document)))
    return parse_results(plain, source)


def as_results(results: RunResults | Mapping[str, Any]) -> RunResults:
    """The typed results; a plain document as run.py builds it (no schema version, rmbench version or environment)
    gets those first. For writers and tables not yet switched to ``build_results``."""
    if isinstance(results, RunResults):
        return results
    document = {"schema_version": RESULTS_SCHEMA_VERSION, "rmbench_version": __version__, **results}
    if "environment" not in document:
        from rmbench.environment import environment

        document["environment"] = environment()
    return to_results(document)


def build_results(
    *,
    suite: Mapping[str, Any],
    data: Sequence[Mapping[str, Any]],
    model: Mapping[str, Any],
    engine_options: Mapping[str, Any],
    metric_options: Mapping[str, Any],
    limit: int | None,
    metrics: Sequence[Mapping[str, Any]],
    excluded: Mapping[str, int],
    counts: Mapping[str, Any],
    extra: Mapping[str, Any],
    models: Sequence[Mapping[str, Any]] | None = None,
    environment: Mapping[str, Any] | None = None,
    omit_models: bool = False,
) -> RunResults:
    """The one constructor a writer (the runner, ``evaluate-scores``) calls: the parts a run produces in, a
    validated ``RunResults`` out, with the schema version, rmbench version and environment filled in.

    ``omit_models`` leaves the ``models`` key out (imported score files never had it); otherwise it is written,
    null for a one-model run.
    """
    from rmbench.environment import environment as current_environment

    document: dict[str, Any] = {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "rmbench_version": __version__,
        "suite": dict(suite),
        "data": [dict(d) for d in data],
        "model": dict(model),
        "engine_options": dict(engine_options),
        "metric_options": dict(metric_options),
        "limit": limit,
        "metrics": [dict(m) for m in metrics],
        "excluded": dict(excluded),
        "counts": dict(counts),
        "extra": dict(extra),
        "environment": dict(environment) if environment is not None else current_environment(),
    }
    if not omit_models:
        document["models"] = [dict(m) for m in models] if models is not None else None
    return to_results(document, f"results of suite {suite.get('name')!r}")
