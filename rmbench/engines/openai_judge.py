"""Engine ``openai-judge``: an LLM judge behind an OpenAI-compatible chat-completions API.

The judge engine (``rmbench.engines.judge``) renders the template's prompts, parses verdicts and counts what it could
not read; this module is only its backend: ``POST {url}/chat/completions`` with temperature 0 and the spec's seed
(pairwise protocols already ask both orders). ``--model`` is the API's base URL (``https://api.openai.com/v1``, a
``vllm serve`` at ``http://HOST:PORT/v1``); ``server.served_model`` the model name, checked against ``GET {url}/models``
when the API lists models; the key comes from the environment variable ``server.api_key_env``. Token usage from the
replies (and a cost, given prices per million tokens) goes to run.json.

Prompt lengths are counted by ``server.tokenizer`` when one is named, else estimated at four characters a token
(they size the scheduler's batches and the ``max_length`` check only; the API counts what it bills).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rmbench.engines.http_client import EndpointError, JSONClient
from rmbench.engines.judge import PARSER_VERSION, JudgeEngine, spec_template
from rmbench.engines.served import endpoint_url, server_options
from rmbench.errors import ModelSpecError
from rmbench.judges.templates import JudgeTemplate
from rmbench.modelspec import ModelSpec, engine_fingerprint, model_identity

#: Estimated characters per token when no tokenizer is named.
CHARS_PER_TOKEN = 4


class OpenAIGenerator:
    """A ``TextGenerator`` that asks a chat-completions API, ``concurrency`` calls at a time."""

    @classmethod
    def default_batch_tokens_of(cls, spec: ModelSpec) -> int:
        options = server_options(spec)
        return options.batch_size * options.concurrency * 4096

    def __init__(self, spec: ModelSpec):
        options = server_options(spec)
        if not options.served_model:
            raise ModelSpecError("engine 'openai-judge' needs the model's name: --served-model NAME")
        self.spec, self.options, self.served_model = spec, options, options.served_model
        self.url = endpoint_url(spec)
        self.default_batch_tokens = self.default_batch_tokens_of(spec)
        self.tokenizer: Any = None
        if options.tokenizer:
            from rmbench.engines.encoding import load_tokenizer

            self.tokenizer = load_tokenizer(spec, options.tokenizer)
        self.client = JSONClient(options)
        self.server_reported = self._check_identity()

    def _check_identity(self) -> dict[str, Any]:
        try:
            listing = self.client.get(f"{self.url}/models")
        except EndpointError as exc:  # not every compatible API lists models
            return {"models_list": f"unavailable ({exc})"}
        cards = listing.get("data", []) if isinstance(listing, dict) else []
        ids = sorted(str(card.get("id")) for card in cards if isinstance(card, dict))
        if ids and self.served_model not in ids:
            raise ModelSpecError(
                f"{self.url} does not serve '{self.served_model}' (it lists: {', '.join(ids[:20])}); refusing a mismatch"
            )
        return {"models_list": "checked", "id": self.served_model}

    def prepare(self, messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], int]:
        if self.tokenizer is not None:
            ids = self.tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
            return messages, len(ids["input_ids"] if isinstance(ids, dict) else ids)
        return messages, math.ceil(sum(len(m["content"]) for m in messages) / CHARS_PER_TOKEN)

    def generate(self, inputs: Sequence[list[dict[str, str]]], max_new_tokens: int) -> list[str]:
        def ask(messages: list[dict[str, str]]) -> str:
            body = {
                "model": self.served_model,
                "messages": messages,
                "max_tokens": max_new_tokens,
                "temperature": 0.0,
                "seed": self.spec.seed,
            }
            reply = self.client.post(f"{self.url}/chat/completions", body)
            try:
                return str(reply["choices"][0]["message"]["content"] or "")
            except (KeyError, IndexError, TypeError):
                raise EndpointError(
                    f"POST {self.url}/chat/completions: no choices[0].message.content in {str(reply)[:200]}"
                ) from None

        return self.client.map(ask, list(inputs))

    def usage(self) -> dict[str, Any]:
        return self.client.usage.record(self.options)

    def close(self) -> None:
        self.client.close()

    def info(self) -> dict[str, Any]:
        return {
            "backend": "openai-compatible",
            "decoding": "temperature 0, seeded",
            "served_model": self.served_model,
            "revision": self.spec.revision,
            "server_reported": self.server_reported,
            "tokenizer": self.options.tokenizer,
        }


class OpenAIJudgeEngine(JudgeEngine):
    """Engine ``openai-judge``."""

    generator_class = OpenAIGenerator  # type: ignore[assignment]

    @classmethod
    def _fingerprint(cls, spec: ModelSpec, template: JudgeTemplate, backend: Any, max_length: int | None) -> str:
        """The served model and revision (not the URL), the judge template, the parser and the seed (the server
        holds the model: no limit of the model's own is read here)."""
        options = server_options(spec)
        return engine_fingerprint(
            spec,
            cls.score_fields,
            with_model=False,
            endpoint={"served_model": options.served_model, "revision": spec.revision},
            tokenizer=model_identity(options.tokenizer, None) if options.tokenizer else None,
            judge_template=template.digest,
            parser=PARSER_VERSION,
        )

    def __init__(self, spec: ModelSpec):
        template = spec_template(spec)
        super().__init__(spec, OpenAIGenerator(spec), template)

    def usage(self) -> dict[str, Any]:
        return self.generator.usage()  # type: ignore[attr-defined]
