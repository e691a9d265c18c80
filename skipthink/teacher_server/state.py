"""What the built-in teacher server knows: its backend (scripted or replay), its counters,
uploaded files and batches, and how a request body becomes an OpenAI response body."""

from __future__ import annotations

import itertools
import random
import threading
import time
from typing import Optional, Protocol

from fastapi import HTTPException

from skipthink.config import TeacherServerConfig
from skipthink.teacher.tokens import count_tokens
from skipthink.teacher_server.faults import BAD_200_FAULTS, ServerFaults
from skipthink.teacher_server.replay import ReplayMiss, ReplayTeacher, ReplayTooFew
from skipthink.teacher_server.scripted import ScriptedTeacher
from skipthink.teacher_server.solvers import UnsolvableQuestion

MODEL_NAMES = {"scripted": "scripted-teacher", "replay": "replay-teacher"}


class Backend(Protocol):
    def complete(self, prompt: str, n: int, max_tokens: int, temperature: float) -> list[tuple[str, str]]: ...


def make_backend(cfg: TeacherServerConfig) -> Backend:
    if cfg.backend == "replay":
        if cfg.data_dir is None:
            raise ValueError("teacher.server.data_dir: required for the replay backend")
        return ReplayTeacher(cfg.data_dir)
    return ScriptedTeacher(cfg.error_rate, cfg.seed, cfg.style)


def _prompt_of(body: dict, chat: bool) -> str:
    if chat:
        messages = body.get("messages") or []
        return "\n\n".join(str(m.get("content") or "") for m in messages)
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        if len(prompt) != 1:
            raise HTTPException(400, "only one prompt per request")
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise HTTPException(400, "prompt must be a string")
    return prompt


class TeacherServerState:
    def __init__(self, backend: Backend, model: str, faults: ServerFaults):
        self.backend = backend
        self.model = model
        self.faults = faults
        self.rng = random.Random(faults.seed)
        self.counts = {"requests": 0, "completions_ok": 0, "rate_limited": 0, "server_errors": 0, "hung": 0,
                       "empty": 0, "malformed": 0, "client_errors": 0, "files_uploaded": 0, "batches_created": 0,
                       "unauthorized": 0, "models_requests": 0, **{name: 0 for name in BAD_200_FAULTS}}
        self.files: dict[str, dict] = {}
        self.batches: dict[str, dict] = {}
        self.ids = itertools.count(1)
        self.lock = threading.Lock()
        self.tasks: set = set()  # batches being processed (kept referenced until they finish)

    def new_id(self, prefix: str) -> str:
        with self.lock:
            return f"{prefix}-{next(self.ids):06d}"

    def count(self, name: str) -> None:
        with self.lock:
            self.counts[name] += 1

    def draw_fault(self) -> Optional[str]:
        f = self.faults
        with self.lock:
            u = self.rng.random()
        for name, share in (("rate_limited", f.rate_limit_fraction), ("server_errors", f.server_error_fraction),
                            ("hung", f.hang_fraction), ("empty", f.empty_fraction), ("malformed", f.malformed_fraction),
                            ("null_content", f.null_content_fraction), ("bad_choices", f.bad_choices_fraction),
                            ("huge", f.huge_fraction), ("nul", f.nul_fraction), ("surrogate", f.surrogate_fraction)):
            if u < share:
                return name
            u -= share
        return None

    def completion_body(self, body: dict, chat: bool) -> dict:
        """The OpenAI response body for a (chat) completion request; raises HTTPException."""
        prompt = _prompt_of(body, chat)
        n = int(body.get("n") or 1)
        max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
        if not 1 <= n <= 128:
            raise HTTPException(400, "n must be between 1 and 128")
        try:
            choices = self.backend.complete(prompt, n, max_tokens, float(body.get("temperature") or 0.0))
        except ReplayMiss as e:
            raise HTTPException(404, str(e)) from None
        except (ReplayTooFew, UnsolvableQuestion) as e:
            raise HTTPException(400, str(e)) from None
        usage = {"prompt_tokens": count_tokens(prompt), "completion_tokens": sum(count_tokens(t) for t, _ in choices)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if chat:
            out = [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": f} for i, (t, f) in enumerate(choices)]
            return {"id": self.new_id("chatcmpl"), "object": "chat.completion", "created": int(time.time()), "model": self.model,
                    "choices": out, "usage": usage}
        out = [{"index": i, "text": t, "finish_reason": f, "logprobs": None} for i, (t, f) in enumerate(choices)]
        return {"id": self.new_id("cmpl"), "object": "text_completion", "created": int(time.time()), "model": self.model,
                "choices": out, "usage": usage}


