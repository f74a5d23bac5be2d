"""Preference data in the shapes people have: TRL formats without a mapping, label-selected and rated pairs,
negative indices, generated ids, identical pairs counted, and `suites validate` checking what `run` checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rmbench.cli import app
from rmbench.data import load_items
from rmbench.errors import DataError, SuiteError
from rmbench.items import Response
from tests.data.test_data import data_error, load, suite_for, write_records


def msg(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


TWO_TURNS = [msg("user", "Hi"), msg("assistant", "Hello, how can I help?"), msg("user", "Capital of France?")]


# --- TRL formats, recognised without a mapping --------------------------------------------------------------------


def test_trl_conversational_explicit_prompt(tmp_path: Path) -> None:
    record = {"prompt": TWO_TURNS, "chosen": [msg("assistant", "Paris.")], "rejected": [msg("assistant", "Rome.")]}
    item = load(tmp_path, [record]).items[0]
    assert item.prompt == tuple((m["role"], m["content"]) for m in TWO_TURNS)
    assert (item.chosen, item.rejected) == ((Response("Paris."),), (Response("Rome."),))


def test_trl_conversational_implicit_prompt_splits_the_shared_prefix(tmp_path: Path) -> None:
    records = [
        {"chosen": [*TWO_TURNS, msg("assistant", "Paris.")], "rejected": [*TWO_TURNS, msg("assistant", "Rome.")]},
        {"chosen": [msg("user", "2+2?"), msg("assistant", "4")], "rejected": [msg("user", "2+2?"), msg("assistant", "5")]},
    ]
    items = load(tmp_path, records).items
    assert items[0].prompt == tuple((m["role"], m["content"]) for m in TWO_TURNS)
    assert (items[0].chosen[0].text, items[0].rejected[0].text) == ("Paris.", "Rome.")
    assert (items[1].prompt, items[1].chosen[0].text, items[1].rejected[0].text) == ((("user", "2+2?"),), "4", "5")
    assert [i.id for i in items] == ["0", "1"]  # no id key: ids from the record position


def test_implicit_conversations_that_diverge_early_keep_the_rest_as_the_response(tmp_path: Path) -> None:
    chosen = [msg("user", "Hi"), msg("assistant", "Hello"), msg("user", "Bye"), msg("assistant", "Bye!")]
    rejected = [msg("user", "Hi"), msg("assistant", "Go away"), msg("user", "Bye"), msg("assistant", "Finally.")]
    item = load(tmp_path, [{"chosen": chosen, "rejected": rejected}]).items[0]
    assert item.prompt == (("user", "Hi"),)
    assert item.chosen[0].text == "Hello\n\nUser: Bye\n\nAssistant: Bye!"
    assert item.rejected[0].text == "Go away\n\nUser: Bye\n\nAssistant: Finally."


def test_trl_standard_implicit_prompt_follows_extract_prompt(tmp_path: Path) -> None:
    item = load(tmp_path, [{"chosen": "The sky is blue.", "rejected": "The sky is green."}]).items[0]
    assert (item.prompt, item.chosen[0].text, item.rejected[0].text) == ((("user", "The sky is"),), " blue.", " green.")


def test_implicit_prompt_that_shares_nothing_is_an_error(tmp_path: Path) -> None:
    message = data_error(tmp_path, [{"id": "a", "chosen": "Yes.", "rejected": "No."}])
    assert "field 'chosen': chosen and rejected share no leading text" in message


def test_declared_prompt_is_never_implicit(tmp_path: Path) -> None:
    record = {"id": "a", "chosen": "The sky is blue.", "rejected": "The sky is green."}
    message = data_error(tmp_path, [record], extra="fields: {prompt: question}\n")
    assert "field 'question': missing" in message


def test_chosen_that_repeats_the_prompt_messages_has_them_split_off(tmp_path: Path) -> None:
    record = {"prompt": TWO_TURNS, "chosen": [*TWO_TURNS, msg("assistant", "Paris.")], "rejected": "Rome."}
    item = load(tmp_path, [record]).items[0]
    assert (item.chosen[0].text, item.rejected[0].text) == ("Paris.", "Rome.")


# --- negative indices and identical pairs -------------------------------------------------------------------------

HH_LIKE = [
    {
        "id": "h1",
        "prompt": "Capital of France?",
        "chosen": [*TWO_TURNS, msg("assistant", "Paris.")],
        "rejected": [*TWO_TURNS, msg("assistant", "Rome.")],
    }
]


def test_negative_index_takes_the_last_turn(tmp_path: Path) -> None:
    item = load(tmp_path, HH_LIKE, extra="fields: {chosen: chosen.-1.content, rejected: rejected.-1.content}\n").items[0]
    assert (item.chosen[0].text, item.rejected[0].text) == ("Paris.", "Rome.")


def test_identical_pairs_are_counted_in_provenance(tmp_path: Path) -> None:
    # The plausible mapping `.1.content` picks the second message: an assistant turn identical in both.
    loaded = load(tmp_path, HH_LIKE, extra="fields: {chosen: chosen.1.content, rejected: rejected.1.content}\n")
    assert loaded.items[0].chosen == loaded.items[0].rejected
    assert loaded.provenance[0]["identical_pairs"] == 1
    assert "line 1" in loaded.provenance[0]["identical_pair_examples"][0]
    ordinary = load(tmp_path, HH_LIKE, extra="fields: {chosen: chosen.-1.content, rejected: rejected.-1.content}\n")
    assert "identical_pairs" not in ordinary.provenance[0]


def test_suites_validate_strict_fails_on_identical_pairs(tmp_path: Path) -> None:
    write_records(tmp_path / "data" / "d.jsonl", HH_LIKE)
    bad = suite_for(tmp_path, "- local: d.jsonl\n", "fields: {chosen: chosen.1.content, rejected: rejected.1.content}\n")
    path = tmp_path / "t.yaml"
    assert bad.origin.endswith("t.yaml")
    runner = CliRunner()
    base = ["suites", "validate", str(path), "--data-dir", str(tmp_path / "data")]
    loose = runner.invoke(app, [*base, "--data"])
    assert loose.exit_code == 0 and "identical" in loose.output
    strict = runner.invoke(app, [*base, "--strict"])
    assert strict.exit_code != 0 and "identical" in strict.output
    assert isinstance(strict.exception, SuiteError)


# --- ids ----------------------------------------------------------------------------------------------------------


def test_ids_from_positions_by_default_but_a_declared_id_is_required(tmp_path: Path) -> None:
    record = {"prompt": "Hi?", "chosen": "Hello!", "rejected": "Go away."}
    assert [i.id for i in load(tmp_path, [record, record]).items] == ["0", "1"]
    assert "field 'uid': missing" in data_error(tmp_path, [record], extra="fields: {id: uid}\n")


def test_generated_ids_repeating_across_files_say_how_to_fix(tmp_path: Path) -> None:
    record = {"prompt": "Hi?", "chosen": "Hello!", "rejected": "Go away."}
    write_records(tmp_path / "data" / "a.jsonl", [record])
    write_records(tmp_path / "data" / "b.jsonl", [record])
    suite = suite_for(tmp_path, "- local: '*.jsonl'\n")
    with pytest.raises(DataError, match="give each source an id_prefix"):
        load_items(suite, data_dir=tmp_path / "data")


# --- label-selected pairs -----------------------------------------------------------------------------------------

LABELLED = "fields: {prompt: input}\npairs: {kind: label, first: output_1, second: output_2, label: label, first_better: 1, second_better: 2}\n"


def test_label_selects_chosen(tmp_path: Path) -> None:
    records: list[dict[str, Any]] = [
        {"input": "Q1", "output_1": "good", "output_2": "bad", "label": 1},
        {"input": "Q2", "output_1": "bad", "output_2": "good", "label": 2},
        {"input": "Q3", "output_1": "good", "output_2": "bad", "label": "1"},
    ]
    items = load(tmp_path, records, extra=LABELLED).items
    assert [(i.chosen[0].text, i.rejected[0].text) for i in items] == [("good", "bad")] * 3


def test_unknown_label_value_names_record_and_field(tmp_path: Path) -> None:
    message = data_error(tmp_path, [{"id": "x", "input": "Q", "output_1": "a", "output_2": "b", "label": 3}], extra=LABELLED)
    assert "record line 1 (id 'x'), field 'label': label 3 is neither first_better (1) nor second_better (2)" in message


def test_pairs_conflicts_are_caught_when_the_suite_loads(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match=r"t\.yaml:\d+: fields\.chosen: filled by 'pairs: \{kind: label\}'"):
        suite_for(tmp_path, "- local: d.jsonl\n", LABELLED.replace("{prompt: input}", "{prompt: input, chosen: a}"))
    with pytest.raises(SuiteError, match="pairs: applies to preference items only"):
        suite_for(tmp_path, "- local: d.jsonl\n", LABELLED.replace("prompt: input", "prompt: q"), protocol="probing")


def test_field_of_another_item_type_fails_at_load_like_run(tmp_path: Path) -> None:
    # `fields.label` is a probing field: accepted by the schema, refused for pairwise items, with line and hint.
    with pytest.raises(SuiteError, match=r"t\.yaml:\d+: fields\.label: not a field of PreferenceItem"):
        suite_for(tmp_path, "- local: d.jsonl\n", "fields: {label: label}\n")
    with pytest.raises(SuiteError, match=r"did you mean 'chosen'"):
        suite_for(tmp_path, "- local: d.jsonl\n", "fields: {chose: c}\n")


# --- rated completions --------------------------------------------------------------------------------------------

RATED = "fields: {prompt: instruction}\npairs: {kind: rated, completions: completions, text: response, score: overall_score, select: SELECT}\n"


def rated_record(scores: list[float], rid: str = "u1") -> dict[str, Any]:
    return {
        "id": rid,
        "instruction": "Write a haiku.",
        "completions": [{"response": f"r{n}", "overall_score": s} for n, s in enumerate(scores)],
    }


def test_rated_best_vs_worst(tmp_path: Path) -> None:
    records = [rated_record([3, 7, 1, 7], "a"), rated_record([5, 5], "tie")]
    loaded = load(tmp_path, records, extra=RATED.replace("SELECT", "best_vs_worst"))
    assert [(i.id, i.chosen[0].text, i.rejected[0].text) for i in loaded.items] == [("a", "r1", "r2")]
    assert loaded.provenance[0]["records_without_pairs"] == 1


def test_rated_all_ordered_pairs(tmp_path: Path) -> None:
    items = load(tmp_path, [rated_record([2, 9, 2])], extra=RATED.replace("SELECT", "all_ordered")).items
    assert [(i.id, i.chosen[0].text, i.rejected[0].text) for i in items] == [("u1:1>0", "r1", "r0"), ("u1:1>2", "r1", "r2")]


def test_rated_bad_score_names_the_completion(tmp_path: Path) -> None:
    record = rated_record([1, 2]) | {"completions": [{"response": "a", "overall_score": "high"}]}
    message = data_error(tmp_path, [record], extra=RATED.replace("SELECT", "all_ordered"))
    assert "field 'completions.0.overall_score': expected a finite number score" in message


# --- sections ------------------------------------------------------------------------------------------------------


def test_sections_that_leave_out_a_subset_are_refused(tmp_path: Path) -> None:
    sources = "- {subset: adversarial, local: a.jsonl}\n- {subset: natural, local: n.jsonl}\n"
    with pytest.raises(SuiteError, match=r"subset\(s\) natural are in no section, so overall would leave them out"):
        suite_for(tmp_path, sources, "metrics: {sections: {Adversarial: {subsets: [adversarial]}}}\n")


def test_local_file_beside_the_suite_needs_no_data_dir(tmp_path: Path) -> None:
    from rmbench.suite import load_suite

    write_records(tmp_path / "mine.jsonl", [{"chosen": [msg("user", "Q"), msg("assistant", "A")],
                                            "rejected": [msg("user", "Q"), msg("assistant", "B")]}])
    (tmp_path / "mine.yaml").write_text("name: mine\nversion: '1'\nprotocol: pairwise\nsources:\n  - local: mine.jsonl\n")
    loaded = load_items(load_suite(tmp_path / "mine.yaml"))
    assert loaded.items[0].chosen[0].text == "A" and loaded.provenance[0]["path"] == "mine.jsonl"
