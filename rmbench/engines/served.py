"""What the served engines share: the endpoint's identity and cache key, the chat rendering, and the scalar reading.

A URL is not an identity: the same model moves between hosts, and one host serves another model tomorrow. The cache
key of a served engine is the served model's name and revision (``server.served_model``, ``revision``), the
tokenizer whose template renders requests, the chat template override and the request shape; only an endpoint that
names no model is keyed by its URL. What the server itself reports (its models list) is checked at start and
recorded in ``info``.

Rendering is client-side by default, with the very encoder the hf engine uses when ``server.tokenizer`` names one
(so the text or ids are the ones a local hf run would score); without a tokenizer, a chat template (the spec's, else
the built-in ``plain``) is rendered with Jinja alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

from rmbench.engines.base import Encoded, SpecFingerprint
from rmbench.engines.encoding import ChatEncoder, chat_template_key, resolve_chat_template
from rmbench.engines.http_client import EndpointError, JSONClient
from rmbench.errors import ModelSpecError
from rmbench.modelspec import ModelSpec, ServerOptions, engine_fingerprint, model_identity
from rmbench.requests import ScoreRequest

#: Requests per scheduler batch when requests carry no token count (no tokenizer): each counts as one token, so a
#: batch is this many requests, which the client sends as calls of ``batch_size``, ``concurrency`` at a time.
UNCOUNTED_BATCH = 256
#: Padded-token budget of a scheduler batch for tokenized requests; one batch is cached as a whole.
COUNTED_BATCH_TOKENS = 65536


def server_options(spec: ModelSpec) -> ServerOptions:
    return spec.server or ServerOptions.model_validate({})


def endpoint_url(spec: ModelSpec) -> str:
    """The endpoint's URL from ``--model``. One with credentials in it is refused: the URL is recorded in results.json,
    so a secret belongs in the environment variable ``server.api_key_env`` names."""
    from urllib.parse import urlsplit

    if not spec.model.startswith(("http://", "https://")):
        raise ModelSpecError(f"engine '{spec.engine}' needs the endpoint's URL as --model (http://HOST:PORT/...)")
    if urlsplit(spec.model).password is not None:
        raise ModelSpecError(
            f"engine '{spec.engine}': the URL holds a password, which would be recorded with the results; "
            "put the key in an environment variable and name it with --api-key-env"
        )
    return spec.model.rstrip("/")


class TextRenderer:
    """A chat template rendered with Jinja alone (no tokenizer): the spec's override, else ``plain``."""

    def __init__(self, spec: ModelSpec):
        import jinja2.sandbox

        self.chat_template, self.chat_template_source = resolve_chat_template(spec.chat_template or "plain", None)
        environment = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        self._template = environment.from_string(self.chat_template)

    def render(self, messages: list[dict[str, str]], *, generation_prompt: bool = False) -> str:
        try:
            return str(self._template.render(messages=messages, add_generation_prompt=generation_prompt))
        except Exception as exc:  # a template raises its own errors
            raise ModelSpecError(f"chat template ({self.chat_template_source}) failed to render: {exc}") from exc


class ServedEngine(SpecFingerprint):
    """Base of the served scalar-reward engines: identity, fingerprint, client, and reading a reward list."""

    #: Spec fields that change a served score: the reading of the reply, and the client-side truncation.
    score_fields: ClassVar[tuple[str, ...]] = ("max_length", "truncation_side", "reward_index", "activation")
    encoder_class: ClassVar[type[ChatEncoder]] = ChatEncoder

    @classmethod
    def fingerprint_of(cls, spec: ModelSpec) -> str:
        options = server_options(spec)
        identity: dict[str, Any] = (
            {"served_model": options.served_model, "revision": spec.revision}
            if options.served_model
            else {"url": spec.model}
        )
        tokenizer = model_identity(options.tokenizer, None) if options.tokenizer else None
        return engine_fingerprint(
            spec,
            cls.score_fields,
            with_model=False,
            endpoint=identity,
            server=options.score_options(),
            tokenizer=tokenizer,
            chat_template=chat_template_key(spec),
        )

    @classmethod
    def default_batch_tokens_of(cls, spec: ModelSpec) -> int:
        return COUNTED_BATCH_TOKENS if server_options(spec).tokenizer else UNCOUNTED_BATCH

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.options = server_options(spec)
        self.url = endpoint_url(spec)
        self.default_batch_tokens = self.default_batch_tokens_of(spec)
        self.encoder: ChatEncoder | None = (
            self.encoder_class(spec, model=self.options.tokenizer) if self.options.tokenizer else None
        )
        self.renderer: ChatEncoder | TextRenderer = self.encoder or TextRenderer(spec)
        self.client = JSONClient(self.options)
        #: What the server reported about itself at start (recorded in ``info``).
        self.server_reported: dict[str, Any] = {}

    def calls(self, batch: Sequence[Encoded]) -> list[Sequence[Encoded]]:
        size = self.options.batch_size
        return [batch[i : i + size] for i in range(0, len(batch), size)]

    def count(self, text: str) -> tuple[int, bool]:
        """(tokens, over max_length) of a rendered text by the tokenizer; (1, False) without one."""
        if self.encoder is None:
            return 1, False
        n = len(self.encoder.ids(text))
        return n, n > self.spec.max_length

    def reward(self, raw: Any, where: str) -> float:
        """One reward from a reply: a number, or a list of label values read at ``reward_index``; the spec's
        activation applied. Anything else is a malformed reply (an error, never a cached NaN)."""
        if isinstance(raw, list):
            if self.spec.reward_index >= len(raw):
                raise EndpointError(f"{where}: reward has {len(raw)} values, reward_index is {self.spec.reward_index}")
            raw = raw[self.spec.reward_index]
        if raw is None:
            return math.nan
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise EndpointError(f"{where}: a reward is not a number: {raw!r}")
        return activate(float(raw), self.spec.activation)

    def check_length(self, rewards: Any, expected: int, where: str) -> list[Any]:
        if not isinstance(rewards, list) or len(rewards) != expected:
            got = f"{len(rewards)} rewards" if isinstance(rewards, list) else f"{type(rewards).__name__}"
            raise EndpointError(f"{where}: expected {expected} rewards for {expected} requests, got {got}")
        return rewards

    def messages(self, request: ScoreRequest) -> list[dict[str, str]]:
        return request.messages()

    def base_info(self) -> dict[str, Any]:
        """Static facts for results.json (never the URL's credentials or a key; usage goes to run.json)."""
        return {
            "engine": self.spec.engine,
            "backend": "http",
            "served_model": self.options.served_model,
            "revision": self.spec.revision,
            "server_reported": self.server_reported,
            "chat_template_source": self.renderer.chat_template_source,
            "tokenizer": self.options.tokenizer,
        }

    def usage(self) -> dict[str, Any]:
        """Calls, retries, tokens and cost of this process (run.json)."""
        return self.client.usage.record(self.options)

    def close(self) -> None:
        self.client.close()


def activate(value: float, activation: str) -> float:
    """``spec.activation`` on one raw value, non-finite results as NaN (as the hf engine does)."""
    try:
        if activation == "sigmoid":
            value = 1.0 / (1.0 + math.exp(-value))
        elif activation == "tanh":
            value = math.tanh(value)
        elif activation == "log_sigmoid":
            value = -math.log1p(math.exp(-value)) if value > -30 else value
    except OverflowError:
        value = 0.0 if activation == "sigmoid" else -math.inf
    return value if math.isfinite(value) else math.nan
