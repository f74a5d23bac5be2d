"""The one encoder every model-reading engine uses: chat rendering, tokenizing, truncation and step tags.

hf, hf-prm, vllm, vllm-prm, dpo and the judges all turn a conversation into token ids here, so two engines given
the same spec see the very same ids (vLLM receives them as ``TokensPrompt``; parity is then a matter of kernels).
The chat template is the tokenizer's own, a built-in one by name (``plain``), a ``.jinja`` file or a Jinja string;
a rendering that already starts with BOS gets no second one; truncation cuts one side to ``max_length`` but keeps a
framing special token at either end, and is reported (``Encoded.truncated``) so it is counted, never silent.

Only the tokenizer is loaded (no weights); transformers is imported when an encoder is built, torch never.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rmbench.engines.base import Encoded
from rmbench.errors import ModelSpecError
from rmbench.modelspec import ModelSpec, stable_hash
from rmbench.requests import ScoreRequest

#: Built-in chat templates, chosen by name with ``--chat-template NAME``.
BUILTIN_TEMPLATES: dict[str, str] = {
    # "role: content" blocks: for encoder RMs and base models that were never given a chat template.
    "plain": (
        "{% for message in messages %}{% if not loop.first %}\n\n{% endif %}"
        "{{ message['role'] }}: {{ message['content'] }}{% endfor %}"
    ),
}


def resolve_chat_template(override: str | None, tokenizer_template: str | None) -> tuple[str, str]:
    """(template, where it came from): a built-in name, a .jinja file, a Jinja string, or the tokenizer's own."""
    if override is None:
        if not tokenizer_template:
            raise ModelSpecError(
                "the tokenizer has no chat template: pass one with --chat-template (a Jinja string, a .jinja file, "
                f"or a built-in name: {', '.join(sorted(BUILTIN_TEMPLATES))}; 'plain' suits encoder RMs)"
            )
        return tokenizer_template, "tokenizer"
    if override in BUILTIN_TEMPLATES:
        return BUILTIN_TEMPLATES[override], f"builtin:{override}"
    if _is_file(override):
        return Path(override).read_text(encoding="utf-8"), f"file:{override}"
    if "{" not in override:  # no Jinja syntax at all: it was meant as a file or a name
        raise ModelSpecError(
            f"chat template '{override}' is neither an existing file, a Jinja string, nor a built-in name "
            f"({', '.join(sorted(BUILTIN_TEMPLATES))})"
        )
    return override, "spec"


def chat_template_key(spec: ModelSpec) -> str | None:
    """Hash of the override's resolved text (so a built-in name, a file and the same string give one key, and an
    edited built-in or file a new one); None for the tokenizer's own template, which the model's identity covers."""
    if spec.chat_template is None:
        return None
    template, _ = resolve_chat_template(spec.chat_template, None)
    return stable_hash(template)


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # a long Jinja string is "File name too long", not a file
        return False


def truncate_ids(ids: list[int], max_length: int, side: str, special_ids: set[int]) -> tuple[list[int], bool]:
    """Cut ``ids`` to ``max_length`` on ``side``, keeping a framing special token at either end (BOS/CLS, eos/SEP):
    truncation removes content, not the tokens a model was trained to see first or to read its score at."""
    if len(ids) <= max_length:
        return ids, False
    head = ids[:1] if ids[0] in special_ids and max_length > 1 else []
    tail = ids[-1:] if ids[-1] in special_ids and max_length > len(head) + 1 else []
    body = ids[len(head) : len(ids) - len(tail)]
    keep = max_length - len(head) - len(tail)
    body = body[len(body) - keep :] if side == "left" else body[:keep]
    return head + body + tail, True


def load_tokenizer(spec: ModelSpec, model: str | None = None, revision: str | None = None) -> Any:
    """The tokenizer of ``model`` (default: the spec's own model and revision)."""
    import transformers

    name = model or spec.model
    if not name:
        raise ModelSpecError(f"engine '{spec.engine}' needs a model: pass --model PATH_OR_HUB_ID")
    load = {"revision": revision if model else spec.revision, "trust_remote_code": spec.trust_remote_code}
    try:
        return transformers.AutoTokenizer.from_pretrained(name, **load)
    except (OSError, ValueError) as exc:
        raise ModelSpecError(f"cannot load the tokenizer of '{name}': {exc}") from exc


class ChatEncoder:
    """A tokenizer with its resolved chat template: requests to (truncated) token ids, one id list per request.

    ``model``/``revision`` load another model's tokenizer under the same spec (a DPO reference model)."""

    def __init__(self, spec: ModelSpec, model: str | None = None, revision: str | None = None):
        self.spec = spec
        self.name = model or spec.model
        self.tokenizer = load_tokenizer(spec, model, revision)
        self.chat_template, self.chat_template_source = resolve_chat_template(
            spec.chat_template, getattr(self.tokenizer, "chat_template", None)
        )
        pad = self.tokenizer.pad_token_id
        self.pad_id: int = pad if pad is not None else (self.tokenizer.eos_token_id or 0)  # any id: the mask hides it
        self.special_ids: set[int] = set(self.tokenizer.all_special_ids)

    def render(self, messages: list[dict[str, str]], *, generation_prompt: bool = False) -> str:
        """The chat-template text; with ``generation_prompt`` it ends where the assistant's reply begins."""
        try:
            text = self.tokenizer.apply_chat_template(
                messages, chat_template=self.chat_template, tokenize=False, add_generation_prompt=generation_prompt
            )
        except Exception as exc:  # jinja raises its own error types, templates raise their own exceptions
            raise ModelSpecError(f"chat template ({self.chat_template_source}) failed to render: {exc}") from exc
        return str(text)

    def ids(self, text: str, *, continuation: bool = False) -> list[int]:
        """Token ids of ``text``, untruncated. A full rendering gets BOS unless it already starts with one (a
        template that writes BOS itself gets no second one); a ``continuation`` of an earlier text gets no
        special tokens at all."""
        bos = self.tokenizer.bos_token
        add_special = not continuation and not (bos and text.startswith(bos))
        return list(self.tokenizer(text, add_special_tokens=add_special)["input_ids"])

    def truncate(self, ids: list[int]) -> tuple[list[int], bool]:
        """``ids`` cut to the spec's max length on its truncation side (framing special tokens kept)."""
        return truncate_ids(ids, self.spec.max_length, self.spec.truncation_side, self.special_ids)

    def tokenize(self, text: str) -> tuple[list[int], bool]:
        """Token ids of a rendered text, truncated, and whether they were."""
        return self.truncate(self.ids(text))

    def encode(self, requests: Sequence[ScoreRequest]) -> list[Encoded]:
        """Each request's whole conversation rendered and tokenized; the payload is its id list."""
        encoded = []
        for request in requests:
            ids, truncated = self.tokenize(self.render(request.messages()))
            encoded.append(Encoded(request=request, n_tokens=len(ids), truncated=truncated, payload=ids))
        return encoded

    def decode(self, ids: Any) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))

    def same_vocabulary(self, other: ChatEncoder) -> bool:
        return bool(self.tokenizer.get_vocab() == other.tokenizer.get_vocab())


class StepEncoder(ChatEncoder):
    """Process RMs: the response rebuilt from its steps as ``step + tag`` joined by ``spec.step_separator``; the
    payload is ``(ids, positions)``, one position per step (None where truncation cut the step's tag away)."""

    def __init__(self, spec: ModelSpec, model: str | None = None, revision: str | None = None):
        if not spec.step_tag:
            raise ModelSpecError(f"engine '{spec.engine}' needs a step tag for a process RM: pass --step-tag TOKEN")
        super().__init__(spec, model, revision)
        self.step_tag: str = spec.step_tag
        self.tag_id = self._single_token_id(self.step_tag)

    def _single_token_id(self, tag: str) -> int:
        vocab_id = self.tokenizer.get_vocab().get(tag)
        if vocab_id is not None:
            return int(vocab_id)
        ids = self.tokenizer(tag, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ModelSpecError(f"step tag {tag!r} must be one token of the model's tokenizer; it is {len(ids)}")
        return int(ids[0])

    def encode(self, requests: Sequence[ScoreRequest]) -> list[Encoded]:
        encoded = []
        for request in requests:
            steps = request.steps or (request.response,)
            content = self.spec.step_separator.join(step + self.step_tag for step in steps)
            messages = [{"role": role, "content": text} for role, text in request.prompt]
            ids, truncated = self.tokenize(self.render([*messages, {"role": "assistant", "content": content}]))
            # The last len(steps) tags are the steps' own: a tag in the prompt comes before them.
            tags = [i for i, token in enumerate(ids) if token == self.tag_id][-len(steps) :]
            positions = [None] * (len(steps) - len(tags)) + tags
            encoded.append(Encoded(request=request, n_tokens=len(ids), truncated=truncated, payload=(ids, positions)))
        return encoded
