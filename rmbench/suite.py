"""Suite declarations: loading with errors that name file, line and key, and the registry. The YAML schema lives
in ``rmbench.suite_schema`` and is re-exported here, the public import path.

A suite is data, not code: which records (sources), how they become items (fields, a named transform), which
protocol scores them and with which metric options. This module validates declarations only; it never reads
benchmark data (that is ``rmbench.data``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

import rmbench
from rmbench.errors import SuiteError
from rmbench.suite_schema import (
    FieldSpec,
    GeneratorRef,
    HubRef,
    Scalar,
    Source,
    Suite,
    describe_error,
    did_you_mean,
)

__all__ = [
    "FieldSpec",
    "GeneratorRef",
    "HubRef",
    "Scalar",
    "Source",
    "Suite",
    "list_suites",
    "load_suite",
    "suite_dirs",
]  # the schema lives in rmbench.suite_schema; it is re-exported here, its public home

SUITES_DIR = Path(rmbench.__file__).resolve().parents[1] / "suites"


# --- YAML errors --------------------------------------------------------------------------------------------------


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at ``loc`` (the deepest one found), for messages."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if getattr(k, "value", None) == str(part)), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _check_duplicate_keys(node: yaml.Node, display: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    raise SuiteError(f"{display}:{line}: duplicate key '{key.value}' (first at line {seen[key.value]})")
                seen[key.value] = line
            _check_duplicate_keys(value, display)
    elif isinstance(node, yaml.SequenceNode):
        for value in node.value:
            _check_duplicate_keys(value, display)


# --- loading and registry -----------------------------------------------------------------------------------------


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(SUITES_DIR.parent))
    except ValueError:
        return str(path)


def parse_suite(text: str, display: str) -> Suite:
    """Validate YAML text into a Suite; errors name ``display``, the line and the key path."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise SuiteError(f"{display}: the file is empty")
        _check_duplicate_keys(node, display)
        data = loader.construct_document(node)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise SuiteError(f"{display}{where}: malformed YAML: {problem}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise SuiteError(
            f"{display}:{node.start_mark.line + 1}: expected a mapping of suite keys at the top level, "
            f"got {type(data).__name__}"
        )
    try:
        suite = Suite.model_validate(data)
    except ValidationError as error:
        lines = []
        for problem in error.errors():
            line = _line_of(node, tuple(problem["loc"]))
            lines.append(f"{display}{f':{line}' if line else ''}: {describe_error(problem)}")
        raise SuiteError("\n".join(lines)) from None
    problems = suite.mapping_problems()
    if problems:
        lines = []
        for problem in problems:
            key = problem.split(":", 1)[0]
            line = _line_of(node, tuple(key.split(".")))
            lines.append(f"{display}{f':{line}' if line else ''}: {problem}")
        raise SuiteError("\n".join(lines))
    suite._origin = display
    return suite


def load_suite_file(path: Path) -> Suite:
    display = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SuiteError(f"{display}: cannot read suite file: {error}") from None
    suite = parse_suite(text, display)
    suite._base_dir = path.resolve().parent
    _check_user_transforms(suite)
    return suite


def _check_user_transforms(suite: Suite) -> None:
    """A user transform (``file.py:function``) is found and imported when the suite loads, so ``suites validate``
    fails on a missing file or function as ``run`` would."""
    from rmbench.transforms import is_user_transform, user_transform

    for number, source in enumerate(suite.sources):
        if source.transform is not None and is_user_transform(source.transform):
            try:
                user_transform(source.transform, suite.base_dir)
            except SuiteError as error:
                raise SuiteError(f"{suite.origin}: sources[{number}].transform: {error}") from None


def suite_dirs() -> list[Path]:
    """``<repo>/suites`` then each directory of ``RMBENCH_SUITES_PATH`` (``os.pathsep``-separated)."""
    from rmbench.settings import env_settings

    extra = [Path(p) for p in (env_settings().suites_path or "").split(os.pathsep) if p]
    return [SUITES_DIR, *extra]


def _registry() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory in suite_dirs():
        if not directory.is_dir():
            continue
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            if path.stem in found:
                raise SuiteError(
                    f"suite '{path.stem}' is defined twice: {_display(found[path.stem])} and {_display(path)}"
                )
            found[path.stem] = path
    return found


def _looks_like_path(name: str) -> bool:
    return name.endswith((".yaml", ".yml")) or "/" in name or os.sep in name


def load_suite(name_or_path: str | Path) -> Suite:
    """A suite by registry name (``rm-bench``) or by path to a YAML file."""
    name = str(name_or_path)
    if isinstance(name_or_path, Path) or _looks_like_path(name):
        path = Path(name)
        if not path.is_file():
            raise SuiteError(f"{name}: no such suite file")
        return load_suite_file(path)
    registry = _registry()
    if name not in registry:
        raise SuiteError(
            f"unknown suite '{name}'. Known: {', '.join(sorted(registry)) or 'none'}{did_you_mean(name, registry)}. "
            "Suites are read from suites/ and RMBENCH_SUITES_PATH; a path to a YAML file also works."
        )
    suite = load_suite_file(registry[name])
    if suite.name != name:
        raise SuiteError(f"{suite.origin}: name: expected '{name}' (the file name), got '{suite.name}'")
    return suite


def list_suites() -> list[Suite]:
    """Every registered suite, validated, sorted by name."""
    return [load_suite(name) for name in sorted(_registry())]
