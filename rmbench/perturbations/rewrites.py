"""The shipped rewrites, each registered with what it preserves (tests/test_perturbations.py checks each claim).

Answer formats follow reWordBench's finding that an RM's verdict can hinge on how a final answer is written; the
rest are formatting changes a reader would not count as a different answer. Code fences are left untouched by the
markdown and line-break rewrites (inside a fence, markup and line breaks are content).
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Callable

from rmbench.items import Conversation
from rmbench.perturbations.base import Perturbation, register

# --- final answers ------------------------------------------------------------------------------------------------

_SENTENCE = re.compile(r"(?:The|the) (?:final )?answer is:?[ \t]*(?P<answer>[^\n]+?)\.?(?:\*{1,2})?[ \t]*$", re.MULTILINE)
_HEADING = re.compile(r"^#+[ \t]*(?:Final )?Answer[ \t]*\n+[ \t]*(?P<answer>[^\n]+?)[ \t]*$", re.MULTILINE)
_BOXED = "\\boxed{"


def _boxed_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, content) of every ``\\boxed{...}`` with balanced braces."""
    spans = []
    start = text.find(_BOXED)
    while start != -1:
        depth, position = 1, start + len(_BOXED)
        while position < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[position], 0)
            position += 1
        if depth == 0:
            spans.append((start, position, text[start + len(_BOXED) : position - 1]))
        start = text.find(_BOXED, position if depth == 0 else start + 1)
    return spans


def final_answer_span(text: str) -> tuple[int, int, str] | None:
    """The last final answer written as ``\\boxed{x}``, "The answer is x" or "# Answer\\n\\nx": (start, end, x); a
    boxed answer inside a sentence ("The answer is $\\boxed{x}$.") is x, and the span the whole sentence."""
    spans = _boxed_spans(text)
    spans += [(m.start(), m.end(), m.group("answer")) for m in _SENTENCE.finditer(text)]
    spans += [(m.start(), m.end(), m.group("answer")) for m in _HEADING.finditer(text)]
    if not spans:
        return None
    # The last statement; of statements ending together, the outermost ("The answer is \\boxed{x}." is one).
    start, end, answer = max(spans, key=lambda s: (s[1], -s[0]))
    inner = _boxed_spans(answer.strip().strip("$"))
    if len(inner) == 1 and inner[0][0] == 0 and inner[0][1] == len(answer.strip().strip("$")):
        answer = inner[0][2]
    return start, end, answer


def final_answer(text: str) -> str | None:
    """The final answer of ``text`` in any of the three forms (None when it states none)."""
    span = final_answer_span(text)
    return None if span is None else span[2].strip()


def _answer_as(form: Callable[[str], str]) -> Callable[[str, random.Random], str]:
    def rewrite(text: str, rng: random.Random) -> str:
        span = final_answer_span(text)
        if span is None:
            return text
        start, end, answer = span
        return text[:start] + form(answer.strip()) + text[end:]

    return rewrite


ANSWER_PRESERVES = "the final answer (as final_answer extracts it) and all text around the answer statement"

register(Perturbation("answer_boxed", f"Final answer written as \\boxed{{x}}; keeps {ANSWER_PRESERVES}.", "response",
                      text=_answer_as(lambda x: f"\\boxed{{{x}}}")))
register(Perturbation("answer_sentence", f"Final answer written as 'The answer is x.'; keeps {ANSWER_PRESERVES}.",
                      "response", text=_answer_as(lambda x: f"The answer is {x}.")))
register(Perturbation("answer_heading", f"Final answer written as '# Answer' then x; keeps {ANSWER_PRESERVES}.",
                      "response", text=_answer_as(lambda x: f"# Answer\n\n{x}")))


# --- markdown -----------------------------------------------------------------------------------------------------


def _outside_fences(text: str, rewrite: Callable[[str], str]) -> str:
    """``rewrite`` applied to the text between fenced code blocks (```), the blocks kept as they are."""
    parts = re.split(r"(^```.*?^```[^\n]*$)", text, flags=re.MULTILINE | re.DOTALL)
    return "".join(part if index % 2 else rewrite(part) for index, part in enumerate(parts))


_HEADING_MARK = re.compile(r"^[ \t]*#{1,6}[ \t]+", re.MULTILINE)
_BULLET = re.compile(r"^([ \t]*)[-*+][ \t]+", re.MULTILINE)
_QUOTE = re.compile(r"^[ \t]*>[ \t]?", re.MULTILINE)
_STRONG = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*", re.DOTALL)
_EMPHASIS = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])")


def _strip_markdown(text: str) -> str:
    def plain(part: str) -> str:
        part = _HEADING_MARK.sub("", part)
        part = _QUOTE.sub("", part)
        part = _BULLET.sub(r"\1", part)
        part = _STRONG.sub(r"\1", part)
        return _EMPHASIS.sub(r"\1", part)

    return _outside_fences(text, plain)


def _add_markdown(text: str) -> str:
    """Each prose paragraph becomes a bullet whose first sentence is bold (paragraphs already marked up are kept)."""

    def marked(part: str) -> str:
        blocks = re.split(r"(\n[ \t]*\n)", part)
        for index in range(0, len(blocks), 2):
            block = blocks[index]
            if not block.strip() or re.match(r"[ \t]*([-*+>#|]|\d+[.)])", block):
                continue
            lead = len(block) - len(block.lstrip())
            body = block[lead:]
            sentence = re.match(r"(.+?[.!?:])(?=\s|$)", body)
            head = sentence.group(1) if sentence else body.split("\n", 1)[0]
            if head.strip() and "*" not in head:
                body = f"**{head}**{body[len(head):]}"
            blocks[index] = block[:lead] + "- " + body
        return "".join(blocks)

    return _outside_fences(text, marked)


WORDS_PRESERVED = "every word (\\w+ token) in order"
register(Perturbation("markdown_strip", f"Headings, bullets, quotes and bold/italic markers removed; keeps "
                      f"{WORDS_PRESERVED} and code blocks.", "response", text=lambda t, _: _strip_markdown(t)))
register(Perturbation("markdown_add", f"Each prose paragraph made a bullet with its first sentence in bold; keeps "
                      f"{WORDS_PRESERVED} and code blocks.", "response", text=lambda t, _: _add_markdown(t)))


# --- whitespace, line breaks, lists -------------------------------------------------------------------------------


def _normalise_whitespace(text: str) -> str:
    lines = []
    for line in text.strip().split("\n"):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        lines.append(indent + re.sub(r"[ \t]+", " ", line.strip(" \t")))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def _single_line_breaks(text: str) -> str:
    return _outside_fences(text, lambda part: re.sub(r"\n[ \t]*\n(?:[ \t]*\n)*", "\n", part))


_ORDERED = re.compile(r"^([ \t]*)\d+([.)])(?=[ \t])", re.MULTILINE)

register(Perturbation("whitespace", "Runs of spaces and tabs collapsed, trailing spaces and extra blank lines "
                      "removed; keeps every non-whitespace character in order and each line's indentation.",
                      "response", text=lambda t, _: _normalise_whitespace(t)))
register(Perturbation("line_breaks", "Blank lines between paragraphs removed (one line break instead); keeps every "
                      "line, in order, and code blocks.", "response", text=lambda t, _: _single_line_breaks(t)))
register(Perturbation("list_renumber", "Ordered-list items all numbered '1.' (markdown's lazy numbering, rendered "
                      "identically); keeps every item's text and order.", "response",
                      text=lambda t, _: _ORDERED.sub(r"\g<1>1.", t)))


# --- Unicode look-alikes ------------------------------------------------------------------------------------------

_LOOKALIKES = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
})


def fold_lookalikes(text: str) -> str:
    """NFKC (full-width forms, ligatures, no-break spaces, '…') then typographic quotes and dashes as ASCII."""
    return unicodedata.normalize("NFKC", text).translate(_LOOKALIKES)


register(Perturbation("unicode_lookalikes", "Unicode compatibility forms (NFKC) and typographic quotes, dashes and "
                      "the minus sign written as their ASCII look-alikes; keeps every word and number.", "response",
                      text=lambda t, _: fold_lookalikes(t)))


# --- appended neutral sentence ------------------------------------------------------------------------------------

NEUTRAL_SENTENCES = (
    "I hope this helps.",
    "Let me know if you have any other questions.",
    "Thank you for reading.",
)

register(Perturbation("neutral_sentence", "A neutral closing sentence (one per item, the same for every response of "
                      "it) appended after a blank line; keeps the whole original text as a prefix and the final "
                      "answer.", "response", text=lambda t, rng: f"{t}\n\n{rng.choice(NEUTRAL_SENTENCES)}",
                      last_step_only=True))


# --- prompts ------------------------------------------------------------------------------------------------------

PARAPHRASE_TEMPLATES = (
    "Please answer the following request.\n\n{request}",
    "{request}\n\nPlease respond to the request above.",
    "Here is my request:\n{request}",
    "I have a question for you.\n\n{request}",
)


def _paraphrase(prompt: Conversation, rng: random.Random) -> Conversation:
    last = max((i for i, (role, _) in enumerate(prompt) if role == "user"), default=None)
    if last is None:
        return prompt
    template = rng.choice(PARAPHRASE_TEMPLATES)
    turns = list(prompt)
    turns[last] = ("user", template.format(request=turns[last][1]))
    return tuple(turns)


_ROLE_NAMES = {"user": "User", "assistant": "Assistant", "system": "System"}


def _as_transcript(prompt: Conversation, rng: random.Random) -> Conversation:
    """The conversation as one user message, a 'Role: text' transcript (a system turn stays the system turn)."""
    system = tuple(turn for turn in prompt if turn[0] == "system")
    turns = [turn for turn in prompt if turn[0] != "system"]
    transcript = "\n\n".join(f"{_ROLE_NAMES.get(role, role.title())}: {content}" for role, content in turns)
    return (*system, ("user", transcript))


register(Perturbation("prompt_paraphrase", "The last user turn wrapped in a fixed neutral template (seeded choice of "
                      f"{len(PARAPHRASE_TEMPLATES)}); keeps the request text verbatim and every other turn.", "prompt",
                      prompt=_paraphrase))
register(Perturbation("chat_format", "The conversation given as one user message holding a 'User: / Assistant:' "
                      "transcript; keeps every turn's text, role and order.", "prompt", prompt=_as_transcript))


# --- presentation order -------------------------------------------------------------------------------------------

register(Perturbation("response_order", "Responses shown to a pairwise judge in the other order (its single-order "
                      "presentation reversed); keeps every text, item id and label: only the order of presentation "
                      "changes. Judges only: a model that scores each response alone never sees an order.", "order"))
