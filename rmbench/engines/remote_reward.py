"""Engine ``remote-reward``: a reward endpoint that takes full texts, as OpenRLHF's remote reward model does.

OpenRLHF (``openrlhf.cli.serve_rm``; ``--remote_rm_url`` in training) posts ``{"query": [texts], "prompts": [...]}``
and reads ``{"rewards": [...]}``: each query is the whole conversation rendered by the policy's chat template,
response included. That is ``server.request_format: openrlhf`` (the default). Any other endpoint is declared in the
spec (``request_format: json``): ``server.body`` is the request body, in which the strings ``"$queries"``,
``"$prompts"``, ``"$responses"`` and ``"$messages"`` stand for the batch's lists, and ``server.rewards_path`` the
dotted path to the rewards in the reply (``*`` maps over a list: ``data.*.score``).

The server truncates as the trainer's server does; with a tokenizer, rmbench counts tokens and flags requests over
``max_length`` as truncated, without cutting them (the endpoint's own truncation is what is being evaluated).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rmbench.engines.base import Encoded
from rmbench.engines.http_client import EndpointError
from rmbench.engines.served import ServedEngine
from rmbench.errors import ModelSpecError
from rmbench.modelspec import ModelSpec
from rmbench.requests import Score, ScoreRequest

PLACEHOLDERS = ("$queries", "$prompts", "$responses", "$messages")


def fill_body(template: Any, values: dict[str, Any]) -> Any:
    """``template`` with every string that is a placeholder replaced by its value (recursively)."""
    if isinstance(template, str) and template in values:
        return values[template]
    if isinstance(template, dict):
        return {key: fill_body(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [fill_body(value, values) for value in template]
    return template


def extract(data: Any, path: str, where: str) -> Any:
    """The value at a dotted ``path`` of a JSON reply; ``*`` maps the rest of the path over a list."""
    parts = [part for part in path.split(".") if part]
    for index, part in enumerate(parts):
        if part == "*":
            if not isinstance(data, list):
                raise EndpointError(f"{where}: rewards_path '{path}': expected a list at '*', got {type(data).__name__}")
            rest = ".".join(parts[index + 1 :])
            return [extract(item, rest, where) for item in data]
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            raise EndpointError(f"{where}: the reply has no '{part}' (rewards_path '{path}'): {str(data)[:200]}")
    return data


class RemoteRewardEngine(ServedEngine):
    """Texts in, one reward per text out, over HTTP."""

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        options = self.options
        if options.request_format == "json":
            if options.body is None:
                raise ModelSpecError("remote-reward with request_format json needs server.body (the request body)")
            if not _mentions_placeholder(options.body):
                raise ModelSpecError(f"server.body uses none of {', '.join(PLACEHOLDERS)}: no request would be sent")

    def encode(self, requests: Sequence[ScoreRequest]) -> list[Encoded]:
        encoded = []
        for request in requests:
            query = self.renderer.render(request.messages())
            n_tokens, over = self.count(query)
            prompt_messages = [{"role": role, "content": text} for role, text in request.prompt]
            prompt = self.renderer.render(prompt_messages, generation_prompt=True)
            payload = {"query": query, "prompt": prompt, "response": request.response, "messages": request.messages()}
            encoded.append(Encoded(request=request, n_tokens=n_tokens, truncated=over, payload=payload))
        return encoded

    def score(self, batch: Sequence[Encoded], *, hidden: bool = False) -> list[Score]:
        if hidden:
            raise ModelSpecError("engine 'remote-reward' returns rewards only, no hidden states: use --engine hf")
        rewards = [value for values in self.client.map(self._call, self.calls(batch)) for value in values]
        return [Score(value=v, n_tokens=e.n_tokens, truncated=e.truncated) for e, v in zip(batch, rewards)]

    def _call(self, part: Sequence[Encoded]) -> list[float]:
        payloads = [e.payload for e in part]
        if self.options.request_format == "openrlhf":
            body: Any = {"query": [p["query"] for p in payloads], "prompts": [p["prompt"] for p in payloads]}
            path = "rewards"
        else:
            values = {
                "$queries": [p["query"] for p in payloads],
                "$prompts": [p["prompt"] for p in payloads],
                "$responses": [p["response"] for p in payloads],
                "$messages": [p["messages"] for p in payloads],
            }
            body, path = fill_body(self.options.body, values), self.options.rewards_path
        where = f"POST {self.url}"
        reply = self.client.post(self.url, body)
        rewards = self.check_length(extract(reply, path, where), len(part), where)
        return [self.reward(raw, where) for raw in rewards]

    def info(self) -> dict[str, Any]:
        return self.base_info() | {"request_format": self.options.request_format}


def _mentions_placeholder(body: Any) -> bool:
    if isinstance(body, str):
        return body in PLACEHOLDERS
    if isinstance(body, dict):
        return any(_mentions_placeholder(v) for v in body.values())
    if isinstance(body, list):
        return any(_mentions_placeholder(v) for v in body)
    return False
