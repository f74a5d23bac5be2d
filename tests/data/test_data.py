"""Loading suite data into items: value conversion, bad records, formats, limit, clusters, hub fallback, transforms."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rmbench.data import load_items
from rmbench.errors import DataError, SuiteError
from rmbench.items import PreferenceItem, Response
from rmbench.suite import load_suite
from rmbench.transforms import hh_rlhf, rewardbench2, rewardbench2_ties, rewardmath_direct, rmb_bon, rmb_pairwise
from tests.helpers import write_suite

ROOT = Path(__file__).resolve().parents[2]


def write_records(path: Path, records: list[Any]) -> Path:
    """Write records in the format the file name asks for (json, jsonl, with .gz, or parquet)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.name
    if name.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(records), path)
        return path
    text = (
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        if ".jsonl" in name
        else json.dumps(records, ensure_ascii=False)
    )
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


def suite_for(tmp_path: Path, sources: str, extra: str = "", protocol: str = "pairwise"):
    return load_suite(write_suite(tmp_path, name="t", protocol=protocol, sources=sources, extra=extra))


def load(tmp_path: Path, records: list[Any], name: str = "d.jsonl", extra: str = "", source: str = "",
         protocol: str = "pairwise", **kwargs):
    """Items of ``records`` as a one-source suite loads them (``ties`` takes any number of responses a side)."""
    write_records(tmp_path / "data" / name, records)
    suite = suite_for(tmp_path, f"- local: {name}\n{source}", extra, protocol=protocol)
    return load_items(suite, data_dir=tmp_path / "data", **kwargs)


def test_a_record_with_the_wrong_number_of_responses_is_named_when_loading(tmp_path: Path) -> None:
    """Pairwise needs one chosen and one rejected response: refused on loading, by file, line and field."""
    message = data_error(tmp_path, [PAIR, PAIR | {"id": "b", "rejected": ["No.", "Never."]}])
    assert "d.jsonl, record line 2 (id 'b'), field 'rejected': protocol 'pairwise' needs exactly 1" in message


def data_error(tmp_path: Path, records: list[Any], **kwargs) -> str:
    with pytest.raises(DataError) as caught:
        load(tmp_path, records, **kwargs)
    return str(caught.value)


PAIR = {"id": "a", "prompt": "Hi?", "chosen": "Hello!", "rejected": "Go away."}


# --- conversion ---------------------------------------------------------------------------------------------------


def test_string_prompt_and_responses(tmp_path: Path) -> None:
    item = load(tmp_path, [PAIR]).items[0]
    assert item == PreferenceItem(
        id="a", prompt=(("user", "Hi?"),), chosen=(Response("Hello!"),), rejected=(Response("Go away."),)
    )
    assert item.subset == "default"


def test_conversation_prompt_and_response_lists(tmp_path: Path) -> None:
    record = {
        "id": 7,
        "prompt": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello", "language": "English"},
            {"role": "user", "content": "Name two colours."},
        ],
        "chosen": ["Red and blue.", "Green, yellow."],
        "rejected": ["Cheese."],
    }
    item = load(tmp_path, [record], protocol="ties").items[0]
    assert item.id == "7"
    assert item.prompt == (
        ("system", "Be brief."),
        ("user", "Hi"),
        ("assistant", "Hello"),
        ("user", "Name two colours."),
    )
    assert [r.text for r in item.chosen] == ["Red and blue.", "Green, yellow."]


def test_step_split_responses(tmp_path: Path) -> None:
    record = {
        "id": "m",
        "prompt": "1+1?",
        "good": ["1 + 1 = 2.", "Answer: 2"],
        "bad": [["1 + 1 = 3.", "Answer: 3"], ["Answer: 11"]],
    }
    extra = "fields:\n  chosen: {path: good, steps: true}\n  rejected: bad\n"
    item = load(tmp_path, [record], extra=extra, protocol="ties").items[0]
    assert item.chosen == (Response.from_steps(["1 + 1 = 2.", "Answer: 2"]),)
    assert item.rejected == (Response.from_steps(["1 + 1 = 3.", "Answer: 3"]), Response.from_steps(["Answer: 11"]))
    assert item.chosen[0].text == "1 + 1 = 2.\n\nAnswer: 2"


def test_dotted_field_paths_and_meta_fields(tmp_path: Path) -> None:
    record = {"uid": "x", "q": {"text": "Why?"}, "answers": {"good": "Because.", "bad": "No."}, "info": {"lang": "en"}}
    extra = (
        "fields: {id: uid, prompt: q.text, chosen: answers.good, rejected: answers.bad}\n"
        "meta_fields: {lang: info.lang, absent: nope}\n"
    )
    item = load(tmp_path, [record], extra=extra).items[0]
    assert (item.id, item.prompt, item.chosen[0].text) == ("x", (("user", "Why?"),), "Because.")
    assert item.meta["lang"] == "en" and "absent" not in item.meta


def test_subset_from_source_from_record_and_fallback(tmp_path: Path) -> None:
    records = [PAIR | {"category": "math"}, PAIR | {"id": "b"}]
    items = load(tmp_path, records, source="  subset: general\n", extra="fields: {subset: category}\n").items
    assert [i.subset for i in items] == ["math", "general"]
    message = data_error(tmp_path, records, extra="fields: {subset: category}\n")
    assert "record line 2 (id 'b'), field 'category': missing" in message


def test_ids_prefix_and_numbering(tmp_path: Path) -> None:
    records = [{k: v for k, v in PAIR.items() if k != "id"}] * 2
    items = load(tmp_path, records, source="  id_prefix: 'x:'\n", extra="fields: {id: null}\n").items
    assert [i.id for i in items] == ["x:0", "x:1"]


def test_clusters_follow_prompts(tmp_path: Path) -> None:
    records = [PAIR, PAIR | {"id": "b"}, PAIR | {"id": "c", "prompt": "Other?"}]
    items = load(tmp_path, records).items
    assert items[0].meta["cluster"] == items[1].meta["cluster"] != items[2].meta["cluster"]
    assert items[0].cluster == items[0].meta["cluster"]
    grouped = load(tmp_path, [r | {"group": 1} for r in records], extra="fields: {cluster: group}\n").items
    assert {i.cluster for i in grouped} == {"cluster:1"}


# --- formats and provenance ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["d.json", "d.jsonl", "d.json.gz", "d.jsonl.gz", "d.parquet"])
def test_every_format_gives_the_same_items(tmp_path: Path, name: str) -> None:
    records = [PAIR, PAIR | {"id": "b", "chosen": ["One", "Two"], "rejected": ["Three", "Four"]}]
    if name.endswith(".parquet"):  # one column type per column in parquet
        records = [
            r
            | {
                "chosen": [r["chosen"]] if isinstance(r["chosen"], str) else r["chosen"],
                "rejected": [r["rejected"]] if isinstance(r["rejected"], str) else r["rejected"],
            }
            for r in records
        ]
    data = load(tmp_path, records, name=name, protocol="ties")
    assert [i.id for i in data.items] == ["a", "b"]
    assert [r.text for r in data.items[1].chosen] == ["One", "Two"]
    provenance = data.provenance[0]
    assert provenance["path"] == name and provenance["records"] == provenance["items"] == 2
    assert provenance["sha256"] == hashlib.sha256((tmp_path / "data" / name).read_bytes()).hexdigest()


def test_json_file_holding_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "data" / "d.json"
    path.parent.mkdir()
    path.write_text(json.dumps(PAIR) + "\n" + json.dumps(PAIR | {"id": "b"}) + "\n")
    suite = suite_for(tmp_path, "- local: d.json\n")
    assert len(load_items(suite, data_dir=tmp_path / "data").items) == 2


def test_data_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_records(tmp_path / "data" / "d.jsonl", [PAIR])
    monkeypatch.setenv("RMBENCH_DATA_DIR", str(tmp_path / "data"))
    assert len(load_items(suite_for(tmp_path, "- local: d.jsonl\n")).items) == 1


def test_glob_source_reads_files_in_order_with_per_file_provenance(tmp_path: Path) -> None:
    write_records(tmp_path / "data" / "set" / "b" / "two.json.gz", [PAIR | {"id": "2"}])
    write_records(tmp_path / "data" / "set" / "a.json", [PAIR | {"id": "1"}, PAIR | {"id": "1b"}])
    data = load_items(suite_for(tmp_path, "- local: set/**/*.json*\n"), data_dir=tmp_path / "data")
    assert [i.id for i in data.items] == ["1", "1b", "2"]
    assert [f["path"] for f in data.provenance[0]["files"]] == ["set/a.json", "set/b/two.json.gz"]
    write_records(tmp_path / "data" / "set" / "c.json", [{"id": "3", "prompt": "x", "chosen": "y"}])
    with pytest.raises(DataError, match=r"set/c\.json, record #0 \(id '3'\), field 'rejected': missing"):
        load_items(suite_for(tmp_path, "- local: set/**/*.json*\n"), data_dir=tmp_path / "data")


def test_pinned_sha256_is_checked(tmp_path: Path) -> None:
    path = write_records(tmp_path / "data" / "d.jsonl", [PAIR])
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(load(tmp_path, [PAIR], source=f"  sha256: {digest}\n").items) == 1
    message = data_error(tmp_path, [PAIR | {"chosen": "Changed"}], source=f"  sha256: {digest}\n")
    assert f"differs from the suite's pinned {digest}" in message
    with pytest.raises(SuiteError, match="'sha256' pins one local file"):
        suite_for(tmp_path, f"- local: set/*.json\n  sha256: {digest}\n")


# --- bad records ----------------------------------------------------------------------------------------------------


def test_missing_field_names_file_record_and_field(tmp_path: Path) -> None:
    message = data_error(tmp_path, [PAIR, {"id": "b", "prompt": "x", "chosen": "y"}])
    assert message.startswith(
        f"file {tmp_path / 'data' / 'd.jsonl'}, record line 2 (id 'b'), field 'rejected': missing"
    )


def test_null_field(tmp_path: Path) -> None:
    assert "record #0 (id 'a'), field 'chosen': is null" in data_error(
        tmp_path, [PAIR | {"chosen": None}], name="d.json"
    )


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        ({"chosen": 5}, "chosen", "expected a response string or a list of responses, got int"),
        ({"chosen": [["ok"], 3]}, "chosen.1", "expected a response as a string, got int"),
        ({"prompt": 3}, "prompt", "expected a prompt string or a list of {role, content} messages, got int"),
        ({"id": [1]}, "id", "expected a string or integer id, got list"),
        ({"id": True}, "id", "expected a string or integer id, got bool"),
        ({"prompt": [{"role": "user"}]}, "prompt.0.content", "missing"),
        ({"prompt": [{"role": "robot", "content": "x"}]}, "prompt.0.role", "role must be one of"),
        (
            {"prompt": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]},
            "prompt",
            "the last message must be the user's",
        ),
    ],
)
def test_wrong_types(tmp_path: Path, change: dict, field: str, expected: str) -> None:
    message = data_error(tmp_path, [PAIR | change])
    assert f"field '{field}': {expected}" in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"chosen": ""}, "field 'chosen': response is empty"),
        ({"rejected": ["fine", "  "]}, "field 'rejected.1': response is empty"),
        ({"chosen": []}, "field 'chosen': has no responses"),
        ({"prompt": "   "}, "field 'prompt': prompt is empty"),
        ({"prompt": [{"role": "user", "content": ""}]}, "field 'prompt': prompt is empty"),
        ({"chosen": [["step", " "]]}, "field 'chosen.0': step 1 is empty"),
    ],
)
def test_empty_values(tmp_path: Path, change: dict, expected: str) -> None:
    assert expected in data_error(tmp_path, [PAIR | change])


def test_empty_responses_allowed_when_declared(tmp_path: Path) -> None:
    item = load(tmp_path, [PAIR | {"chosen": ""}], source="  allow_empty_responses: true\n").items[0]
    assert item.chosen == (Response(""),)


def test_duplicate_ids_name_both_records(tmp_path: Path) -> None:
    message = data_error(tmp_path, [PAIR, PAIR | {"id": "b"}, PAIR])
    assert "record line 3 (id 'a'), field 'id': duplicate item id 'a', also at" in message
    assert "d.jsonl line 1" in message


def test_duplicate_ids_across_sources(tmp_path: Path) -> None:
    write_records(tmp_path / "data" / "one.jsonl", [PAIR])
    write_records(tmp_path / "data" / "two.json", [PAIR])
    suite = suite_for(tmp_path, "- local: one.jsonl\n- local: two.json\n")
    with pytest.raises(
        DataError,
        match=r"two\.json, record #0 \(id 'a'\), field 'id': duplicate item id 'a', also at .*one\.jsonl line 1",
    ):
        load_items(suite, data_dir=tmp_path / "data")
    fixed = suite_for(tmp_path, "- local: one.jsonl\n- local: two.json\n  id_prefix: 'two:'\n")
    assert [i.id for i in load_items(fixed, data_dir=tmp_path / "data").items] == ["a", "two:a"]


def test_non_utf8_bytes_in_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "data" / "d.jsonl"
    path.parent.mkdir()
    path.write_bytes(json.dumps(PAIR).encode() + b'\n{"id": "b", "prompt": "caf\xe9"}\n')
    suite = suite_for(tmp_path, "- local: d.jsonl\n")
    with pytest.raises(DataError, match=r"d\.jsonl, record line 2: not valid UTF-8 \(byte 0xe9"):
        load_items(suite, data_dir=tmp_path / "data")


def test_non_utf8_bytes_in_json_array(tmp_path: Path) -> None:
    path = tmp_path / "data" / "d.json"
    path.parent.mkdir()
    path.write_bytes(b'[\n{"id": "a",\n "prompt": "caf\xe9"}]')
    with pytest.raises(DataError, match=r"record line 3: not valid UTF-8"):
        load_items(suite_for(tmp_path, "- local: d.json\n"), data_dir=tmp_path / "data")


def test_unreadable_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "broken.jsonl").write_text(json.dumps(PAIR) + "\n{not json\n")
    (data / "broken.json").write_text('[{"id": 1}, ]')
    (data / "scalar.json").write_text('{"records": []}')
    (data / "fake.jsonl.gz").write_bytes(b"not gzip")
    (data / "list.jsonl").write_text("[1, 2]\n")
    (data / "d.csv").write_text("a,b\n")
    expected = {
        "broken.jsonl": "record line 2: invalid JSON",
        "broken.json": "invalid JSON at line 1",
        "scalar.json": "expected a JSON array of records at the top level, got dict",
        "fake.jsonl.gz": "not a readable gzip file",
        "list.jsonl": "record line 1: expected a JSON object, got list",
        "d.csv": "unsupported file type",
    }
    for name, message in expected.items():
        with pytest.raises(DataError, match=message):
            load_items(suite_for(tmp_path, f"- local: {name}\n"), data_dir=data)


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    assert "no items" in data_error(tmp_path, [])


# --- limit ----------------------------------------------------------------------------------------------------------


def test_limit_keeps_the_first_items_across_sources(tmp_path: Path) -> None:
    write_records(tmp_path / "data" / "one.jsonl", [PAIR | {"id": str(i)} for i in range(3)])
    write_records(tmp_path / "data" / "two.jsonl", [PAIR | {"id": f"t{i}"} for i in range(3)])
    suite = suite_for(tmp_path, "- local: one.jsonl\n- local: two.jsonl\n- local: missing.jsonl\n")
    data = load_items(suite, data_dir=tmp_path / "data", limit=4)
    assert [i.id for i in data.items] == ["0", "1", "2", "t0"]
    assert data.provenance[1]["items"] == 1 and data.provenance[1]["records"] == 3
    assert data.provenance[2]["kind"] == "skipped"
    assert [i.id for i in load_items(suite, data_dir=tmp_path / "data", limit=2).items] == ["0", "1"]


def test_limit_does_not_check_records_it_does_not_keep(tmp_path: Path) -> None:
    assert len(load(tmp_path, [PAIR, {"broken": True}], limit=1).items) == 1


# --- hub fallback -------------------------------------------------------------------------------------------------


def test_offline_hub_error_names_data_dir_and_expected_path(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(
        "name: t\nversion: '1'\nprotocol: pairwise\nsources:\n"
        "  - local: mirror/test.parquet\n"
        "    hub: {id: rmbench-tests/no-such-dataset, split: test,\n"
        "          revision: 0123456789abcdef0123456789abcdef01234567}\n"
    )
    script = (
        "import sys\nfrom rmbench.suite import load_suite\nfrom rmbench.data import load_items\n"
        "from rmbench.errors import DataError\n"
        "try:\n    load_items(load_suite(sys.argv[1]), data_dir=sys.argv[2])\n"
        "except DataError as e:\n    print(e)\n"
    )
    env = os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "t.yaml"), str(tmp_path / "data")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    message = done.stdout
    assert "cannot load hub dataset rmbench-tests/no-such-dataset@0123456789abcdef" in message, done.stderr
    assert "--data-dir" in message and "RMBENCH_DATA_DIR" in message
    assert f"no local copy at {tmp_path / 'data' / 'mirror' / 'test.parquet'}" in message


def test_local_missing_without_hub(tmp_path: Path) -> None:
    suite = suite_for(tmp_path, "- local: nothing/here.json\n")
    with pytest.raises(DataError, match=r"local data file not found .* --data-dir DIR or set RMBENCH_DATA_DIR"):
        load_items(suite, data_dir=tmp_path)


def test_hub_records_are_filtered_and_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    calls = []

    def fake_load_dataset(path, **kwargs):
        calls.append((path, kwargs))
        return datasets.Dataset.from_list([PAIR | {"domain": "chat"}, PAIR | {"id": "b", "domain": "code"}])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    suite = suite_for(
        tmp_path, "- hub: {id: org/ds, revision: abc123, split: train, data_dir: sub, where: {domain: chat}}\n"
    )
    data = load_items(suite)
    assert [i.id for i in data.items] == ["a"]
    assert calls == [
        ("org/ds", {"name": None, "revision": "abc123", "split": "train", "data_dir": "sub", "data_files": None})
    ]
    assert data.provenance[0] | {"fingerprint": None} == {
        "kind": "hub",
        "hub": "org/ds",
        "revision": "abc123",
        "split": "train",
        "config": None,
        "data_dir": "sub",
        "data_files": None,
        "where": {"domain": "chat"},
        "fingerprint": None,
        "records": 1,
        "items": 1,
        "subset": None,
        "transform": None,
    }


def test_item_fields_are_checked_against_the_protocol_item_type(tmp_path: Path) -> None:
    # Checked when the suite loads (so `suites validate` refuses it too), with the line of the mapping.
    write_records(tmp_path / "data" / "d.jsonl", [PAIR])
    with pytest.raises(SuiteError, match=r"\.yaml:\d+: fields\.prompt: PreferenceItem needs this field"):
        suite_for(tmp_path, "- local: d.jsonl\n", "fields: {prompt: null}\n")


# --- property: a JSONL round trip -----------------------------------------------------------------------------------

text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30).filter(lambda s: s.strip())
responses = st.one_of(text, st.lists(text, min_size=1, max_size=3))
record = st.fixed_dictionaries({"prompt": text, "chosen": responses, "rejected": responses})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(record, min_size=1, max_size=8), fmt=st.sampled_from(["d.jsonl", "d.json.gz"]))
def test_round_trip_of_random_valid_records(tmp_path: Path, records: list[dict], fmt: str) -> None:
    records = [r | {"id": f"r{n}"} for n, r in enumerate(records)]
    (tmp_path / "data").mkdir(exist_ok=True)
    items = load(tmp_path, records, name=fmt, protocol="ties").items

    def as_responses(value: str | list[str]) -> tuple[Response, ...]:
        return tuple(Response(v) for v in ([value] if isinstance(value, str) else value))

    assert items == [
        PreferenceItem(
            id=r["id"],
            prompt=(("user", r["prompt"]),),
            chosen=as_responses(r["chosen"]),
            rejected=as_responses(r["rejected"]),
        )
        for r in records
    ]


# --- transforms -----------------------------------------------------------------------------------------------------


def test_hh_rlhf_splits_at_the_last_assistant_turn() -> None:
    shared = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Tell me a joke"
    out = list(hh_rlhf([{"chosen": shared + "\n\nAssistant: Knock knock.", "rejected": shared + "\n\nAssistant: No."}]))
    assert out == [
        {
            "id": 1,
            "prompt": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "Tell me a joke"},
            ],
            "chosen": "Knock knock.",
            "rejected": "No.",
            "conversation_split": "last_assistant_turn",
        }
    ]


def test_hh_rlhf_diverging_transcripts_use_the_shared_prefix() -> None:
    chosen = "\n\nHuman: Q1\n\nAssistant: A1  Human: Q2 inline\n\nAssistant: A2"
    rejected = "\n\nHuman: Q1\n\nAssistant: Other"
    out = next(hh_rlhf([{"chosen": chosen, "rejected": rejected}]))
    assert out["prompt"] == [{"role": "user", "content": "Q1"}]
    assert out["chosen"] == "A1  Human: Q2 inline\n\nAssistant: A2"
    assert out["rejected"] == "Other"
    assert out["conversation_split"] == "common_prefix"


def test_hh_rlhf_blank_final_answer_and_bad_transcripts() -> None:
    out = next(hh_rlhf([{"chosen": "\n\nHuman: Q\n\nAssistant: ", "rejected": "\n\nHuman: Q\n\nAssistant: A"}]))
    assert out["chosen"] == ""
    from rmbench.data.convert import RecordProblem

    with pytest.raises(RecordProblem, match="does not start with") as caught:
        list(
            hh_rlhf(
                [
                    {"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: a\n\nAssistant: c"},
                    {"chosen": "Assistant: b", "rejected": "x"},
                ]
            )
        )
    assert caught.value.index == 1 and caught.value.field == "chosen"


def test_transform_errors_name_the_input_line(tmp_path: Path) -> None:
    good = {"chosen": "\n\nHuman: Q\n\nAssistant: A", "rejected": "\n\nHuman: Q\n\nAssistant: B"}
    message = data_error(tmp_path, [good, {"chosen": "x"}], source="  transform: hh_rlhf\n")
    assert "record line 2, field 'rejected': missing (transform 'hh_rlhf')" in message


def test_rewardmath_direct_groups_solutions_by_problem() -> None:
    def solution(pid: int, n: int, kind: str) -> dict:
        return {
            "problem": f"P{pid}",
            "answer": "1",
            "eval_solution": [f"s{n}", "end"],
            "solution_type": kind,
            "solution_reference": "m",
            "subject": "Algebra",
            "level": 1,
            "problem_id": pid,
            "id": n,
        }

    records = [
        solution(0, 0, "chosen"),
        solution(1, 10, "rejected"),
        solution(0, 1, "rejected"),
        solution(1, 11, "chosen"),
        solution(0, 2, "rejected"),
    ]
    out = list(rewardmath_direct(records))
    assert [(r["id"], r["chosen"], r["rejected"]) for r in out] == [
        ("0", [["s0", "end"]], [["s1", "end"], ["s2", "end"]]),
        ("1", [["s11", "end"]], [["s10", "end"]]),
    ]
    from rmbench.data.convert import RecordProblem

    with pytest.raises(RecordProblem, match="has 2 solutions with solution_type 'chosen'"):
        list(rewardmath_direct([solution(0, 0, "chosen"), solution(0, 1, "chosen")]))


def test_rmb_transforms() -> None:
    turns = [{"role": "user", "content": "Hi", "language": "English"}]
    pair = {
        "pair_uid": "9",
        "conversation_input": turns,
        "chosen": {"llm_name": "a", "answer": "Yes"},
        "reject": {"llm_name": "b", "answer": "No"},
        "category_path": "Pairwise_set/Helpfulness/Chat/Discussion",
    }
    assert next(rmb_pairwise([pair])) == {
        "id": "9",
        "prompt": turns,
        "chosen": "Yes",
        "rejected": "No",
        "goal": "Helpfulness",
        "scenario": "Chat/Discussion",
        "goal_scenario": "Helpfulness/Chat/Discussion",
    }
    bon = {
        "bon_uid": "3",
        "conversation_input": turns,
        "bon_best": {"answer": "Best"},
        "loser_list": [{"answer": "L1"}, {"answer": "L2"}],
        "category_path": "BoN_set/Harmlessness/S1",
    }
    assert next(rmb_bon([bon]))["rejected"] == ["L1", "L2"]


def test_rewardbench2_splits_ties_from_the_rest() -> None:
    records = [{"subset": "Ties", "id": "tied:1"}, {"subset": "Math", "id": "1"}]
    assert [r["id"] for r in rewardbench2(records)] == ["1"]
    assert [r["id"] for r in rewardbench2_ties(records)] == ["tied:1"]


def test_rewardbench2_row_with_several_correct_answers_is_scored_as_upstream() -> None:
    # upstream credits a row only when its first completion tops the list: the other correct ones compete with it
    record = {"subset": "Focus", "id": "7", "chosen": ["C1", "C2"], "rejected": ["R1", "R2", "R3"]}
    (row,) = rewardbench2([record])
    assert row["chosen"] == ["C1"] and row["rejected"] == ["C2", "R1", "R2", "R3"] and row["extra_correct"] == 1
    plain = {"subset": "Math", "id": "8", "chosen": ["C"], "rejected": ["R1", "R2", "R3"]}
    assert next(rewardbench2([plain])) == plain
