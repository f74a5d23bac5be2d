"""Procedural suite generators by name.

A generator is a module with a pydantic ``Params`` model (``extra="forbid"``) and ``generate(params) -> list of
records``; it must be deterministic in its parameters (same params → identical records). Modules are imported on
first use, so listing generators imports nothing heavy.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from rmbench.errors import SuiteError
from rmbench.registry import Registry

__all__ = ["GENERATORS", "generate", "get_generator", "iter_generate"]

#: generator name -> its module (``Params``, ``generate``), imported on first use.
GENERATORS: Registry[ModuleType] = Registry("generator", SuiteError)
GENERATORS.lazy(
    "math_robustness", "rmbench.generators.math_robustness", "Math word problems, one correct solution, nine wrong."
)
GENERATORS.lazy(
    "probe_dimensions", "rmbench.generators.probe_dimensions", "Probing records labelled by controlled rewrites."
)
GENERATORS.lazy("synthetic_pairs", "rmbench.generators.synthetic_pairs", "Random preference pairs in any number.")
GENERATORS.lazy(
    "contrast_pairs", "rmbench.generators.contrast_pairs", "Contrast items: each prompt with its most similar one."
)
GENERATORS.lazy("bon_pools", "rmbench.generators.bon_pools", "Best-of-n pools with a known gold score (offline).")


def get_generator(name: str) -> ModuleType:
    """The module of generator ``name``; ``SuiteError`` with a 'did you mean' for unknown names."""
    return GENERATORS.get(name)


def generate(name: str, params: dict[str, Any], data_dir: Path | str | None = None) -> list[dict[str, Any]]:
    """Records of generator ``name`` with ``params`` (validated by the generator's ``Params``). Generators that
    derive from other data (e.g. ``contrast_pairs``) take the run's ``data_dir``; self-contained ones do not."""
    module = get_generator(name)
    validated = module.Params.model_validate(params)
    if "data_dir" in inspect.signature(module.generate).parameters:
        records: list[dict[str, Any]] = module.generate(validated, data_dir=data_dir)
    else:
        records = module.generate(validated)
    return records


def iter_generate(name: str, params: dict[str, Any], data_dir: Path | str | None = None) -> Iterator[dict[str, Any]]:
    """The records of ``generate``, one at a time: lazily where the generator offers ``iter_records(params)`` (so a
    100k-record suite is never held whole), else from its list."""
    module = get_generator(name)
    if hasattr(module, "iter_records") and "data_dir" not in inspect.signature(module.generate).parameters:
        yield from module.iter_records(module.Params.model_validate(params))
    else:
        yield from generate(name, params, data_dir=data_dir)
