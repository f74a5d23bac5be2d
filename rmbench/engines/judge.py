"""LLM-as-judge engines: a generative model rates one response (pointwise) or picks the better of two (pairwise).

The request type decides the mode: a ``ScoreRequest`` gets the template's pointwise prompt and scores the parsed
rating; a ``PairRequest`` (``rmbench.judges.pairs``) gets the pairwise prompt and scores the verdict (+1 first,
-1 second, 0 tie). Either way one request is one greedy generation and one cached ``Score``, so the scheduler,
the cache and resumption work unchanged. An output that cannot be parsed scores NaN, so the protocols exclude and
count it from the scores themselves (``unparseable_verdict``, ``invalid_score``) and results.json reports the same
number whether the verdicts were generated now or read from the cache. The engine also keeps this process's counts
(``counts``) and logs the first unparseable outputs, so a template that does not suit a judge shows at once.

Generation is a backend (``TextGenerator``): transformers ``generate`` (engine ``judge``) or vLLM (``judge-vllm``).
Tests plug in a scripted one (tests/doubles.py). Judge prompts that do not fit ``max_length`` together with the generation length
are not cut (that would remove instructions or a response); they score NaN and are counted as ``too_long``.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Protocol

from rmbench.engines.base import Encoded, SpecFingerprint
from rmbench.engines.devices import (
    CPU_BATCH_TOKENS,
    GPU_BATCH_TOKENS,
    VLLMGenerateDefaults,
    resolve_device,
    torch_dtype_name,
)
from rmbench.engines.encoding import ChatEncoder, binding_limit, chat_template_key, declared_max_length
from rmbench.errors import ModelSpecError
from rmbench.judges.pairs import VERDICT_VALUES, PairRequest
from rmbench.judges.parsing import parse_earliest_error, parse_rating, parse_verdict
from rmbench.judges.templates import (
    CriticPrompt,
    JudgeTemplate,
    PairwisePrompt,
    PointwisePrompt,
    conversation_text,
    load_template,
    tagged_steps,
)
from rmbench.modelspec import ModelSpec, engine_fingerprint
from rmbench.requests import Score, ScoreRequest

#: Bump when parsing changes what a given output scores: cached verdicts were parsed by the old rules.
PARSER_VERSION = 1
MAX_EXAMPLES = 5

log = logging.getLogger(__name__)


class TextGenerator(Protocol):
    """A judge's backend: chat messages in, greedy continuations out."""

    default_batch_tokens: int

    def prepare(self, messages: list[dict[str, str]]) -> tuple[Any, int]:
        """(backend input, prompt length in tokens) for the chat messages, ending where the reply begins."""
        ...

    def generate(self, inputs: Sequence[Any], max_new_tokens: int) -> list[str]:
        """Greedy generations, one per input, without special tokens."""
        ...

    def info(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class JudgeInput:
    prompt: PointwisePrompt | PairwisePrompt | CriticPrompt
    backend_input: Any
    too_long: bool


def critic_steps(first_error: int, n_steps: int) -> tuple[float, ...]:
    """A critic's answer as step scores for the step-level protocol: 1 before the earliest error, 0 from it on
    (an error propagates); -1 (no error) scores every step 1. At threshold 0.5 the first step at 0 is the answer."""
    cut = n_steps if first_error == -1 else first_error
    return tuple(1.0 if i < cut else 0.0 for i in range(n_steps))


class JudgeEngine(SpecFingerprint):
    """Renders the judge prompt for each request, generates, parses, and keeps count of what could not be read.

    Built directly with any ``TextGenerator`` (tests use a scripted one); engines ``judge`` and ``judge-vllm`` are
    the subclasses that build their own backend from the spec (``generator_class``)."""

    #: The backend engines ``judge``/``judge-vllm`` build; None here (the generator is given).
    generator_class: ClassVar[type[HFGenerator | VLLMGenerator] | None] = None
    #: Spec fields that change a verdict: the prompt length limit (too long = NaN), remote code, and the seed the
    #: backends pass to generation. Truncation side (judge prompts are never cut) and padding side change none.
    score_fields: ClassVar[tuple[str, ...]] = ("max_length", "trust_remote_code", "seed")

    @classmethod
    def fingerprint_of(cls, spec: ModelSpec) -> str:
        backend = cls.generator_class
        # Backends that load the model (they have a dtype) cut to its limit; others (a served API) to the spec's.
        max_length = declared_max_length(spec) if getattr(backend, "dtype_of", None) is not None else spec.max_length
        return cls._fingerprint(spec, spec_template(spec), backend, max_length)

    @classmethod
    def default_batch_tokens_of(cls, spec: ModelSpec) -> int:
        if cls.generator_class is None:
            raise TypeError("a JudgeEngine without generator_class takes its batch budget from the given generator")
        return cls.generator_class.default_batch_tokens_of(spec)

    @classmethod
    def _fingerprint(cls, spec: ModelSpec, template: JudgeTemplate, backend: Any, max_length: int | None) -> str:
        """Model, options, the backend's resolved dtype, the whole judge template (its digest), the parser and the
        effective max length where it binds (a prompt over it is a NaN verdict)."""
        dtype_of = getattr(backend, "dtype_of", None)
        return engine_fingerprint(
            spec,
            cls.score_fields,
            dtype=None if dtype_of is None else dtype_of(spec),
            chat_template=chat_template_key(spec),
            judge_template=template.digest,
            parser=PARSER_VERSION,
            **binding_limit(spec, max_length),
        )

    def __init__(self, spec: ModelSpec, generator: TextGenerator, template: JudgeTemplate | None = None):
        self.spec = spec
        self.template = template or spec_template(spec)
        self.generator = generator
        #: The effective max length: the spec's, or less where the judge model allows less.
        self.max_length: int = getattr(getattr(generator, "chat", None), "max_length", spec.max_length)
        self.default_batch_tokens = self.generator.default_batch_tokens
        self.counts: Counter[str] = Counter()
        self.unparseable_examples: list[str] = []

    @cached_property
    def fingerprint(self) -> str:
        """``fingerprint_of(spec)`` of the engine class that builds this generator from the spec's template."""
        return self._fingerprint(self.spec, self.template, type(self.generator), self.max_length)

    def encode(self, requests: Sequence[ScoreRequest]) -> list[Encoded]:
        encoded = []
        for request in requests:
            prompt: PointwisePrompt | PairwisePrompt | CriticPrompt
            question = conversation_text(request.prompt)
            if request.steps and self.template.critic is not None:
                # A step-split solution and a template with a critic: ask for the earliest erroneous step.
                prompt = self.template.critic
                messages = prompt.messages(question=question, tagged_response=tagged_steps(request.steps))
            elif isinstance(request, PairRequest):
                prompt = self.template.prompt("pairwise")  # type: ignore[assignment]
                messages = prompt.messages(question=question, response_a=request.response, response_b=request.second)
            else:
                prompt = self.template.prompt("pointwise")  # type: ignore[assignment]
                messages = prompt.messages(question=question, response=request.response)
            backend_input, n_tokens = self.generator.prepare(messages)
            too_long = n_tokens + prompt.max_new_tokens > self.max_length
            payload = JudgeInput(prompt=prompt, backend_input=backend_input, too_long=too_long)
            encoded.append(Encoded(request=request, n_tokens=n_tokens, truncated=too_long, payload=payload))
        return encoded

    def score(self, batch: Sequence[Encoded], *, hidden: bool = False) -> list[Score]:
        if hidden:
            raise ModelSpecError(f"engine '{self.spec.engine}' has no reward-reading hidden state to return")
        values: list[float | tuple[float, ...]] = [math.nan] * len(batch)
        by_length: dict[int, list[int]] = {}
        for i, e in enumerate(batch):
            if e.payload.too_long:
                self.counts["too_long"] += 1
            else:
                by_length.setdefault(e.payload.prompt.max_new_tokens, []).append(i)
        for max_new_tokens, rows in by_length.items():
            texts = self.generator.generate([batch[i].payload.backend_input for i in rows], max_new_tokens)
            for i, text in zip(rows, texts):
                values[i] = self._read(batch[i].payload.prompt, text, len(batch[i].request.steps))
        return [_judge_score(v, e) for e, v in zip(batch, values)]

    def _read(
        self, prompt: PointwisePrompt | PairwisePrompt | CriticPrompt, text: str, n_steps: int = 0
    ) -> float | tuple[float, ...]:
        """The number (a critic: the step scores) a judge's output stands for, or NaN (counted, with a few examples
        kept for the report)."""
        self.counts["generated"] += 1
        if isinstance(prompt, CriticPrompt):
            first_error = parse_earliest_error(text, prompt.compiled, n_steps)
            if first_error is not None:
                return critic_steps(first_error, n_steps)
            rating = None
        elif isinstance(prompt, PointwisePrompt):
            rating = parse_rating(text, prompt.compiled, prompt.min_rating, prompt.max_rating)
        else:
            verdict = parse_verdict(text, prompt.compiled)
            rating = None if verdict is None else VERDICT_VALUES[verdict]
        if rating is None:
            self.counts["unparseable"] += 1
            if len(self.unparseable_examples) < MAX_EXAMPLES:
                self.unparseable_examples.append(text[:300])
                log.warning("judge output has no readable %s (scored NaN, counted): %r", prompt.kind, text[:300])
            return math.nan
        return rating

    def info(self) -> dict[str, Any]:
        """Static facts only (results.json must not depend on what the cache held); the unparseable counts come
        from the scores, through the protocol."""
        return {
            "engine": self.spec.engine,
            "judge_template": self.template.name,
            "judge_template_digest": self.template.digest,
            "judge_parser_version": PARSER_VERSION,
            "unparseable_output": "scored NaN: excluded and counted by the protocol, never scored",
            **self.generator.info(),
        }

    def close(self) -> None:
        close = getattr(self.generator, "close", None)
        if close is not None:
            close()


def _judge_score(value: float | tuple[float, ...], encoded: Encoded) -> Score:
    """A rating or verdict as the value; a critic's step scores as steps (NaN steps when unreadable), value = min."""
    steps = encoded.request.steps if encoded.payload.prompt.kind == CriticPrompt.kind else ()
    if steps:
        values = value if isinstance(value, tuple) else (math.nan,) * len(steps)
        return Score(value=min(values), steps=values, n_tokens=encoded.n_tokens, truncated=encoded.truncated)
    assert not isinstance(value, tuple)
    return Score(value=value, n_tokens=encoded.n_tokens, truncated=encoded.truncated)


def spec_template(spec: ModelSpec) -> JudgeTemplate:
    """The template the spec names in ``judge_template`` (a shipped name or a YAML path; unset = the default)."""
    return load_template(getattr(spec, "judge_template", None))




class HFGenerator:
    """transformers ``generate``: greedy, left-padded with an attention mask (generate derives position ids from
    it), seeded so that a sampling generation config cannot make two runs differ."""

    @classmethod
    def dtype_of(cls, spec: ModelSpec) -> str:
        return torch_dtype_name(spec)

    @classmethod
    def default_batch_tokens_of(cls, spec: ModelSpec) -> int:
        return GPU_BATCH_TOKENS if resolve_device(spec).type == "cuda" else CPU_BATCH_TOKENS

    def __init__(self, spec: ModelSpec):
        from rmbench.engines.causal_lm import load_causal_lm

        self.spec = spec
        self.chat = ChatEncoder(spec)
        self.model = load_causal_lm(spec)
        self.device = next(self.model.parameters()).device
        self.default_batch_tokens = self.default_batch_tokens_of(spec)

    def prepare(self, messages: list[dict[str, str]]) -> tuple[list[int], int]:
        ids = self.chat.ids(self.chat.render(messages, generation_prompt=True))
        return ids, len(ids)

    def generate(self, inputs: Sequence[list[int]], max_new_tokens: int) -> list[str]:
        import torch

        from rmbench.engines.hf import pad_batch

        input_ids, mask = pad_batch(inputs, self.chat.pad_id, "left")
        torch.manual_seed(self.spec.seed)
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=mask.to(self.device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=self.chat.pad_id,
            )
        return [self.chat.decode(row) for row in output[:, input_ids.shape[1] :].cpu()]

    def info(self) -> dict[str, Any]:
        import torch
        import transformers

        return {
            "backend": "transformers",
            "decoding": "greedy",
            "dtype": str(next(self.model.parameters()).dtype).removeprefix("torch."),
            "device": str(self.device),
            "chat_template_source": self.chat.chat_template_source,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        }


class VLLMGenerator(VLLMGenerateDefaults):
    """vLLM generation with temperature 0 on the same token ids as the transformers backend."""

    def __init__(self, spec: ModelSpec):
        from rmbench.engines.causal_lm import vllm_llm

        self.spec = spec
        self.chat = ChatEncoder(spec)
        self.llm = vllm_llm(spec, max_model_len=self.chat.max_length)

    def prepare(self, messages: list[dict[str, str]]) -> tuple[list[int], int]:
        ids = self.chat.ids(self.chat.render(messages, generation_prompt=True))
        return ids, len(ids)

    def generate(self, inputs: Sequence[list[int]], max_new_tokens: int) -> list[str]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens, seed=self.spec.seed)
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=ids) for ids in inputs], params, use_tqdm=False)
        return [self.chat.decode(output.outputs[0].token_ids) for output in outputs]

    def close(self) -> None:
        """Stop vLLM's engine now rather than at garbage collection."""
        from rmbench.engines.causal_lm import close_vllm

        close_vllm(self.__dict__.pop("llm", None))

    def info(self) -> dict[str, Any]:
        import vllm

        return {
            "backend": "vllm",
            "decoding": "greedy",
            "chat_template_source": self.chat.chat_template_source,
            "vllm": vllm.__version__,
        }


class HFJudgeEngine(JudgeEngine):
    """Engine ``judge``: transformers generation. The template is read first, so a bad one fails before loading."""

    generator_class = HFGenerator

    def __init__(self, spec: ModelSpec):
        template = spec_template(spec)
        super().__init__(spec, HFGenerator(spec), template)


class VLLMJudgeEngine(JudgeEngine):
    """Engine ``judge-vllm``: vLLM generation."""

    generator_class = VLLMGenerator

    def __init__(self, spec: ModelSpec):
        template = spec_template(spec)
        super().__init__(spec, VLLMGenerator(spec), template)


#: The registry's names for the two judge engines.
hf_judge = HFJudgeEngine
vllm_judge = VLLMJudgeEngine

