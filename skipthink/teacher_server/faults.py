"""Fault injection for the built-in teacher server, and the error responses it answers with.

`ServerFaults` gives, per completion request, the chance of each misbehaviour: latency, 429s
with Retry-After, 500s, hung requests, empty or malformed bodies, bad 200s (null content,
`choices` of the wrong type, 10 MB text, NUL bytes, a lone surrogate), and a required API key
(401 without it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

from fastapi import Request
from fastapi.responses import JSONResponse, Response


@dataclass
class ServerFaults:
    """Fractions of completion requests that misbehave, drawn independently per request."""

    latency_ms: float = 0.0
    rate_limit_fraction: float = 0.0
    retry_after_s: float = 0.05
    server_error_fraction: float = 0.0
    hang_fraction: float = 0.0
    hang_s: float = 30.0
    empty_fraction: float = 0.0
    malformed_fraction: float = 0.0
    null_content_fraction: float = 0.0  # chat: message.content null; completions: text null
    bad_choices_fraction: float = 0.0  # "choices" is a string
    huge_fraction: float = 0.0  # 10 MB of text in the first choice
    nul_fraction: float = 0.0  # a NUL byte in the text
    surrogate_fraction: float = 0.0  # a lone surrogate (valid JSON, not valid UTF-8) in the text
    api_key: Optional[str] = None  # when set, completions and /models answer 401 without this bearer key
    batch_delay_s: float = 0.0  # time a submitted batch stays in_progress
    seed: int = 0


# Faults that answer 200 with a body the client must reject (or, for the surrogate, sanitise).
BAD_200_FAULTS = ("null_content", "bad_choices", "huge", "nul", "surrogate")
HUGE_TEXT_CHARS = 10 * 1024 * 1024


def error_response(status: int, message: str, headers: Optional[dict] = None) -> JSONResponse:
    kind = {400: "invalid_request_error", 401: "invalid_api_key", 404: "not_found_error", 429: "rate_limit_exceeded"}.get(status, "server_error")
    return JSONResponse({"error": {"message": message, "type": kind, "code": None}}, status_code=status, headers=headers)


def spoil(out: dict, fault: str, chat: bool) -> Response:
    """A 200 response whose body carries the bad-200 `fault` (usage is kept: it was billed)."""
    field = "content" if chat else "text"

    def set_text(choice: dict, value) -> None:
        (choice["message"] if chat else choice)[field] = value

    first = out["choices"][0]
    text = first["message"][field] if chat else first[field]
    if fault == "null_content":
        for c in out["choices"]:
            set_text(c, None)
    elif fault == "bad_choices":
        out["choices"] = "choices are not a list"
    elif fault == "huge":
        set_text(first, "x" * HUGE_TEXT_CHARS)
    elif fault == "nul":
        set_text(first, text + "\x00")
    elif fault == "surrogate":
        set_text(first, text + "\ud800")
    # ensure_ascii: a lone surrogate goes out as the JSON escape \ud800, which real APIs can emit.
    return Response(json.dumps(out).encode(), media_type="application/json")


def unauthorized(request: Request, key: Optional[str]) -> Optional[JSONResponse]:
    """A 401 when `key` is required and not presented; like real APIs it echoes the key it got."""
    presented = request.headers.get("authorization", "").removeprefix("Bearer ")
    if key is None or presented == key:
        return None
    return error_response(401, f"Incorrect API key provided: {presented}")


