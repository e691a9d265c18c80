"""The OpenAI Batch API flow: upload a JSONL of calls, create a batch, poll, download, map back.

The batch id and the calls it carries are stored (`teacher_batches`) right after creation, so
a restarted stage polls the same batch instead of paying for a second one. Results map back by
`custom_id` (the call's position in the stored call list); lines with an error become failures.
With `max_cost_usd` only the calls whose worst-case cost (every completion at `max_tokens`)
still fits the budget are submitted; polling stops at `batch_timeout_s` (the batch stays
stored and open, so a rerun polls it again).
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from typing import Optional, Sequence

import openai

from skipthink.config import TeacherConfig
from skipthink.teacher.calls import Call
from skipthink.teacher.client import MalformedResponse, failure_rows, parse_choices, request_body, response_rows, usage_of
from skipthink.teacher.store import RequestStore
from skipthink.teacher.usage import Usage, call_cost

FINAL_STATUSES = ("completed", "failed", "expired", "cancelled")


class BatchError(RuntimeError):
    pass


class BatchRunner:
    def __init__(self, cfg: TeacherConfig, client: openai.AsyncOpenAI, store: RequestStore, usage: Usage,
                 teacher_fp: str, template_version: str):
        self.cfg = cfg
        self.client = client
        self.store = store
        self.usage = usage
        self.teacher_fp = teacher_fp
        self.template_version = template_version
        self.url = "/v1/chat/completions" if cfg.endpoint == "chat" else "/v1/completions"

    async def run(self, step: str, calls: Sequence[Call]) -> Optional[str]:
        """Resume this step's stored batches, then submit one batch for the calls still unsaved.

        Returns a stop reason ("budget", "batch_deadline") or None when every call was answered."""
        for batch in self.store.open_batches(self.teacher_fp, step):
            stop = await self._collect(batch["batch_id"], [Call.from_json(c) for c in json.loads(batch["calls"])])
            if stop:
                return stop
        keys = [k for c in calls for k in c.keys]
        saved = set(self.store.load_responses(keys))
        pending = [c for c in calls if not set(c.keys) & saved]
        if not pending:
            return None
        affordable = self._affordable(pending)
        if not affordable:
            return "budget"
        batch_id = await self._submit(step, affordable)
        stop = await self._collect(batch_id, affordable)
        return stop or ("budget" if len(affordable) < len(pending) else None)

    def _worst_case_cost(self, call: Call) -> float:
        # About 3 characters per prompt token errs high for text; every choice runs to max_tokens.
        prompt_tokens = len(call.prompt) // 3 + 1
        return call_cost(self.cfg.prices, self.cfg.model, prompt_tokens, call.params["max_tokens"] * call.n, self.cfg.batch_discount)

    def _affordable(self, calls: Sequence[Call]) -> list[Call]:
        """The leading calls whose worst-case cost fits what is left of `max_cost_usd`."""
        if self.cfg.max_cost_usd is None:
            return list(calls)
        left = self.cfg.max_cost_usd - self.usage.total_cost_usd
        out = []
        for call in calls:
            left -= self._worst_case_cost(call)
            if left < 0:
                break
            out.append(call)
        return out

    async def _submit(self, step: str, calls: Sequence[Call]) -> str:
        lines = [json.dumps({"custom_id": str(i), "method": "POST", "url": self.url, "body": request_body(c, self.cfg)})
                 for i, c in enumerate(calls)]
        payload = ("\n".join(lines) + "\n").encode()
        uploaded = await self.client.files.create(file=(f"skipthink-{step}.jsonl", io.BytesIO(payload)), purpose="batch")
        batch = await self.client.batches.create(input_file_id=uploaded.id, endpoint=self.url, completion_window="24h",
                                                 metadata={"teacher_fp": self.teacher_fp, "step": step})
        self.store.save_batch({
            "batch_id": batch.id, "teacher_fp": self.teacher_fp, "step": step, "input_file_id": uploaded.id,
            "status": batch.status, "n_requests": len(calls), "calls": json.dumps([c.to_json() for c in calls]),
        })
        return batch.id

    async def _collect(self, batch_id: str, calls: Sequence[Call]) -> Optional[str]:
        deadline = time.monotonic() + self.cfg.batch_timeout_s
        while True:
            batch = await self.client.batches.retrieve(batch_id)
            if batch.status in FINAL_STATUSES:
                break
            if time.monotonic() >= deadline:
                return "batch_deadline"
            await asyncio.sleep(min(self.cfg.batch_poll_s, max(deadline - time.monotonic(), 0.0)))
        results: dict[str, dict] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                content = await self.client.files.content(file_id)
                for line in content.text.splitlines():
                    if line.strip():
                        record = json.loads(line)
                        results[record["custom_id"]] = record
        saved = set(self.store.load_responses([k for c in calls for k in c.keys]))
        responses, failures = [], []
        for i, call in enumerate(calls):
            if set(call.keys) & saved:
                continue
            record = results.get(str(i))
            error = self._error_of(record, batch.status)
            if error is None:
                body = record["response"]["body"]
                try:
                    choices = parse_choices(body, self.cfg.endpoint, call.n, call.params["max_tokens"])
                except MalformedResponse as e:
                    error = e
            if error is not None:
                # A 200 line with unusable choices was still billed.
                cost = call_cost(self.cfg.prices, self.cfg.model, *error.usage, self.cfg.batch_discount) if isinstance(error, MalformedResponse) else 0.0
                self.usage.add_spent(cost)
                failures.extend(failure_rows(call, 1, error, self.teacher_fp, cost, (self.client.api_key,)))
                self.usage.add_failure(call.n)
                continue
            prompt_tokens, completion_tokens = usage_of(body)
            cost = call_cost(self.cfg.prices, self.cfg.model, prompt_tokens, completion_tokens, self.cfg.batch_discount)
            responses.extend(response_rows(call, choices, prompt_tokens, completion_tokens, cost, cfg=self.cfg,
                                           teacher_fp=self.teacher_fp, template_version=self.template_version,
                                           latency_s=None, attempts=1, batch_id=batch_id))
            self.usage.add_response(call.n, prompt_tokens, completion_tokens, cost)
        if responses:
            self.store.save_responses(responses)
        if failures:
            self.store.save_failures(failures)
        self.store.set_batch_status(batch_id, "saved")
        return None

    @staticmethod
    def _error_of(record: Optional[dict], batch_status: str) -> Optional[BaseException]:
        if record is None:
            return BatchError(f"no result line (batch {batch_status})")
        if record.get("error"):
            return BatchError(json.dumps(record["error"])[:500])
        response = record.get("response") or {}
        if response.get("status_code") != 200:
            return BatchError(f"status {response.get('status_code')}: {json.dumps(response.get('body'))[:500]}")
        return None
