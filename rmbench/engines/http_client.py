"""The HTTP client of the served engines: batched JSON calls with bounded concurrency, timeouts and retries.

A scheduler batch is split into calls of ``batch_size`` requests and at most ``concurrency`` calls are in flight, so
a server's own batch stays full without a queue of thousands of requests building up in front of it. A call is
retried with exponential backoff and full jitter on 429, 5xx, timeouts and dropped connections (a Retry-After
header is honoured); any other 4xx, and a reply whose JSON is malformed, fails at once. After the last retry the
error names the endpoint and the last status. Nothing partial comes back: a batch either has every score or raises,
so the scheduler caches only whole, checked batches.

The API key is read from the environment variable the spec names, sent as a Bearer header and never written
anywhere else (messages, logs and records show the variable's name, not its value).
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from rmbench.errors import ModelSpecError, RmbenchError
from rmbench.modelspec import ServerOptions

log = logging.getLogger(__name__)

T = TypeVar("T")
#: Statuses worth another try: rate limiting and server-side failures.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class EndpointError(RmbenchError):
    """A served endpoint failed for good (after retries, or with a status that retrying cannot fix)."""


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass
class Usage:
    """Calls, retries and token counts as the API reported them (``usage`` fields), for run.json."""

    calls: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        with self._lock:
            self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.completion_tokens += int(usage.get("completion_tokens") or 0)

    def record(self, options: ServerOptions) -> dict[str, Any]:
        record: dict[str, Any] = {
            "calls": self.calls,
            "retries": self.retries,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }
        prices = (options.input_cost_per_mtok, options.output_cost_per_mtok)
        if any(price is not None for price in prices):
            cost = (self.prompt_tokens * (prices[0] or 0.0) + self.completion_tokens * (prices[1] or 0.0)) / 1e6
            record["cost"] = round(cost, 6)
        return record


def api_key(options: ServerOptions) -> str | None:
    """The key from ``options.api_key_env`` (None when no variable is named); an unset variable is an error."""
    if options.api_key_env is None:
        return None
    value = os.environ.get(options.api_key_env)
    if not value:
        raise ModelSpecError(f"server.api_key_env names ${options.api_key_env}, which is not set")
    return value


def retry_after_seconds(header: str | None) -> float | None:
    """A Retry-After header in seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class JSONClient:
    """Posts JSON to one service with retries; ``map`` runs many calls with bounded concurrency."""

    def __init__(self, options: ServerOptions, *, sleep: Callable[[float], None] = time.sleep):
        self.options = options
        self.usage = Usage()
        self._sleep = sleep
        self._random = random.Random()
        headers = {"Content-Type": "application/json"}
        key = api_key(options)
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        limits = httpx.Limits(max_connections=options.concurrency, max_keepalive_connections=options.concurrency)
        self._http = httpx.Client(headers=headers, timeout=options.timeout_s, limits=limits)
        self._pool = ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="rmbench-http")

    def get(self, url: str) -> Any:
        """GET ``url`` as JSON (with the same retries)."""
        return self._call("GET", url, None)

    def post(self, url: str, body: Any) -> Any:
        return self._call("POST", url, body)

    def map(self, call: Callable[[T], Any], items: Sequence[T]) -> list[Any]:
        """``call`` on every item, ``concurrency`` at a time; results in order, the first failure raised."""
        futures = [self._pool.submit(call, item) for item in items]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise

    def _call(self, method: str, url: str, body: Any) -> Any:
        attempts = self.options.max_retries + 1
        for attempt in range(attempts):
            try:
                return self._once(method, url, body)
            except _Retryable as failure:
                if attempt + 1 == attempts:
                    raise EndpointError(
                        f"{method} {url} failed after {attempts} attempt(s): {failure}"
                    ) from None
                delay = self._delay(attempt, failure.retry_after)
                with self.usage._lock:
                    self.usage.retries += 1
                log.warning("%s %s: %s; retry %d/%d in %.2fs", method, url, failure, attempt + 1, attempts - 1, delay)
                self._sleep(delay)
        raise AssertionError("unreachable")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Full jitter over an exponential ceiling; a server's Retry-After is a floor (capped by max_backoff_s
        only when the server asks for more than that, so one bad header cannot stall a run for hours)."""
        ceiling = min(self.options.max_backoff_s, self.options.backoff_s * 2**attempt)
        delay = self._random.uniform(0.0, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, max(self.options.max_backoff_s, ceiling)))
        return delay

    def _once(self, method: str, url: str, body: Any) -> Any:
        try:
            response = self._http.request(method, url, json=body)
        except httpx.TimeoutException as exc:
            raise _Retryable(f"no reply within {self.options.timeout_s}s ({type(exc).__name__})") from None
        except httpx.TransportError as exc:  # refused, reset or dropped connections, truncated replies
            raise _Retryable(f"connection failed ({type(exc).__name__}: {exc})") from None
        with self.usage._lock:
            self.usage.calls += 1
        status = response.status_code
        if status in RETRY_STATUSES or status >= 500:
            raise _Retryable(f"HTTP {status}", retry_after_seconds(response.headers.get("Retry-After")))
        if status >= 400:
            raise EndpointError(f"{method} {url}: HTTP {status} (not retried): {response.text[:300]}")
        try:
            data = response.json()
        except ValueError:
            raise EndpointError(f"{method} {url}: the reply is not JSON: {response.text[:200]!r}") from None
        if isinstance(data, dict):
            self.usage.add(data.get("usage"))
        return data

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.close()
