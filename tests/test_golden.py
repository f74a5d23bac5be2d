"""Every number of the golden runs (tests/golden_cases.py) is byte-identical to the one committed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests._shared import SHARED_DATA
from tests.golden_cases import CASES, GoldenCase, comparable, golden_path, run_case


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("golden")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_numbers_unchanged(case: GoldenCase, workdir: Path, tiny_rm: Path) -> None:
    if case.shared and not (SHARED_DATA / case.shared).exists():
        pytest.skip(f"shared data not present: {SHARED_DATA / case.shared}")
    expected = json.loads(golden_path(case).read_text(encoding="utf-8"))
    actual = json.loads(json.dumps(comparable(run_case(case, workdir, SHARED_DATA, tiny_rm), SHARED_DATA), sort_keys=True))
    for key in expected:
        assert actual[key] == expected[key], f"{case.name}: {key} moved"
