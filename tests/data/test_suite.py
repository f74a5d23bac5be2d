"""Suite schema, YAML loading errors (file, line, key, expected value) and the suite registry."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rmbench.errors import SuiteError
from rmbench.suite import Suite, list_suites, load_suite, parse_suite

VALID = """\
name: demo
version: "1"
protocol: pairwise
sources:
  - subset: chat
    local: demo/chat.jsonl
    hub: {id: org/demo, revision: 0123456789abcdef0123456789abcdef01234567, split: test}
metrics:
  tie_policy: expected
"""


def write(tmp_path: Path, text: str, name: str = "demo.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(SuiteError) as caught:
        load_suite(write(tmp_path, text))
    return str(caught.value)


def test_valid_suite_loads_with_defaults(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, VALID))
    assert (suite.name, suite.version, suite.protocol) == ("demo", "1", "pairwise")
    assert suite.sources[0].hub is not None and suite.sources[0].hub.split == "test"
    assert suite.metrics.tie_policy == "expected" and suite.metrics.aggregate == "min"
    assert suite.origin.endswith("demo.yaml")


def test_unknown_key_names_file_line_key_and_suggests(tmp_path: Path) -> None:
    message = error_of(tmp_path, VALID.replace("    local: demo/chat.jsonl", "    locl: demo/chat.jsonl"))
    assert "demo.yaml:6: sources[0].locl: unknown key" in message
    assert "did you mean 'local'?" in message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    message = error_of(tmp_path, VALID + "tasks: [a]\n")
    assert "demo.yaml:10: tasks: unknown key; expected one of name, version" in message


def test_bad_tie_policy_says_what_was_expected(tmp_path: Path) -> None:
    message = error_of(tmp_path, VALID.replace("tie_policy: expected", "tie_policy: loose"))
    assert "demo.yaml:9: metrics.tie_policy: expected 'expected' or 'strict', got 'loose'" in message


def test_unknown_protocol_did_you_mean(tmp_path: Path) -> None:
    message = error_of(tmp_path, VALID.replace("protocol: pairwise", "protocol: best_of_m"))
    assert "demo.yaml:3: protocol: unknown protocol 'best_of_m'" in message
    assert "did you mean 'best_of_n'?" in message


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    message = error_of(tmp_path, VALID.replace("split: test}", "split: test"))
    assert message.startswith(str(tmp_path / "demo.yaml") + ":")
    assert "malformed YAML" in message
    line = int(message.split(":")[1])
    assert 7 <= line <= 9


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    message = error_of(tmp_path, VALID + "protocol: ties\n")
    assert "demo.yaml:10: duplicate key 'protocol' (first at line 3)" in message


def test_empty_and_non_mapping_files(tmp_path: Path) -> None:
    assert "the file is empty" in error_of(tmp_path, "")
    assert "expected a mapping" in error_of(tmp_path, "- a\n- b\n")


def test_missing_required_keys(tmp_path: Path) -> None:
    message = error_of(tmp_path, "name: demo\nversion: '1'\n")
    assert "protocol: required key is missing" in message
    assert "sources: required key is missing" in message


def test_unknown_transform_generator_and_field(tmp_path: Path) -> None:
    message = error_of(
        tmp_path, VALID.replace("    local: demo/chat.jsonl", "    local: x.json\n    transform: hh_rlfh")
    )
    assert "sources[0].transform: unknown transform 'hh_rlfh'" in message and "did you mean 'hh_rlhf'" in message
    message = error_of(tmp_path, VALID + "fields: {chosn: a}\n")
    assert "fields: unknown item field 'chosn'" in message and "did you mean 'chosen'" in message
    generator = VALID.replace(
        "  - subset: chat\n    local: demo/chat.jsonl\n",
        "  - generator: {name: math_robustness, params: {n_problem: 3}}\n",
    ).replace("    hub: {id: org/demo, revision: 0123456789abcdef0123456789abcdef01234567, split: test}\n", "")
    message = error_of(tmp_path, generator)
    assert "params.n_problem: unknown key" in message and "did you mean 'n_problems'" in message


def test_source_needs_exactly_one_kind(tmp_path: Path) -> None:
    message = error_of(
        tmp_path, VALID.replace("  - subset: chat\n", "  - subset: chat\n    generator: {name: math_robustness}\n")
    )
    assert "sources[0]: a source is either a generator or data" in message
    bare = "name: demo\nversion: '1'\nprotocol: pairwise\nsources:\n  - subset: chat\n"
    assert "sources[0]: a source needs 'local', 'hub' or 'generator'" in error_of(tmp_path, bare)


def test_sections_must_name_declared_subsets(tmp_path: Path) -> None:
    message = error_of(tmp_path, VALID + "  sections: {chat: {subsets: [caht]}}\n")
    assert "metrics.sections.chat: subset 'caht' is not the subset of any source" in message


def test_steps_only_on_response_fields(tmp_path: Path) -> None:
    message = error_of(tmp_path, VALID + "fields: {prompt: {path: q, steps: true}}\n")
    assert "'steps' applies only to response fields" in message


def test_numeric_version_is_accepted_as_text(tmp_path: Path) -> None:
    assert load_suite(write(tmp_path, VALID.replace('version: "1"', "version: 2"))).version == "2"


def test_content_hash_ignores_cosmetics_but_not_content(tmp_path: Path) -> None:
    base = load_suite(write(tmp_path, VALID)).content_hash
    cosmetic = textwrap.dedent("""\
        # a comment
        version: '1'
        name: demo
        description: only documentation changed
        protocol: "pairwise"
        metrics: {tie_policy: expected, aggregate: min}
        sources:
          - hub:
              split: test
              revision: 0123456789abcdef0123456789abcdef01234567
              id: org/demo
            local: demo/chat.jsonl
            subset: chat
        """)
    assert load_suite(write(tmp_path, cosmetic, "other.yaml")).content_hash == base
    changed = load_suite(write(tmp_path, VALID.replace("tie_policy: expected", "tie_policy: strict"), "c.yaml"))
    assert changed.content_hash != base
    assert len(base) == 64


def test_declaration_round_trips(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, VALID + "fields: {chosen: {path: sol, steps: true}, rejected: bad}\n"))
    declared = suite.declaration()
    assert declared["fields"] == {"chosen": {"path": "sol", "steps": True}, "rejected": "bad"}
    assert Suite.model_validate(declared).content_hash == suite.content_hash


def test_registry_lists_and_finds_by_name() -> None:
    names = [suite.name for suite in list_suites()]
    assert names == sorted(names)
    assert {"rm-bench", "math-robustness", "hh-rlhf-harmless"} <= set(names)
    assert load_suite("math-robustness").origin == "suites/math-robustness.yaml"


def test_unknown_suite_name_did_you_mean() -> None:
    with pytest.raises(SuiteError, match=r"unknown suite 'rm-bnech'.*did you mean 'rm-bench'"):
        load_suite("rm-bnech")


def test_missing_suite_file() -> None:
    with pytest.raises(SuiteError, match="no such suite file"):
        load_suite("nowhere/missing.yaml")


def test_extra_suite_dirs_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, VALID)
    monkeypatch.setenv("RMBENCH_SUITES_PATH", str(tmp_path))
    assert load_suite("demo").name == "demo"
    write(tmp_path, VALID.replace("name: demo", "name: other"), "wrong-name.yaml")
    with pytest.raises(SuiteError, match="name: expected 'wrong-name'"):
        load_suite("wrong-name")


def test_duplicate_suite_names_across_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, VALID.replace("name: demo", "name: rm-bench"), "rm-bench.yaml")
    monkeypatch.setenv("RMBENCH_SUITES_PATH", str(tmp_path))
    with pytest.raises(SuiteError, match="suite 'rm-bench' is defined twice"):
        load_suite("rm-bench")


def test_parse_suite_from_text() -> None:
    assert parse_suite(VALID, "inline").origin == "inline"
