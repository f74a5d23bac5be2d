"""Meaning-preserving rewrites of preference items: the registry, what one rewrite is, and how it is applied.

A perturbation rewrites the text of ``PreferenceItem``s (pairwise, best-of-n, RM-Bench grid) and keeps everything
else — ids, subsets, clusters, meta — so the rewritten run pairs item by item with the original. A response rewrite
is applied to the chosen side, the rejected side or both (rewriting one side only is a controlled bias probe, e.g.
markdown added to the rejected responses); a prompt rewrite changes the shared prompt, so it has no side. An order
rewrite changes no text at all: it reverses the order in which a prompt that shows the responses together presents
them (``PreferenceItem.reversed_order``), so it only applies to protocols that declare an order-sensitive outcome
(``ScoringProtocol.order_outcome``: pairwise judges). Rewrites are deterministic: any choice they make is drawn from
``random.Random`` seeded by (seed, item id, position).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from rmbench.errors import SuiteError
from rmbench.items import REVERSED_ORDER, Conversation, PreferenceItem, Response
from rmbench.registry import Registry

Side = Literal["both", "chosen", "rejected"]
SIDES: tuple[Side, ...] = ("both", "chosen", "rejected")
Target = Literal["response", "prompt", "order"]

TextRewrite = Callable[[str, random.Random], str]
PromptRewrite = Callable[[Conversation, random.Random], Conversation]


@dataclass(frozen=True)
class Perturbation:
    """One registered rewrite. ``preserves`` says what it keeps (tests check exactly that claim).

    A response rewrite maps one text to another; a step-split response (process reward models) is rewritten step by
    step, or, with ``last_step_only``, in its last step alone (a sentence appended once, not after every step). An
    order rewrite (target ``order``) has no function: it flips ``PreferenceItem.reversed_order``.
    """

    name: str
    preserves: str
    target: Target
    text: TextRewrite | None = None
    prompt: PromptRewrite | None = None
    last_step_only: bool = False

    def response(self, response: Response, rng: random.Random) -> Response:
        """``response`` rewritten (its steps too, so PRMs see the same rewrite)."""
        assert self.text is not None
        if not response.steps:
            return Response(self.text(response.text, rng))
        steps = list(response.steps)
        positions = [len(steps) - 1] if self.last_step_only else range(len(steps))
        for position in positions:
            steps[position] = self.text(steps[position], rng)
        separator = _step_separator(response)
        return Response(separator.join(steps), tuple(steps))


def _step_separator(response: Response) -> str:
    """The separator a step-split response was joined with (``Response.from_steps``'s default when unknown)."""
    for separator in ("\n\n", "\n", " "):
        if separator.join(response.steps) == response.text:
            return separator
    return "\n\n"


PERTURBATIONS: Registry[Perturbation] = Registry("perturbation", SuiteError)


def register(perturbation: Perturbation) -> Perturbation:
    PERTURBATIONS.add(perturbation.name, perturbation, description=perturbation.preserves)
    return perturbation


@dataclass(frozen=True)
class PerturbationSpec:
    """A rewrite and the side it applies to: ``name`` or ``name:side`` on the command line and in suites."""

    name: str
    side: Side = "both"

    @property
    def label(self) -> str:
        return self.name if self.side == "both" else f"{self.name}:{self.side}"

    @classmethod
    def parse(cls, text: str) -> PerturbationSpec:
        """``markdown_add:rejected`` → (markdown_add, rejected); errors name the known rewrites and sides."""
        name, _, side = text.strip().partition(":")
        perturbation = PERTURBATIONS.get(name)  # unknown names: SuiteError with "did you mean"
        side = side or "both"
        if side not in SIDES:
            raise SuiteError(f"perturbation '{text}': unknown side '{side}'; known: {', '.join(SIDES)}")
        if perturbation.target != "response" and side != "both":
            what = "rewrites the shared prompt" if perturbation.target == "prompt" else "reorders both responses"
            raise SuiteError(f"perturbation '{text}': '{name}' {what}, so it has no side")
        return cls(PERTURBATIONS.canonical(name), side)


def parse_specs(texts: Sequence[str]) -> list[PerturbationSpec]:
    """Specs from ``name[:side]`` strings (each may hold a comma-separated list); a label given twice is an error."""
    specs = [PerturbationSpec.parse(part) for text in texts for part in text.split(",") if part.strip()]
    labels = [s.label for s in specs]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise SuiteError(f"perturbation(s) given twice: {', '.join(twice)}")
    return specs


def perturb_items(items: Sequence[PreferenceItem], spec: PerturbationSpec, seed: int = 0) -> list[PreferenceItem]:
    """``items`` with ``spec``'s rewrite applied; ids, subsets, clusters and meta unchanged (pairing keeps)."""
    perturbation = PERTURBATIONS.get(spec.name)
    out = []
    for item in items:
        if not isinstance(item, PreferenceItem):
            raise SuiteError(f"perturbations rewrite preference items; item {getattr(item, 'id', '?')} is not one")

        def rng(item_id: str = item.id) -> random.Random:
            # A fresh generator per text: every response of an item gets the same choices (the same appended
            # sentence, the same template), so a rewrite of both sides treats them alike.
            return random.Random(f"{seed}:{spec.label}:{item_id}")

        # The cluster is the original prompt's: a rewritten prompt is still the same prompt for resampling.
        meta = {**item.meta, "cluster": item.cluster}
        if perturbation.target == "order":
            out.append(replace(item, meta={**meta, REVERSED_ORDER: not item.reversed_order}))
            continue
        if perturbation.target == "prompt":
            assert perturbation.prompt is not None
            out.append(replace(item, prompt=perturbation.prompt(item.prompt, rng()), meta=meta))
            continue
        chosen, rejected = item.chosen, item.rejected
        if spec.side in ("both", "chosen"):
            chosen = tuple(perturbation.response(r, rng()) for r in chosen)
        if spec.side in ("both", "rejected"):
            rejected = tuple(perturbation.response(r, rng()) for r in rejected)
        out.append(replace(item, chosen=chosen, rejected=rejected, meta=meta))
    return out
