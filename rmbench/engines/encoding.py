"""The one encoder every model-reading engine uses: chat rendering, tokenizing, truncation and step tags.

hf, hf-prm, vllm, vllm-prm, dpo and the judges all turn a conversation into token ids here, so two engines given
the same spec see the very same ids (vLLM receives them as ``TokensPrompt``; parity is then a matter of kernels).
The chat template is the tokenizer's own, a built-in one by name (``plain``), a ``.jinja`` file or a Jinja string;
a rendering that already starts with BOS gets no second one; truncation cuts one side to the effective max length
(the smaller of the spec's ``max_length`` and the model's own limit) but keeps a framing special token at either end,
and is reported (``Encoded.truncated``) so it is counted, never silent. A message far longer than that limit is cut
at a word boundary before it is tokenized (a 10 MB response is never tokenized whole).

Only the tokenizer is loaded (no weights); transformers is imported when an encoder is built, torch never.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from rmbench.engines.base import Encoded
from rmbench.errors import ModelSpecError
from rmbench.modelspec import ModelSpec, stable_hash
from rmbench.requests import ScoreRequest

log = logging.getLogger(__name__)

#: A tokenizer ``model_max_length`` at or above this is transformers' "no limit" placeholder, not a model's limit.
NO_TOKENIZER_LIMIT = 1 << 24
#: Config attributes that bound a model's input length (GPT-2 style configs call it ``n_positions``): the keys vLLM
#: derives its max_model_len from, the smallest present one winning, as there.
POSITION_KEYS = (
    "max_position_embeddings",
    "n_positions",
    "max_seq_len",
    "seq_length",
    "model_max_length",
    "max_sequence_length",
    "max_seq_length",
    "seq_len",
)
#: Characters per kept token of a message tokenized at most: far above an ordinary token's length.
CHARS_PER_TOKEN = 16
#: Tokens a cut message must hold beyond the limit, so that its cut edge is never among the kept tokens.
CUT_MARGIN = 16

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


def position_limit(config: Any) -> tuple[int, str] | None:
    """(tokens, attribute): the smallest input bound the config names (of a multimodal model, its text config's);
    None when it names none. RoBERTa-style encoders count positions from ``pad_token_id + 1``, so that many fewer
    are usable."""
    for source in (getattr(config, "text_config", None), config):
        found = [
            (value, key)
            for key in POSITION_KEYS
            if isinstance(value := getattr(source, key, None), int) and not isinstance(value, bool) and value > 0
        ]
        if source is None or not found:
            continue
        value, key = min(found, key=lambda pair: pair[0])  # ties: the first key named
        model_type = str(getattr(source, "model_type", "") or "")
        if "roberta" in model_type or model_type in ("camembert", "longformer"):
            value -= int(getattr(source, "pad_token_id", None) or 1) + 1
        return value, key
    return None


def tokenizer_limit(tokenizer: Any) -> int | None:
    """The tokenizer's ``model_max_length`` when it is a real limit (not transformers' huge "unset" value)."""
    value = getattr(tokenizer, "model_max_length", None)
    return value if isinstance(value, int) and 0 < value < NO_TOKENIZER_LIMIT else None


def model_limits(name: str, tokenizer: Any, revision: str | None, trust_remote_code: bool) -> dict[str, int]:
    """The model's own input limits by source (``config.n_positions``, ``tokenizer.model_max_length``); only the
    config is read (no weights), and a model without a readable config simply has no config limit."""
    limits = _config_limits(name, revision, trust_remote_code)
    tokens = tokenizer_limit(tokenizer)
    if tokens is not None:
        limits["tokenizer.model_max_length"] = tokens
    return limits


def _config_limits(name: str, revision: str | None, trust_remote_code: bool, *, local_only: bool = False) -> dict[str, int]:
    import transformers

    try:
        config = transformers.AutoConfig.from_pretrained(
            name, revision=revision, trust_remote_code=trust_remote_code, local_files_only=local_only
        )
    except Exception:  # a tokenizer-only directory, an unknown architecture: the tokenizer's limit still applies
        return {}
    found = position_limit(config)
    return {f"config.{found[1]}": found[0]} if found is not None else {}


def declared_limits(name: str, revision: str | None, trust_remote_code: bool) -> dict[str, int] | None:
    """``model_limits`` without loading a tokenizer or any weights, for a fingerprint: the config as AutoConfig reads
    it from local files only (so with the same defaults as a loaded model's) and ``model_max_length`` from
    tokenizer_config.json (where a loaded tokenizer takes it from), in a local directory or, for a hub id, the hub
    cache (never the network). None when neither file is at hand (a hub model not downloaded yet): the limit is
    then unknown until the engine loads, which checks it (``rmbench.executors.lazy``)."""
    local = Path(name)
    if local.is_dir():
        config_file: Path | None = local / "config.json"
        tokenizer_file: Path | None = local / "tokenizer_config.json"
    else:
        config_file, tokenizer_file = _hub_cached(name, "config.json", revision), _hub_cached(
            name, "tokenizer_config.json", revision
        )
    config_file = config_file if config_file is not None and config_file.is_file() else None
    tokenizer_file = tokenizer_file if tokenizer_file is not None and tokenizer_file.is_file() else None
    if config_file is None and tokenizer_file is None:
        return None
    limits = _declared_config_limits(config_file, name, revision, trust_remote_code) if config_file else {}
    if tokenizer_file is not None:
        declared = (_read_json_object(tokenizer_file) or {}).get("model_max_length")
        tokens = tokenizer_limit(SimpleNamespace(model_max_length=declared))
        if tokens is not None:
            limits["tokenizer.model_max_length"] = tokens
    return limits


def _declared_config_limits(
    config_file: Path, name: str, revision: str | None, trust_remote_code: bool
) -> dict[str, int]:
    """The config's position limit as ``_config_limits`` finds it. Read from config.json itself where that settles it
    (a built-in architecture whose file names a position key: ``save_pretrained`` writes every architecture-specific
    attribute, so the file holds what AutoConfig would), because importing transformers (and torch) for AutoConfig
    would more than double the time of a fully cached re-run; AutoConfig otherwise (remote code, a file naming no
    position key, whose class defaults then apply)."""
    config = _read_json_object(config_file)
    if config is not None and not trust_remote_code:
        text = config.get("text_config")
        text_keys: dict[str, Any] = text if isinstance(text, dict) else {}
        source = SimpleNamespace(**text_keys) if isinstance(text, dict) else None
        found = position_limit(SimpleNamespace(**{**config, "text_config": source}))
        # A text config naming no position key gets its class's default: only AutoConfig knows it.
        if found is not None and (source is None or any(key in text_keys for key in POSITION_KEYS)):
            return {f"config.{found[1]}": found[0]}
    return _config_limits(name, revision, trust_remote_code, local_only=True)


def _read_json_object(file: Path) -> dict[str, Any] | None:
    """A JSON file's top-level object, or None when it is unreadable or not an object."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _hub_cached(repo_id: str, filename: str, revision: str | None) -> Path | None:
    """A file of a hub model as the local hub cache holds it, or None (not cached, or not a hub id)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, filename, revision=revision)
    except Exception:  # not a valid repo id (a local path that does not exist): nothing cached
        return None
    return Path(found) if isinstance(found, str) else None


def declared_max_length(spec: ModelSpec, model: str | None = None, revision: str | None = None) -> int | None:
    """The effective max length an engine of ``spec`` will cut to (of ``model`` at ``revision`` when given: a DPO
    reference), read without loading; None when the model's limits are not at hand yet."""
    name = model or spec.model
    if not name:
        return spec.max_length
    limits = declared_limits(name, revision if model else spec.revision, spec.trust_remote_code)
    return None if limits is None else effective_max_length(spec.max_length, limits)


def binding_limit(spec: ModelSpec, max_length: int | None) -> dict[str, int]:
    """The fingerprint entry of the effective max length: present only where it binds (below the spec's), so a
    model whose own limit does not bind keeps the key it always had, and one whose limit does never shares scores
    cut at the spec's length (what rmbench cut to before it read model limits)."""
    return {"effective_max_length": max_length} if max_length is not None and max_length < spec.max_length else {}


def effective_max_length(spec_max: int, limits: dict[str, int]) -> int:
    """The smaller of the spec's max length and every limit of the model's own."""
    return min([spec_max, *limits.values()])


def limit_notice(model: str, spec_max: int, limits: dict[str, int]) -> str | None:
    """What to say when the spec asks for more tokens than the model allows; None when it does not."""
    effective = effective_max_length(spec_max, limits)
    if effective >= spec_max:
        return None
    source = min(limits, key=lambda key: limits[key])
    return (
        f"notice: max_length {spec_max} is more than model '{model}' allows ({source} = {effective}); "
        f"inputs are cut to {effective} tokens (counted as truncated; results.json records it in model.engine)"
    )


def cut_text(text: str, chars: int, side: str) -> str | None:
    """The first (``side`` right) or last ``chars`` characters of ``text`` cut back to a whitespace, so no word is
    split; None when the text is short enough to keep whole or the window holds no whitespace."""
    if len(text) <= chars:
        return None
    if side == "left":
        window = text[-chars:]
        cut = next((i for i, c in enumerate(window) if c.isspace()), None)
        return None if cut is None else window[cut:]
    window = text[:chars]
    cut = next((i for i in range(len(window) - 1, -1, -1) if window[i].isspace()), None)
    return None if cut is None else window[:cut]


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
        #: The model's own limits by source, and the effective max length (the spec's, or less where the model
        #: allows less): what truncation cuts to and what vLLM is given as ``max_model_len``.
        self.model_limits = model_limits(
            str(self.name), self.tokenizer, revision if model else spec.revision, spec.trust_remote_code
        )
        self.max_length = effective_max_length(spec.max_length, self.model_limits)
        notice = limit_notice(str(self.name), spec.max_length, self.model_limits)
        if notice is not None:
            log.warning(notice)
        self.tokenizer.model_max_length = 1 << 30  # truncation is ours (and counted); silence the length warning

    def limits_info(self) -> dict[str, Any]:
        """For an engine's ``info()``: the effective max length and the model limits it was taken from."""
        return {"max_length": self.max_length, "model_limits": dict(self.model_limits)}

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
        """``ids`` cut to the effective max length on the spec's truncation side (framing special tokens kept)."""
        return truncate_ids(ids, self.max_length, self.spec.truncation_side, self.special_ids)

    def tokenize(self, text: str) -> tuple[list[int], bool]:
        """Token ids of a rendered text, truncated, and whether they were."""
        return self.truncate(self.ids(text))

    def bounded(self, messages: list[dict[str, str]]) -> list[dict[str, str]]:
        """``messages`` with any content far longer than the limit cut, at a word boundary, on the side truncation
        drops, before anything tokenizes it. The ids come out as from the whole text: a content is only cut when
        its kept part alone still holds more than the limit (plus a margin) in tokens, so the cut edge lies among
        tokens truncation drops anyway; otherwise (long tokens, no whitespace) it is tokenized whole."""
        chars = self.max_length * CHARS_PER_TOKEN
        out = []
        for message in messages:
            window = cut_text(message["content"], chars, self.spec.truncation_side)
            if window is not None and len(self.ids(window, continuation=True)) > self.max_length + CUT_MARGIN:
                message = {**message, "content": window}
            out.append(message)
        return out

    def encode(self, requests: Sequence[ScoreRequest]) -> list[Encoded]:
        """Each request's whole conversation rendered and tokenized; the payload is its id list."""
        encoded = []
        for request in requests:
            ids, truncated = self.tokenize(self.render(self.bounded(request.messages())))
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
