"""The built-in OpenAI-compatible teacher server (FastAPI + uvicorn), for tests, benchmarks and
the embedded default: the app, and handles to run it in a thread or a child process.

Speaks enough of the OpenAI API for the official client: /v1/models, /v1/completions,
/v1/chat/completions, /v1/files and /v1/batches (the Batch API flow), plus GET /stats with its
own request counts. Backends: `scripted` (solves the synthetic datasets) or `replay` (recorded
completions). Faults: `faults.ServerFaults`. Binds loopback unless told otherwise.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict
from typing import Optional

import uvicorn
from fastapi import FastAPI

from skipthink.config import TeacherServerConfig
from skipthink.teacher_server.batches import batch_routes
from skipthink.teacher_server.completions import completion_routes
from skipthink.teacher_server.faults import ServerFaults
from skipthink.teacher_server.state import MODEL_NAMES, Backend, TeacherServerState, make_backend


def create_app(backend: Backend, model: str, faults: Optional[ServerFaults] = None) -> FastAPI:
    state = TeacherServerState(backend, model, faults or ServerFaults())
    app = FastAPI(title="skipthink teacher")
    app.state.teacher = state
    app.include_router(completion_routes(state))
    app.include_router(batch_routes(state))
    return app


class _Handle:
    """What both handles share: where the server listens and how to read its request count."""

    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def stats(self) -> dict:
        raise NotImplementedError

    @property
    def request_count(self) -> int:
        return int(self.stats["requests"])

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class ServerHandle(_Handle):
    """A running server in a background thread."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, app: FastAPI, host: str, port: int):
        self._server = server
        self._thread = thread
        self.app = app
        self.host = host
        self.port = port

    @property
    def stats(self) -> dict:
        state: TeacherServerState = self.app.state.teacher
        with state.lock:
            return dict(state.counts)

    def wait(self) -> None:
        """Block while the server runs (Ctrl-C stops it)."""
        while self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def build_app(cfg: TeacherServerConfig, faults: Optional[ServerFaults] = None) -> FastAPI:
    return create_app(make_backend(cfg), MODEL_NAMES[cfg.backend], faults)


def start_server(cfg: TeacherServerConfig, host: str = "127.0.0.1", port: int = 0, faults: Optional[ServerFaults] = None) -> ServerHandle:
    """Start uvicorn in a background thread on a free port (port=0) and wait until it listens."""
    app = build_app(cfg, faults)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, name="skipthink-teacher-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"teacher server did not start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    return ServerHandle(server, thread, app, host, bound)


def serve_child_main() -> None:
    """Entry of a server child process: argv[1] is a JSON spec; prints the bound port, then serves."""
    import sys

    spec = json.loads(sys.argv[1])
    handle = start_server(TeacherServerConfig.model_validate(spec["cfg"]), spec["host"], spec["port"], ServerFaults(**spec["faults"]))
    print(handle.port, flush=True)
    handle.wait()


class ProcessServerHandle(_Handle):
    """A server in a child process (its own GIL and core): `.base_url`, `.stats`, `.stop()`."""

    def __init__(self, process, host: str, port: int):
        self.process = process
        self.host = host
        self.port = port

    @property
    def stats(self) -> dict:
        import urllib.request

        with urllib.request.urlopen(f"http://{self.host}:{self.port}/stats", timeout=10) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except Exception:
            self.process.kill()


def start_server_process(cfg: TeacherServerConfig, host: str = "127.0.0.1", port: int = 0, faults: Optional[ServerFaults] = None) -> ProcessServerHandle:
    """Like start_server, but in a child Python process; returns once it listens."""
    import subprocess
    import sys

    spec = json.dumps({"cfg": cfg.model_dump(mode="json"), "host": host, "port": port, "faults": asdict(faults or ServerFaults())})
    code = "from skipthink.teacher_server.server import serve_child_main; serve_child_main()"
    process = subprocess.Popen([sys.executable, "-c", code, spec], stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline().strip()
    if not line.isdigit():
        process.kill()
        raise RuntimeError(f"teacher server process did not start (exit code {process.poll()})")
    return ProcessServerHandle(process, host, int(line))
