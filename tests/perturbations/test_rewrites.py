"""Every rewrite keeps what it claims to keep (its ``preserves`` text), deterministically, on plain and step-split
responses; a new rewrite without a claim check here fails ``test_every_rewrite_has_a_claim_check``."""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Callable

import pytest

from rmbench.errors import SuiteError
from rmbench.items import REVERSED_ORDER, PreferenceItem, Response, user_turn
from rmbench.perturbations import PERTURBATIONS, PerturbationSpec, final_answer, parse_specs, perturb_items
from rmbench.perturbations.rewrites import NEUTRAL_SENTENCES, fold_lookalikes

TEXTS = [
    "Step one: 3 + 4 = 7.\n\nThe answer is 7.",
    "We compute $x = 2$.\n\nThe final answer is \\boxed{\\frac{1}{2}}",
    "First, add.\n\n# Answer\n\n42",
    "## Drawers\n\n- **Underwear** drawer: socks.\n* *T-shirts*   and tops.  \n\n> A quote.\n\n\n\nDone.",
    "Plain prose here. It has two sentences.\n\nA second paragraph: with a colon.",
    "Steps:\n1. Mix.\n2. Bake.\n3. Cool.\n\n10) Serve.",
    "It\u2019s \u201cfine\u201d \u2014 really\u2026 5 \u2212 3 = 2 and \ufb01ne\u00a0print.",
    "Code:\n\n```python\ndef f(x):\n    return x**2  # keep  *this*\n\n\n```\n\nAfter   the   code.",
    "",
]


def rewrite(name: str, text: str, seed: int = 0) -> str:
    perturbation = PERTURBATIONS.get(name)
    assert perturbation.text is not None
    return perturbation.text(text, random.Random(seed))


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


def fences(text: str) -> list[str]:
    return re.findall(r"^```.*?^```", text, flags=re.MULTILINE | re.DOTALL)


def check_answer(name: str, form: str) -> None:
    for text in TEXTS:
        out = rewrite(name, text)
        assert final_answer(out) == final_answer(text)
        if final_answer(text) is not None:
            assert form.format(final_answer(text)) in out


def check_markdown_strip() -> None:
    for text in TEXTS:
        out = rewrite("markdown_strip", text)
        assert words(out) == words(text) and fences(out) == fences(text)
    out = rewrite("markdown_strip", TEXTS[3])
    assert not re.search(r"^\s*([#>]|[-*] )", out, flags=re.MULTILINE) and "**" not in out and "*T" not in out


def check_markdown_add() -> None:
    for text in TEXTS:
        out = rewrite("markdown_add", text)
        assert words(out) == words(text) and fences(out) == fences(text)
    plain = TEXTS[4]
    out = rewrite("markdown_add", plain)
    assert out.startswith("- **Plain prose here.**") and rewrite("markdown_strip", out) == plain


def check_whitespace() -> None:
    for text in TEXTS:
        out = rewrite("whitespace", text)
        assert re.sub(r"\s", "", out) == re.sub(r"\s", "", text)
        assert rewrite("whitespace", out) == out  # a normal form
        assert "  " not in out.replace("\n    ", "\n") and "\n\n\n" not in out
    assert "\n    return" in rewrite("whitespace", TEXTS[7])  # indentation kept


def check_line_breaks() -> None:
    for text in TEXTS:
        out = rewrite("line_breaks", text)
        kept = [line for line in text.split("\n") if line.strip()]
        assert [line for line in out.split("\n") if line.strip()] == kept and fences(out) == fences(text)
    assert "\n\n" not in rewrite("line_breaks", TEXTS[4])


def check_list_renumber() -> None:
    out = rewrite("list_renumber", TEXTS[5])
    assert out == "Steps:\n1. Mix.\n1. Bake.\n1. Cool.\n\n1. Serve."
    for text in TEXTS:
        out = rewrite("list_renumber", text)
        strip = re.compile(r"^\s*\d+[.)](?=\s)", re.MULTILINE)
        assert strip.sub("", out) == strip.sub("", text)


def check_unicode_lookalikes() -> None:
    out = rewrite("unicode_lookalikes", TEXTS[6])
    assert out == "It's \"fine\" - really... 5 - 3 = 2 and fine print."
    for text in TEXTS:
        out = rewrite("unicode_lookalikes", text)
        assert words(out) == words(unicodedata.normalize("NFKC", text))
        assert fold_lookalikes(out) == out


def check_neutral_sentence() -> None:
    for text in TEXTS:
        out = rewrite("neutral_sentence", text)
        assert out.startswith(text) and out[len(text) + 2 :] in NEUTRAL_SENTENCES
        assert final_answer(out) == final_answer(text)


def prompt_item(prompt: tuple[tuple[str, str], ...]) -> PreferenceItem:
    return PreferenceItem("p1", prompt, (Response("a"),), (Response("b"),))


CONVERSATION = (("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello!"), ("user", "What is 2+2?"))


def check_prompt_paraphrase() -> None:
    for prompt in (user_turn("What is 2+2?"), CONVERSATION):
        (item,) = perturb_items([prompt_item(prompt)], PerturbationSpec("prompt_paraphrase"))
        assert item.prompt[:-1] == prompt[:-1] and item.prompt[-1][0] == "user"
        assert "What is 2+2?" in item.prompt[-1][1] and item.prompt[-1][1] != "What is 2+2?"
        assert (item.chosen, item.rejected) == (prompt_item(prompt).chosen, prompt_item(prompt).rejected)


def check_chat_format() -> None:
    (item,) = perturb_items([prompt_item(CONVERSATION)], PerturbationSpec("chat_format"))
    assert item.prompt == (("system", "Be brief."), ("user", "User: Hi\n\nAssistant: Hello!\n\nUser: What is 2+2?"))


def check_response_order() -> None:
    """Only the presentation order changes: every text, id, subset, cluster and label is kept (also for items with
    several responses a side), and reversing twice is the original order."""
    items = [
        PreferenceItem("o1", CONVERSATION, (Response("good"),), (Response("bad"),), "s", {"cluster": "c", "k": 1}),
        PreferenceItem("o2", user_turn("q"), (Response.from_steps(("a", "b")),), (Response("x"), Response("y"))),
    ]
    out = perturb_items(items, PerturbationSpec("response_order"))
    for before, after in zip(items, out, strict=True):
        assert after == before  # ids, prompt, chosen, rejected and subset (meta is not part of equality)
        assert (after.prompt, after.chosen, after.rejected) == (before.prompt, before.chosen, before.rejected)
        assert after.cluster == before.cluster and after.reversed_order and not before.reversed_order
        assert {k: v for k, v in after.meta.items() if k != REVERSED_ORDER} == {**before.meta, "cluster": before.cluster}
    again = perturb_items(out, PerturbationSpec("response_order"))
    assert not any(i.reversed_order for i in again)


CLAIMS: dict[str, Callable[[], None]] = {
    "answer_boxed": lambda: check_answer("answer_boxed", "\\boxed{{{}}}"),
    "answer_sentence": lambda: check_answer("answer_sentence", "The answer is {}."),
    "answer_heading": lambda: check_answer("answer_heading", "# Answer\n\n{}"),
    "markdown_strip": check_markdown_strip,
    "markdown_add": check_markdown_add,
    "whitespace": check_whitespace,
    "line_breaks": check_line_breaks,
    "list_renumber": check_list_renumber,
    "unicode_lookalikes": check_unicode_lookalikes,
    "neutral_sentence": check_neutral_sentence,
    "prompt_paraphrase": check_prompt_paraphrase,
    "chat_format": check_chat_format,
    "response_order": check_response_order,
}


def test_every_rewrite_has_a_claim_check() -> None:
    assert set(CLAIMS) == set(PERTURBATIONS.names())


@pytest.mark.parametrize("name", sorted(CLAIMS))
def test_rewrite_preserves_what_it_claims(name: str) -> None:
    CLAIMS[name]()


def test_final_answer_forms() -> None:
    assert final_answer("so \\boxed{\\frac{3}{4}}.") == "\\frac{3}{4}"
    assert final_answer("The answer is 2.5.") == "2.5"
    assert final_answer("# Answer\n\n-3") == "-3"
    assert final_answer("**The answer is 15.**") == "15"
    assert final_answer("The answer is 1.\n\n\\boxed{2}") == "2"  # the last statement wins
    assert final_answer("No answer here.") is None


def item(item_id: str, chosen: tuple[Response, ...], rejected: tuple[Response, ...]) -> PreferenceItem:
    return PreferenceItem(item_id, user_turn("q"), chosen, rejected, "s", {"cluster": "c-" + item_id})


def test_sides_ids_meta_and_determinism() -> None:
    items = [item(str(i), (Response(f"**c{i}**  x"),), (Response(f"**r{i}**  x"), Response("y"))) for i in range(5)]
    for side, chosen_changed, rejected_changed in (("both", 1, 1), ("chosen", 1, 0), ("rejected", 0, 1)):
        spec = PerturbationSpec("markdown_strip", side)  # type: ignore[arg-type]
        out = perturb_items(items, spec)
        assert out == perturb_items(items, spec)  # deterministic
        for before, after in zip(items, out, strict=True):
            assert (after.id, after.subset, after.meta, after.cluster) == (
                before.id, before.subset, before.meta, before.cluster
            )
            assert (after.chosen != before.chosen) == chosen_changed
            assert (after.rejected[0] != before.rejected[0]) == rejected_changed


def test_one_choice_per_item_for_every_response() -> None:
    items = [item(str(i), (Response("a"),), (Response("b"), Response("c"))) for i in range(20)]
    out = perturb_items(items, PerturbationSpec("neutral_sentence"))
    endings = [{r.text[1:] for r in (*i.chosen, *i.rejected)} for i in out]
    assert all(len(e) == 1 for e in endings)  # the same sentence for every response of an item
    assert len({e.pop() for e in endings}) > 1  # seeded per item, not one sentence for all


def test_step_split_responses_stay_consistent() -> None:
    steps = ("Add:  2 + 2 = 4.", "The answer is 4.")
    solution = Response.from_steps(steps)
    spec_items = [item("1", (solution,), (Response.from_steps(("Guess.", "The answer is 5.")),))]
    for name in ("answer_boxed", "whitespace", "neutral_sentence", "markdown_add"):
        (out,) = perturb_items(spec_items, PerturbationSpec(name))
        for response in (*out.chosen, *out.rejected):
            assert response.text == "\n\n".join(response.steps)
        if name == "neutral_sentence":
            assert len(out.chosen[0].steps) == 2 and out.chosen[0].steps[0] == steps[0]  # appended once, at the end
    (boxed,) = perturb_items(spec_items, PerturbationSpec("answer_boxed"))
    assert boxed.chosen[0].steps == ("Add:  2 + 2 = 4.", "\\boxed{4}")


def test_math_robustness_answers_survive_every_answer_format() -> None:
    from rmbench.data import iter_item_chunks
    from rmbench.suite import load_suite

    (items,) = list(iter_item_chunks(load_suite("math-robustness"), None, 30, chunk_items=30))
    for name in ("answer_boxed", "answer_sentence", "answer_heading", "markdown_add", "unicode_lookalikes"):
        for before, after in zip(items, perturb_items(items, PerturbationSpec(name)), strict=True):
            assert final_answer(after.chosen[0].text) == before.meta["answer"]
            assert [final_answer(r.text) for r in after.rejected] == before.meta["rejected_answers"]


def test_specs_parse_with_clear_errors() -> None:
    assert [s.label for s in parse_specs(["answer_boxed,markdown_add:rejected", "whitespace"])] == [
        "answer_boxed", "markdown_add:rejected", "whitespace"
    ]
    with pytest.raises(SuiteError, match="did you mean 'markdown_add'"):
        parse_specs(["markdown_ad"])
    with pytest.raises(SuiteError, match="unknown side 'left'"):
        parse_specs(["whitespace:left"])
    with pytest.raises(SuiteError, match="shared prompt, so it has no side"):
        parse_specs(["prompt_paraphrase:chosen"])
    with pytest.raises(SuiteError, match="'response_order' reorders both responses, so it has no side"):
        parse_specs(["response_order:rejected"])
    with pytest.raises(SuiteError, match="given twice: whitespace"):
        parse_specs(["whitespace", "whitespace:both"])
