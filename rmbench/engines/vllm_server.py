"""Engine ``vllm-server``: a classifier reward model served by ``vllm serve`` (its ``/classify`` endpoint).

``--model`` is the server's base URL (``http://HOST:PORT``); ``server.served_model`` the name it serves, which must
be in the server's ``/v1/models`` list (a mismatch is refused before anything is scored). With ``server.template:
client`` (the default) requests are rendered, tokenized and truncated by the hf engine's encoder (the tokenizer of
``server.tokenizer``) and sent as token ids, so the server scores exactly the ids a local hf run scores and
``rmbench check-engine --engine vllm-server`` can compare the two; with ``template: server`` chat messages are sent
and the server applies its own chat template and truncation, as a trainer calling it would.

Raw logits are asked for (``use_activation: false``) and the spec's activation is applied here, as in the hf engine.

Process RMs (``vllm-server-prm``, chosen by ``--step-tag``): a token classifier served with ``vllm serve --runner
pooling`` answers ``POST /pooling`` with ``task: token_classify`` by one row of label logits per prompt token; the
steps are encoded client-side by the hf engine's ``StepEncoder`` and read at their tags' positions, as hf-prm does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

from rmbench.engines.base import Encoded
from rmbench.engines.encoding import ChatEncoder, StepEncoder
from rmbench.engines.http_client import EndpointError
from rmbench.engines.served import ServedEngine
from rmbench.errors import ModelSpecError
from rmbench.modelspec import ModelSpec
from rmbench.requests import Score, ScoreRequest


class VLLMServerEngine(ServedEngine):
    """One reward per request from ``POST {url}/classify``."""

    #: Per-step scores from a token classifier (``VLLMServerProcessEngine``).
    process: ClassVar[bool] = False

    def __init__(self, spec: ModelSpec):
        options = spec.server
        if options is None or not options.served_model:
            raise ModelSpecError(
                "engine 'vllm-server' needs the served model's name: --served-model NAME (vllm serve's "
                "--served-model-name, else the model path it was started with)"
            )
        if options.template == "client" and not options.tokenizer:
            raise ModelSpecError(
                "engine 'vllm-server' renders requests client-side: pass --tokenizer PATH_OR_HUB_ID (the served "
                "model's tokenizer), or set server.template: server to let the server apply its chat template"
            )
        if spec.step_tag is not None and not self.process:
            raise ModelSpecError("engine 'vllm-server' reads one score per request; a step tag needs 'vllm-server-prm'")
        if self.process and options.template != "client":
            raise ModelSpecError("engine 'vllm-server-prm' reads step tags at token positions: server.template: client")
        super().__init__(spec)
        self.served_model: str = options.served_model
        self.server_reported = self._check_identity()

    def _check_identity(self) -> dict[str, Any]:
        """The server's card for the served model; a server that does not serve it is refused."""
        listing = self.client.get(f"{self.url}/v1/models")
        cards = listing.get("data", []) if isinstance(listing, dict) else []
        served = {str(card.get("id")): card for card in cards if isinstance(card, dict)}
        if self.served_model not in served:
            raise ModelSpecError(
                f"{self.url} does not serve '{self.served_model}' (it serves: {', '.join(sorted(served)) or 'nothing'}); "
                "refusing to score another model under this name"
            )
        card = served[self.served_model]
        return {"id": self.served_model, "root": card.get("root"), "max_model_len": card.get("max_model_len")}

    def encode(self, requests: Sequence[ScoreRequest]) -> list[Encoded]:
        if self.options.template == "client":
            assert self.encoder is not None
            return self.encoder.encode(requests)
        encoded = []
        for request in requests:  # the server renders and truncates; a tokenizer, if named, counts tokens
            n_tokens, over = self.count(self.renderer.render(request.messages()))
            encoded.append(Encoded(request=request, n_tokens=n_tokens, truncated=over, payload=request.messages()))
        return encoded

    def score(self, batch: Sequence[Encoded], *, hidden: bool = False) -> list[Score]:
        if hidden:
            raise ModelSpecError("engine 'vllm-server' returns rewards only, no hidden states: use --engine hf")
        runnable = [e for e in batch if e.n_tokens]  # vLLM refuses empty prompts; hf scores them NaN too
        if self.options.template == "client":
            parts: list[Sequence[Encoded]] = self.calls(runnable)
        else:
            parts = [[e] for e in runnable]  # the chat API takes one conversation per call
        values = iter(v for values in self.client.map(self._call, parts) for v in values)
        rewards = [next(values) if e.n_tokens else float("nan") for e in batch]
        return [Score(value=v, n_tokens=e.n_tokens, truncated=e.truncated) for e, v in zip(batch, rewards)]

    def _call(self, part: Sequence[Encoded]) -> list[float]:
        body: dict[str, Any] = {"model": self.served_model, "use_activation": False}
        if self.options.template == "client":
            body["input"] = [list(e.payload) for e in part]
            body["add_special_tokens"] = False  # the ids already hold what the template and tokenizer put there
        else:
            body["messages"] = part[0].payload
            body["truncate_prompt_tokens"] = self.spec.max_length
            body["truncation_side"] = self.spec.truncation_side
        where = f"POST {self.url}/classify"
        reply = self.client.post(f"{self.url}/classify", body)
        data = reply.get("data") if isinstance(reply, dict) else None
        rows = self.check_length(data, len(part), where)
        try:
            ordered = sorted(rows, key=lambda row: int(row["index"]))
            return [self.reward(row["probs"], where) for row in ordered]
        except (KeyError, TypeError, ValueError) as exc:
            raise EndpointError(f"{where}: malformed classification data ({exc!r}): {str(rows)[:200]}") from None

    def info(self) -> dict[str, Any]:
        return self.base_info() | {"api": "classify", "template": self.options.template}


class VLLMServerProcessEngine(VLLMServerEngine):
    """Per-step scores from ``POST {url}/pooling`` (``token_classify``); ``Score.value`` is the last step's."""

    process = True
    encoder_class: ClassVar[type[ChatEncoder]] = StepEncoder
    score_fields = (*VLLMServerEngine.score_fields, "step_tag", "step_separator")

    def score(self, batch: Sequence[Encoded], *, hidden: bool = False) -> list[Score]:
        from rmbench.engines.hf_prm import step_score

        if hidden:
            raise ModelSpecError("engine 'vllm-server-prm' returns rewards only, no hidden states: use --engine hf-prm")
        runnable = [e for e in batch if e.n_tokens]
        rows = iter(row for rows in self.client.map(self._pool, self.calls(runnable)) for row in rows)
        scores = []
        for encoded in batch:
            positions: list[int | None] = encoded.payload[1]
            token_rows = next(rows) if encoded.n_tokens else []
            steps = tuple(math.nan if p is None else self._step(token_rows, p) for p in positions)
            scores.append(step_score(steps, encoded))
        return scores

    def _step(self, token_rows: list[Any], position: int) -> float:
        where = f"POST {self.url}/pooling"
        if position >= len(token_rows):
            raise EndpointError(f"{where}: {len(token_rows)} token rows, a step tag at position {position}")
        return self.reward(token_rows[position], where)

    def _pool(self, part: Sequence[Encoded]) -> list[list[Any]]:
        body = {
            "model": self.served_model,
            "input": [list(e.payload[0]) for e in part],
            "task": "token_classify",
            "use_activation": False,
            "add_special_tokens": False,
        }
        where = f"POST {self.url}/pooling"
        reply = self.client.post(f"{self.url}/pooling", body)
        rows = self.check_length(reply.get("data") if isinstance(reply, dict) else None, len(part), where)
        try:
            ordered = sorted(rows, key=lambda row: int(row["index"]))
            data = [row["data"] for row in ordered]
        except (KeyError, TypeError, ValueError) as exc:
            raise EndpointError(f"{where}: malformed pooling data ({exc!r}): {str(rows)[:200]}") from None
        for tokens, encoded in zip(data, part):
            if not isinstance(tokens, list) or len(tokens) != len(encoded.payload[0]):
                raise EndpointError(f"{where}: expected one row per prompt token ({len(encoded.payload[0])})")
        return data

    def info(self) -> dict[str, Any]:
        return super().info() | {"api": "pooling", "pooling_task": "token_classify"}
