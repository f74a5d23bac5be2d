"""Bad input, one table: each case is a suite (and data) that is broken in one way, run through the real CLI entry
point in-process into an ``--out`` that already holds an earlier run.

An unusable input must exit with code 2 and a message naming the file, the record and the field, and must leave the
earlier run's files byte for byte as they were. A usable input with a flaw (a 1 MB response, NaN/±inf scores) must
finish and report the flaw as a count in results.json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests._reliability import TEST_ENGINES, leftovers, pair, results_of, snapshot
from tests.helpers import write_suite


@dataclass(frozen=True)
class Case:
    name: str
    records: list | bytes | None = None
    protocol: str = "pairwise"
    extra: str = ""
    source: str = ""
    yaml_text: str | None = None  # replaces the generated suite file
    args: tuple[str, ...] = ()
    engine: str = "scripted"
    code: int = 2
    message: tuple[str, ...] = ()  # all must appear in stderr (lower-cased comparison)
    reported: dict = field(default_factory=dict)  # results.json excluded / truncated counts expected on success


GOOD = [pair(i) for i in range(4)]
MEGABYTE = "word " * 200_000  # 1 MB

CASES = [
    Case("malformed_yaml", GOOD, yaml_text="name: bad\nversion: '1'\nprotocol: [pairwise\n", message=("bad.yaml:4", "malformed yaml")),
    Case("unknown_protocol", GOOD, protocol="pairwize", message=("bad.yaml", "protocol", "pairwise")),
    Case("missing_field", [*GOOD, {"id": "p9", "prompt": "Q?", "chosen": "A."}], message=("data.jsonl", "p9", "rejected")),
    Case("null_field", [*GOOD, pair(9, rejected=None)], message=("data.jsonl", "p9", "rejected")),
    Case("wrong_type_field", [*GOOD, pair(9, chosen=42)], message=("data.jsonl", "p9", "chosen")),
    Case("empty_response", [*GOOD, pair(9, chosen="")], message=("data.jsonl", "p9", "chosen")),
    Case("empty_prompt", [*GOOD, {**pair(9), "prompt": ""}], message=("data.jsonl", "p9", "prompt")),
    Case("duplicate_ids", [*GOOD, pair(1)], message=("data.jsonl", "p1", "duplicate")),
    Case("non_utf8_bytes", b'{"id": "p0", "prompt": "Q\xff?", "chosen": "A", "rejected": "B"}\n',
         message=("data.jsonl", "utf-8")),
    Case("not_json_line", json.dumps(pair(0)).encode() + b"\n{not json\n", message=("data.jsonl", "line 2")),
    Case("missing_data_file", None, message=("data.jsonl",)),
    Case("unreachable_hub_offline", GOOD,
         yaml_text="name: bad\nversion: '1'\nprotocol: pairwise\nsources:\n"
                   "  - hub: {id: nobody/no-such-dataset, revision: 0123456789abcdef0123456789abcdef01234567, split: test}\n",
         message=("nobody/no-such-dataset", "--data-dir")),
    Case("one_megabyte_response", [*GOOD, pair(9, chosen=MEGABYTE)], engine="minilm",
         code=0, reported={"truncated": 1}),  # MiniLM reads 256 tokens: the real tokenizer truncates, and counts
    Case("nan_and_inf_scores", [*GOOD, pair(7, chosen="score=nan"), pair(8, chosen="score=inf"),
                                pair(9, rejected="score=-inf")], code=0, reported={"invalid_score": 3}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_named_or_counted_and_never_costs_an_earlier_run(
    case: Case, tmp_path: Path, monkeypatch, capsys
) -> None:
    import rmbench.engines
    from rmbench.cli import main

    monkeypatch.setattr(rmbench.engines, "ENGINES", rmbench.engines.ENGINES.extended(TEST_ENGINES))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("RMBENCH_DATA_DIR", str(tmp_path / "empty-data-dir"))
    out, cache = tmp_path / "out", tmp_path / "cache.sqlite"
    good = write_suite(tmp_path / "good", GOOD, name="good")
    common = ["run", "--no-progress", "--cache", str(cache), "--out", str(out)]
    assert main([*common, "--suite", str(good), "--engine", "length"]) == 0
    earlier = snapshot(out)
    capsys.readouterr()

    suite = write_suite(tmp_path / "case", case.records, protocol=case.protocol, extra=case.extra, source=case.source)
    if case.yaml_text is not None:
        suite.write_text(case.yaml_text, encoding="utf-8")
    code = main([*common, "--suite", str(suite), "--engine", case.engine, *case.args, "--force"])
    stderr = capsys.readouterr().err
    assert code == case.code, stderr
    assert leftovers(out) == []
    if case.code != 0:
        assert "Traceback" not in stderr
        for needle in case.message:
            assert needle.lower() in stderr.lower(), f"{needle!r} not in: {stderr}"
        assert snapshot(out) == earlier  # the failing run overwrote nothing
        return
    results = results_of(out)
    for name, count in case.reported.items():
        counted = results["counts"] | results.get("excluded", {})
        assert counted.get(name) == count, results["counts"]
