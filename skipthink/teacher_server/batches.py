"""Routes of the Batch API flow: /v1/files (upload, metadata, content) and /v1/batches."""

from __future__ import annotations

import asyncio
import email.parser
import json
import time
from typing import Optional

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from skipthink.teacher_server.faults import error_response
from skipthink.teacher_server.state import TeacherServerState


def parse_multipart(content_type: str, raw: bytes) -> dict[str, tuple[Optional[str], bytes]]:
    message = email.parser.BytesParser().parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    parts = {}
    for part in message.get_payload() if message.is_multipart() else []:
        name = part.get_param("name", header="content-disposition")
        parts[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return parts


def batch_routes(state: TeacherServerState) -> APIRouter:
    router = APIRouter()

    def file_object(file_id: str) -> dict:
        f = state.files[file_id]
        return {"id": file_id, "object": "file", "bytes": len(f["content"]), "created_at": f["created_at"],
                "filename": f["filename"], "purpose": f["purpose"], "status": "processed"}

    @router.post("/v1/files")
    async def upload(request: Request) -> Response:
        parts = parse_multipart(request.headers.get("content-type", ""), await request.body())
        if "file" not in parts:
            return error_response(400, "multipart field 'file' is required")
        filename, content = parts["file"]
        purpose = parts.get("purpose", (None, b"batch"))[1].decode()
        file_id = state.new_id("file")
        state.files[file_id] = {"content": content, "filename": filename or "upload.jsonl", "purpose": purpose, "created_at": int(time.time())}
        state.count("files_uploaded")
        return JSONResponse(file_object(file_id))

    @router.get("/v1/files/{file_id}")
    async def get_file(file_id: str) -> Response:
        if file_id not in state.files:
            return error_response(404, f"no file {file_id}")
        return JSONResponse(file_object(file_id))

    @router.get("/v1/files/{file_id}/content")
    async def file_content(file_id: str) -> Response:
        if file_id not in state.files:
            return error_response(404, f"no file {file_id}")
        return PlainTextResponse(state.files[file_id]["content"].decode())

    def batch_object(batch_id: str) -> dict:
        return dict(state.batches[batch_id])

    async def process_batch(batch_id: str) -> None:
        batch = state.batches[batch_id]
        batch["status"] = "in_progress"
        await asyncio.sleep(state.faults.batch_delay_s)
        chat = batch["endpoint"] == "/v1/chat/completions"
        outputs, errors = [], []
        for line in state.files[batch["input_file_id"]]["content"].decode().splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            try:
                body = state.completion_body(record["body"], chat)
                outputs.append({"id": state.new_id("batch_req"), "custom_id": record["custom_id"],
                                "response": {"status_code": 200, "request_id": state.new_id("req"), "body": body}, "error": None})
            except HTTPException as e:
                errors.append({"id": state.new_id("batch_req"), "custom_id": record["custom_id"],
                               "response": {"status_code": e.status_code, "body": {"error": {"message": e.detail}}}, "error": None})
        for kind, rows in (("output_file_id", outputs), ("error_file_id", errors)):
            if rows:
                file_id = state.new_id("file")
                state.files[file_id] = {"content": ("\n".join(json.dumps(r) for r in rows) + "\n").encode(),
                                        "filename": f"{batch_id}_{kind}.jsonl", "purpose": "batch_output", "created_at": int(time.time())}
                batch[kind] = file_id
        batch["request_counts"] = {"total": len(outputs) + len(errors), "completed": len(outputs), "failed": len(errors)}
        batch["completed_at"] = int(time.time())
        batch["status"] = "completed"

    @router.post("/v1/batches")
    async def create_batch(request: Request) -> Response:
        body = await request.json()
        if body.get("input_file_id") not in state.files:
            return error_response(400, "unknown input_file_id")
        if body.get("endpoint") not in ("/v1/completions", "/v1/chat/completions"):
            return error_response(400, "endpoint must be /v1/completions or /v1/chat/completions")
        batch_id = state.new_id("batch")
        state.batches[batch_id] = {
            "id": batch_id, "object": "batch", "endpoint": body["endpoint"], "errors": None, "input_file_id": body["input_file_id"],
            "completion_window": body.get("completion_window", "24h"), "status": "validating", "output_file_id": None,
            "error_file_id": None, "created_at": int(time.time()), "completed_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0}, "metadata": body.get("metadata"),
        }
        state.count("batches_created")
        task = asyncio.create_task(process_batch(batch_id))
        state.tasks.add(task)
        task.add_done_callback(state.tasks.discard)
        return JSONResponse(batch_object(batch_id))

    @router.get("/v1/batches/{batch_id}")
    async def get_batch(batch_id: str) -> Response:
        if batch_id not in state.batches:
            return error_response(404, f"no batch {batch_id}")
        return JSONResponse(batch_object(batch_id))

    return router
