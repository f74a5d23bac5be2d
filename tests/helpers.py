"""The one CLI runner and the one suite writer that every test shares (no private copies in test files).

In-process runs (``cli``, ``run_cli``, ``run_to``) are fast and let a test monkeypatch the package; subprocess runs
(``cli_process``, ``run_process``) are for what only a fresh process shows: exit codes after a kill, import side
effects, environment variables read at start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: Fault and test-engine switches a subprocess must not inherit from the test process unless a test sets them.
_FAULT_VARIABLES = ("RMBENCH_FAULT_KILL_AFTER_BATCHES", "RMBENCH_TEST_BATCH_SLEEP", "RMBENCH_TEST_KILL_AT_FSYNC")


# --- the CLI --------------------------------------------------------------------------------------------------------


def cli(args: list[str]) -> int:
    """``rmbench ARGS`` in this process; its exit code (stdout/stderr go to pytest's capture)."""
    from rmbench.cli import main

    return main(args)


def run_cli(*args: str) -> int:
    """``rmbench run --no-progress ARGS`` in this process; its exit code."""
    return cli(["run", "--no-progress", *args])


def run_to(out: Path, *args: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``rmbench run ARGS --out OUT`` with a cache beside OUT, which must succeed: (results.json, run.json)."""
    assert run_cli(*args, "--cache", str(out.parent / "cache.sqlite"), "--out", str(out)) == 0
    return read_json(out / "results.json"), read_json(out / "run.json")


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without fault switches, offline, importing this checkout, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _FAULT_VARIABLES}
    return env | {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)} | (extra or {})


def cli_process(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
                timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``python -m rmbench ARGS`` in a fresh process (``env`` added to ``subprocess_env``); waits for it."""
    command = [sys.executable, "-m", "rmbench", *args]
    return subprocess.run(command, capture_output=True, text=True, env=subprocess_env(env), cwd=cwd or ROOT,
                          timeout=timeout)


def run_process(args: list[str], env: dict[str, str] | None = None,
                cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m rmbench run --no-progress ARGS`` in a fresh process; waits for it."""
    return cli_process(["run", "--no-progress", *args], env=env, cwd=cwd)


# --- local suites ---------------------------------------------------------------------------------------------------


def write_suite(
    directory: Path,
    records: list[dict[str, Any]] | bytes | None = None,
    *,
    data_name: str = "data.jsonl",
    protocol: str = "pairwise",
    extra: str = "",
    source: str = "",
    name: str = "bad",
    sources: str | None = None,
) -> Path:
    """A suite YAML ``directory/NAME.yaml`` and, unless ``records`` is None, its data file ``directory/DATA_NAME``
    (JSONL of ``records``; bytes are written verbatim, for encodings, syntax errors and JSON arrays).

    The suite has one local source on that file, with ``source`` as its further keys; ``sources`` replaces that list
    by its own YAML items. ``extra`` is appended at top level (fields, metrics, ...)."""
    directory.mkdir(parents=True, exist_ok=True)
    if records is not None:
        data = records if isinstance(records, bytes) else "".join(json.dumps(r) + "\n" for r in records).encode()
        (directory / data_name).write_bytes(data)
    if sources is None:
        source_keys = textwrap.indent(textwrap.dedent(source), "    ")
        listed = f"  - local: {directory / data_name}\n{source_keys}"
    else:
        listed = textwrap.indent(textwrap.dedent(sources), "  ")
    text = f"name: {name}\nversion: '1'\nprotocol: {protocol}\nsources:\n{listed}{textwrap.dedent(extra)}"
    path = directory / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path
