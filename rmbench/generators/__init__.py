"""Procedural suite generators by name.

A generator is a module with a pydantic ``Params`` model (``extra="forbid"``) and ``generate(params) -> list of
records``; it must be deterministic in its parameters (same params → identical records). Modules are imported on
first use, so listing generators imports nothing heavy.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from rmbench.errors import SuiteError

__all__ = ["GENERATORS", "generate", "get_generator", "iter_generate"]

#: generator name -> module
GENERATORS: dict[str, str] = {
    "math_robustness": "rmbench.generators.math_robustness",
    "probe_dimensions": "rmbench.generators.probe_dimensions",
    "synthetic_pairs": "rmbench.generators.synthetic_pairs",
    "contrast_pairs": "rmbench.generators.contrast_pairs",
    "bon_pools": "rmbench.generators.bon_pools",
}


def get_generator(name: str) -> ModuleType:
    if name not in GENERATORS:
        close = difflib.get_close_matches(name, GENERATORS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise SuiteError(f"unknown generator '{name}'; known: {', '.join(sorted(GENERATORS))}{hint}")
    return importlib.import_module(GENERATORS[name])


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
