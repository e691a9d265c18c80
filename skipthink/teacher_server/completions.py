"""Routes: /v1/completions, /v1/chat/completions, /v1/models and /stats (with injected faults)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from skipthink.teacher_server.faults import BAD_200_FAULTS, error_response, spoil, unauthorized
from skipthink.teacher_server.state import TeacherServerState


def completion_routes(state: TeacherServerState) -> APIRouter:
    router = APIRouter()

    async def completion(request: Request, chat: bool) -> Response:
        state.count("requests")
        f = state.faults
        refused = unauthorized(request, f.api_key)
        if refused is not None:
            state.count("unauthorized")
            return refused
        if f.latency_ms:
            await asyncio.sleep(f.latency_ms / 1000)
        fault = state.draw_fault()
        if fault:
            state.count(fault)
        if fault == "rate_limited":
            return error_response(429, "rate limit (injected)", {"Retry-After": str(f.retry_after_s)})
        if fault == "server_errors":
            return error_response(500, "server error (injected)")
        if fault == "hung":
            await asyncio.sleep(f.hang_s)
        if fault == "malformed":
            return Response(b'{"choices": [{"text": "trunc', media_type="application/json")
        try:
            body = await request.json()
            out = state.completion_body(body, chat)
        except HTTPException as e:
            state.count("client_errors")
            return error_response(e.status_code, e.detail)
        except (ValueError, TypeError) as e:
            state.count("client_errors")
            return error_response(400, f"bad request: {e}")
        if fault == "empty":
            for c in out["choices"]:
                if chat:
                    c["message"]["content"] = ""
                else:
                    c["text"] = ""
        elif fault in BAD_200_FAULTS:
            return spoil(out, fault, chat)
        else:
            state.count("completions_ok")
        return JSONResponse(out)

    @router.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await completion(request, chat=False)

    @router.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await completion(request, chat=True)

    @router.get("/v1/models")
    async def models(request: Request) -> Response:
        state.count("models_requests")
        refused = unauthorized(request, state.faults.api_key)
        if refused is not None:
            state.count("unauthorized")
            return refused
        return JSONResponse({"object": "list", "data": [{"id": state.model, "object": "model", "created": 0, "owned_by": "skipthink"}]})

    @router.get("/stats")
    async def stats() -> dict:
        with state.lock:
            return {**state.counts, "model": state.model, "faults": asdict(state.faults)}

    return router
