"""User transforms without editing the package: ``transform: file.py:function`` relative to the suite file, or in an
RMBENCH_PLUGINS directory; checked when the suite loads (so `suites validate` fails as `run` would)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rmbench.data import load_items
from rmbench.errors import DataError, SuiteError
from rmbench.suite import load_suite

RESHAPE = '''
def pairs(records):
    for n, record in enumerate(records):
        yield {"id": f"u{n}", "prompt": record["q"], "chosen": record["good"], "rejected": record["bad"]}
'''


def setup(tmp_path: Path, transform: str, code: str = RESHAPE, where: str = ".") -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "d.jsonl").write_text(json.dumps({"q": "Why?", "good": "Because.", "bad": "No."}) + "\n")
    (tmp_path / where).mkdir(parents=True, exist_ok=True)
    (tmp_path / where / "mine.py").write_text(code)
    suite = tmp_path / "s.yaml"
    suite.write_text(
        f"name: s\nversion: '1'\nprotocol: pairwise\nsources:\n  - {{local: {tmp_path / 'd.jsonl'}, transform: '{transform}'}}\n"
    )
    return suite


def test_transform_relative_to_the_suite_file(tmp_path: Path) -> None:
    loaded = load_items(load_suite(setup(tmp_path, "mine.py:pairs")))
    item = loaded.items[0]
    assert (item.id, item.prompt, item.chosen[0].text, item.rejected[0].text) == ("u0", (("user", "Why?"),), "Because.", "No.")
    assert len(loaded.provenance[0]["transform_sha256"]) == 64


def test_transform_from_plugins_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    suite = setup(tmp_path, "mine.py:pairs", where="plugins")
    with pytest.raises(SuiteError, match=r"sources\[0\]\.transform: .*file mine\.py not found .*RMBENCH_PLUGINS"):
        load_suite(suite)
    monkeypatch.setenv("RMBENCH_PLUGINS", str(tmp_path / "plugins"))
    assert load_items(load_suite(suite)).items[0].id == "u0"


def test_missing_function_and_failing_code_are_named(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match=r"defines no function 'pair' \(functions: pairs\)"):
        load_suite(setup(tmp_path, "mine.py:pair"))
    broken = "def pairs(records):\n    for r in records:\n        yield {'prompt': r['missing']}\n"
    with pytest.raises(DataError, match=r"user transform 'mine\.py:pairs' failed: KeyError"):
        load_items(load_suite(setup(tmp_path / "b", "mine.py:pairs", code=broken)))


def test_not_a_registered_name_nor_a_file_function(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="unknown transform 'mine'"):
        load_suite(setup(tmp_path, "mine"))
