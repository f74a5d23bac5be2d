"""Verdict parsing: a judge's free text → a rating or a pairwise verdict, or None when it cannot be read.

Parsing never guesses. Patterns are tried strongest first; the first pattern that matches decides, and all its
matches must agree: a judge that writes "[[A]]" and later "[[B]]" (often by echoing the format instructions) is
unparseable, as is a rating outside the template's scale or text with no verdict at all. The engine scores an
unparseable output NaN, so it is counted and reported, never silently scored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

#: Pointwise ratings, strongest first: MT-Bench's "Rating: [[7]]", then "Rating: 7" / "Rating: [7]" / "rating 7/10",
#: then "Score: 7", then a bare "7/10".
RATING_PATTERNS: tuple[str, ...] = (
    r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]",
    r"(?i:\brating)\s*(?i:is\s*|of\s*)?[:=]?\s*\[?\s*(\d+(?:\.\d+)?)\s*\]?",
    r"(?i:\bscore)\s*(?:is\s*)?[:=]\s*\[?\s*(\d+(?:\.\d+)?)",
    r"\b(\d+(?:\.\d+)?)\s*/\s*10\b",
)

#: Pairwise verdicts, strongest first: MT-Bench pair-v2's "[[A]]" / "[[B]]" / "[[C]]" (tie), then "Verdict: A",
#: "Final verdict: Assistant B", "Verdict: tie", then "Assistant A is better". Letters are matched in upper case
#: only, so "verdict: a tie" never reads as A.
VERDICT_PATTERNS: tuple[str, ...] = (
    r"\[\[\s*([ABC])\s*\]\]",
    r"(?i:\bverdict\s*(?:is\s*)?[:=]?\s*\[?\s*(?:assistant\s+|response\s+|output\s+)?)\(?([AB])\)?\b",
    r"(?i:\bverdict\s*(?:is\s*)?[:=]?\s*(?:a\s+)?(tie)\b)",
    r"(?i:\b(?:assistant|response|output)\s+)([AB])(?i:\s+is\s+(?:the\s+)?better)\b",
)

#: Earliest-error critics (ProcessBench): the 0-based index of the first erroneous step, -1 for none, in \boxed{}.
EARLIEST_ERROR_PATTERNS: tuple[str, ...] = (r"\\boxed\{\s*(-?\d+)\s*\}",)

#: Verdict labels: the first-shown response (A) wins, the second (B) wins, or a tie (MT-Bench's C).
VERDICT_LABELS = {"A": "A", "B": "B", "C": "tie", "TIE": "tie"}


def compile_patterns(patterns: Sequence[str]) -> tuple[re.Pattern[str], ...]:
    """Compile patterns that must each capture exactly one group (the value)."""
    compiled = []
    for pattern in patterns:
        regex = re.compile(pattern)
        if regex.groups != 1:
            raise ValueError(f"verdict pattern {pattern!r} must have exactly one capture group, has {regex.groups}")
        compiled.append(regex)
    return tuple(compiled)


def _agreed_match(
    text: str, patterns: Sequence[re.Pattern[str]], normalize: Callable[[str], str] = str.upper
) -> str | None:
    """The value the strongest matching pattern captures, if all its matches agree; else None."""
    for pattern in patterns:
        values = {normalize(m.group(1).strip()) for m in pattern.finditer(text)}
        if values:
            return values.pop() if len(values) == 1 else None
    return None


def parse_rating(text: str, patterns: Sequence[re.Pattern[str]], low: float, high: float) -> float | None:
    """The rating in ``text`` if it is unambiguous and within [low, high]."""
    value = _agreed_match(text, patterns, normalize=lambda v: repr(float(v)))  # "7" and "7.0" agree
    if value is None:
        return None
    rating = float(value)
    return rating if low <= rating <= high else None


def parse_verdict(text: str, patterns: Sequence[re.Pattern[str]]) -> str | None:
    """"A", "B" or "tie" if ``text`` gives one unambiguous verdict; else None."""
    value = _agreed_match(text, patterns)
    return None if value is None else VERDICT_LABELS.get(value)


def parse_earliest_error(text: str, patterns: Sequence[re.Pattern[str]], n_steps: int) -> int | None:
    """The critic's earliest erroneous step (0-based, -1 = none), or None. As ProcessBench's ``extract_answer``, the
    last match of the strongest matching pattern decides; an index outside -1..n_steps-1 is unparseable."""
    for pattern in patterns:
        matches = list(pattern.finditer(text))
        if matches:
            value = int(matches[-1].group(1))
            return value if -1 <= value < n_steps else None
    return None
