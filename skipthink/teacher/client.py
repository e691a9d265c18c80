"""Online teacher calls on `openai.AsyncOpenAI`: bounded concurrency, rate limits, retries.

Retries (429, 5xx, 408/409, timeouts, connection errors, empty text or broken JSON) back off
exponentially with jitter and honour Retry-After; a 429 pauses every worker. A 200 whose
choices can never be used (null content, choices of the wrong type, oversized text, NUL
bytes) is a failure at once, recorded with its class: at temperature 0 a retry returns the
same. Every attempt that reports usage is costed, retried or not. A run of identical
connection/401/403/404 failures stops the stage (the endpoint is wrong, not busy).

Responses are buffered and flushed to the RequestStore in small batches as they arrive, so a
kill loses at most the calls in flight plus one small buffer; a failed save keeps the rows
for the next flush, and cancellation (Ctrl-C, SIGTERM) flushes before it propagates. The
client's own retries are off (`max_retries=0`) so attempts are counted here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
from typing import Optional, Sequence

import openai

from skipthink.config import TeacherConfig
from skipthink.teacher.calls import Call
from skipthink.teacher.endpoint import redact_text
from skipthink.teacher.limits import RateLimiter
from skipthink.teacher.store import RequestStore
from skipthink.teacher.usage import Usage, call_cost

log = logging.getLogger(__name__)
RETRYABLE_STATUS = {408, 409, 429}
# No real completion is longer than this many characters per requested token.
MAX_CHARS_PER_TOKEN = 64
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


class MalformedResponse(Exception):
    """A 200 answer without usable choices that a retry may fix (empty text, broken JSON)."""

    def __init__(self, message: str, prompt_tokens: int = 0, completion_tokens: int = 0):
        super().__init__(message)
        self.usage = (prompt_tokens, completion_tokens)


class UnusableResponse(MalformedResponse):
    """A 200 answer whose choices can never be used; not retried. Subclasses name the fault."""


class NullContent(UnusableResponse):
    pass


class BadChoices(UnusableResponse):
    pass


class OversizedText(UnusableResponse):
    pass


class NulInText(UnusableResponse):
    pass


class EndpointUnusable(RuntimeError):
    """The endpoint answers every attempt with the same connection/401/403/404 error."""


def storable(text: Optional[str]) -> Optional[str]:
    """`text` with lone surrogates (valid JSON, invalid UTF-8) replaced, so it can be stored."""
    return _LONE_SURROGATE.sub("\ufffd", text) if text else text


def make_client(base_url: str, api_key: str, timeout_s: float) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=0)


def request_body(call: Call, cfg: TeacherConfig) -> dict:
    """Keyword arguments of the API call (also the body of a Batch API line)."""
    body = {"model": cfg.model, "n": call.n, "temperature": call.params["temperature"], "max_tokens": call.params["max_tokens"]}
    if call.params.get("stop"):
        body["stop"] = list(call.params["stop"])
    if cfg.endpoint == "chat":
        body["messages"] = [{"role": "user", "content": call.prompt}]
    else:
        body["prompt"] = call.prompt
    return body


def parse_choices(body: dict, endpoint: str, n: int, max_tokens: int) -> list[tuple[str, Optional[str]]]:
    """[(text, finish_reason)] by choice index from a response body (a dict)."""
    usage = usage_of(body)
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
        raise BadChoices(f"choices is {type(choices).__name__}, not a list of objects", *usage)
    choices = sorted(choices, key=lambda c: c.get("index") if isinstance(c.get("index"), int) else 0)
    if endpoint == "chat":
        texts = [(c.get("message") or {}).get("content") if isinstance(c.get("message"), dict) else None for c in choices]
    else:
        texts = [c.get("text") for c in choices]
    out = [(t, c.get("finish_reason") if isinstance(c.get("finish_reason"), str) else None) for t, c in zip(texts, choices)][:n]
    if len(out) < n:
        raise MalformedResponse(f"asked for {n} choices, got {len(out)}", *usage)
    limit = max_tokens * MAX_CHARS_PER_TOKEN
    for text, _ in out:
        if text is None:
            raise NullContent("completion text is null", *usage)
        if not isinstance(text, str):
            raise BadChoices(f"completion text is {type(text).__name__}, not a string", *usage)
        if len(text) > limit:
            raise OversizedText(f"completion of {len(text)} characters for max_tokens {max_tokens}", *usage)
        if "\x00" in text:
            raise NulInText("completion text holds NUL bytes", *usage)
        if not text.strip():
            raise MalformedResponse("empty completion text", *usage)
    return out


def usage_of(body: dict) -> tuple[int, int]:
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict):
        return 0, 0
    try:
        return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    except (TypeError, ValueError):
        return 0, 0


def response_rows(call: Call, choices: list[tuple[str, Optional[str]]], prompt_tokens: int, completion_tokens: int,
                  cost: float, *, cfg: TeacherConfig, teacher_fp: str, template_version: str,
                  latency_s: Optional[float], attempts: int, batch_id: Optional[str] = None) -> list[dict]:
    """One `teacher_requests` row per choice; the call's tokens and cost are split across them."""
    n = call.n
    rows = []
    for i, (text, finish) in enumerate(choices):
        rows.append({
            "key": call.keys[i], "teacher_fp": teacher_fp, "dataset": call.dataset, "sample_id": call.sample_id,
            "completion_index": call.completion_indices[i], "step": call.step, "endpoint": cfg.endpoint,
            "model": cfg.model, "template_version": template_version, "params": json.dumps(call.params, sort_keys=True),
            "prompt": storable(call.prompt), "response": storable(text), "finish_reason": storable(finish),
            "prompt_tokens": prompt_tokens // n + (prompt_tokens % n if i == 0 else 0),
            "completion_tokens": completion_tokens // n + (completion_tokens % n if i == 0 else 0),
            "cost_usd": cost / n, "latency_s": latency_s, "attempts": attempts, "batch_id": batch_id,
        })
    return rows


def failure_rows(call: Call, attempts: int, error: BaseException, teacher_fp: str, cost: float = 0.0,
                 secrets: Sequence[str] = ()) -> list[dict]:
    """One `teacher_failures` row per key; the message is redacted (URLs, the API key)."""
    message = storable(redact_text(str(error), secrets))[:2000]
    return [{
        "key": key, "teacher_fp": teacher_fp, "dataset": call.dataset, "sample_id": call.sample_id,
        "completion_index": ci, "step": call.step, "attempts": attempts,
        "error_class": type(error).__name__, "message": message, "cost_usd": cost / call.n,
    } for key, ci in zip(call.keys, call.completion_indices)]


def _retry_after_s(error: BaseException) -> Optional[float]:
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue  # an HTTP date: fall back to backoff
    return None


def _is_retryable(error: BaseException) -> bool:
    if isinstance(error, UnusableResponse):
        return False
    if isinstance(error, (openai.APITimeoutError, openai.APIConnectionError, MalformedResponse, openai.APIResponseValidationError, json.JSONDecodeError)):
        return True
    if isinstance(error, openai.APIStatusError):
        return error.status_code in RETRYABLE_STATUS or error.status_code >= 500
    return False


def endpoint_fault(error: BaseException) -> Optional[str]:
    """A name for errors that say the endpoint itself is wrong (refused, bad key, bad path), else None."""
    if isinstance(error, openai.APIConnectionError) and not isinstance(error, openai.APITimeoutError):
        return type(error).__name__
    if isinstance(error, openai.APIStatusError) and error.status_code in (401, 403, 404):
        return f"{type(error).__name__} (HTTP {error.status_code})"
    return None


class ResponseWriter:
    """Buffers rows and flushes them to the store off the event loop, in small batches.

    Rows leave the buffer only once saved: a save error keeps them for the next flush (the
    last flush raises), and a save cut short by cancellation is simply repeated (the store
    ignores keys it already holds), so no paid response is dropped on the way to the disk.
    """

    def __init__(self, store: RequestStore, flush_every: int, flush_interval_s: float):
        self.store = store
        self.flush_every = flush_every
        self.flush_interval_s = flush_interval_s
        self._rows: list[dict] = []
        self._last_flush = time.monotonic()
        self._lock = asyncio.Lock()
        self.saved = 0

    @property
    def pending(self) -> int:
        return len(self._rows)

    async def add(self, rows: Sequence[dict]) -> None:
        self._rows.extend(rows)
        if len(self._rows) >= self.flush_every or time.monotonic() - self._last_flush >= self.flush_interval_s:
            await self.flush(final=False)

    async def flush(self, final: bool = True) -> None:
        async with self._lock:
            self._last_flush = time.monotonic()
            rows = list(self._rows)
            if not rows:
                return
            try:
                await asyncio.to_thread(self.store.save_responses, rows)
            except Exception as e:
                if final:
                    raise
                log.warning("saving %d teacher responses failed (%s: %s); kept for the next flush", len(rows), type(e).__name__, e)
                return
            del self._rows[: len(rows)]  # rows added meanwhile stay queued
            self.saved += len(rows)

    def flush_now(self) -> None:
        """Synchronous last flush (on cancellation, when awaiting is no longer possible)."""
        rows = list(self._rows)
        if rows:
            self.store.save_responses(rows)
            self._rows.clear()
            self.saved += len(rows)


class OnlineRunner:
    """Sends calls with `max_concurrency` workers; stops early on budget, flushes on cancellation."""

    def __init__(self, cfg: TeacherConfig, client: openai.AsyncOpenAI, store: RequestStore, usage: Usage,
                 teacher_fp: str, template_version: str, rng: Optional[random.Random] = None):
        self.cfg = cfg
        self.client = client
        self.store = store
        self.usage = usage
        self.teacher_fp = teacher_fp
        self.template_version = template_version
        self.limiter = RateLimiter(cfg.requests_per_minute, cfg.tokens_per_minute)
        self.writer = ResponseWriter(store, cfg.flush_every, cfg.flush_interval_s)
        self.rng = rng or random.Random()
        self.stop_reason: Optional[str] = None
        self.secrets = (client.api_key,)
        self._streak: tuple[Optional[str], int] = (None, 0)  # (endpoint fault, attempts in a row)

    def over_budget(self) -> bool:
        return self.cfg.max_cost_usd is not None and self.usage.total_cost_usd >= self.cfg.max_cost_usd

    async def run(self, calls: Sequence[Call]) -> Optional[str]:
        """Send every call once (with retries); returns a stop reason or None when all were sent."""
        queue = iter(calls)
        workers = [asyncio.create_task(self._worker(queue)) for _ in range(min(self.cfg.max_concurrency, max(len(calls), 1)))]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            # A worker raised (EndpointUnusable) or the stage was cancelled (a signal): stop
            # sending, then save what already arrived before the error propagates.
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            self.writer.flush_now()
            raise
        await self.writer.flush()
        return self.stop_reason

    async def _worker(self, queue) -> None:
        for call in queue:
            if self.over_budget():
                self.stop_reason = "budget"
            if self.stop_reason:
                return
            await self._run_call(call)

    async def _send(self, call: Call) -> dict:
        body = request_body(call, self.cfg)
        if self.cfg.endpoint == "chat":
            response = await self.client.chat.completions.create(**body)
        else:
            response = await self.client.completions.create(**body)
        # warnings=False: a body of the wrong shape is parse_choices' to classify, not pydantic's to warn about.
        return response.model_dump(warnings=False) if hasattr(response, "model_dump") else json.loads(response)

    def _track_endpoint_fault(self, error: Optional[BaseException]) -> None:
        """Count identical endpoint faults in a row (any other outcome resets); raise after N."""
        fault = endpoint_fault(error) if error is not None else None
        name, count = self._streak
        self._streak = (fault, count + 1 if fault is not None and fault == name else int(fault is not None))
        if fault is not None and self._streak[1] >= self.cfg.max_identical_failures:
            raise EndpointUnusable(f"{self._streak[1]} attempts in a row failed with {fault}: "
                                   f"{redact_text(str(error), self.secrets)[:300]}")

    async def _run_call(self, call: Call) -> None:
        cfg = self.cfg
        estimate = len(call.prompt) // 4 + call.params["max_tokens"] * call.n
        attempts = 0
        spent = 0.0  # every attempt that reported usage is paid, even when its answer was unusable
        while True:
            attempts += 1
            await self.limiter.acquire(estimate)
            started = time.monotonic()
            try:
                body = await self._send(call)
                choices = parse_choices(body, cfg.endpoint, call.n, call.params["max_tokens"])
            except Exception as error:  # classified below; non-API errors are failures too
                if isinstance(error, MalformedResponse):
                    cost = call_cost(cfg.prices, cfg.model, *error.usage)
                    spent += cost
                    self.usage.add_spent(cost)
                self._track_endpoint_fault(error)
                if _is_retryable(error) and attempts <= cfg.max_retries and not self.over_budget():
                    delay = min(cfg.backoff_max_s, cfg.backoff_base_s * 2 ** (attempts - 1))
                    delay = delay / 2 + self.rng.uniform(0, delay / 2)
                    retry_after = _retry_after_s(error)
                    if retry_after is not None:
                        delay = min(max(delay, retry_after), cfg.backoff_max_s)
                    if isinstance(error, openai.RateLimitError):
                        self.limiter.pause(delay)
                    self.usage.retries += 1
                    await asyncio.sleep(delay)
                    continue
                rows = failure_rows(call, attempts, error, self.teacher_fp, spent, self.secrets)
                await asyncio.to_thread(self.store.save_failures, rows)
                self.usage.add_failure(call.n)
                return
            self._track_endpoint_fault(None)
            latency = time.monotonic() - started
            prompt_tokens, completion_tokens = usage_of(body)
            cost = call_cost(cfg.prices, cfg.model, prompt_tokens, completion_tokens)
            rows = response_rows(call, choices, prompt_tokens, completion_tokens, cost + spent, cfg=cfg, teacher_fp=self.teacher_fp,
                                 template_version=self.template_version, latency_s=latency, attempts=attempts)
            await self.writer.add(rows)
            self.usage.add_response(call.n, prompt_tokens, completion_tokens, cost)
            return
