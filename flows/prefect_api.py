"""Which Prefect API a command talks to, and the server processes behind it.

Deliberately free of Prefect imports: a command decides (and starts a server) before the
second it takes to import Prefect, torch and transformers, so a temporary server boots while
those imports run instead of after them.

- `configured_api_url()`: `PREFECT_API_URL` (environment or active profile), as Prefect reads it.
- `start_temporary_server()`: what Prefect itself starts when no API is configured (the API
  app under uvicorn, no UI, on a free loopback port), started by us so it overlaps the imports.
- `start_server()`: a full `prefect server start` (UI and services) for `skipthink server`.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Optional

from filelock import FileLock


def healthy(api_url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout_s) as r:
            return r.status == 200
    except OSError:
        return False


def configured_api_url() -> Optional[str]:
    """PREFECT_API_URL from the environment, else from the active profile in profiles.toml."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    profiles = Path(os.path.expanduser(os.environ.get("PREFECT_HOME", "~/.prefect"))) / "profiles.toml"
    if not profiles.is_file():
        return None
    import tomllib

    try:
        data = tomllib.loads(profiles.read_text())
    except tomllib.TOMLDecodeError:
        return None
    active = os.environ.get("PREFECT_PROFILE") or data.get("active") or "ephemeral"
    return data.get("profiles", {}).get(active, {}).get("PREFECT_API_URL")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_env() -> dict[str, str]:
    env = dict(os.environ, PREFECT_SERVER_ANALYTICS_ENABLED="false")
    env.pop("PREFECT_API_URL", None)
    return env


class ServerProcess:
    """A Prefect API server child process; `wait()` blocks until /api/health answers. A
    `startup_lock` held by the caller is released once the server answers (or fails)."""

    def __init__(self, proc: subprocess.Popen, api_url: str, log_path: Optional[Path] = None, startup_lock: Optional[FileLock] = None):
        self.proc, self.api_url, self.log_path, self.startup_lock = proc, api_url, log_path, startup_lock
        atexit.register(self.stop)

    def wait(self, timeout_s: float = 120.0) -> str:
        try:
            return self._wait(timeout_s)
        finally:
            self._release()

    def _wait(self, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Prefect server on {self.api_url} exited with code {self.proc.returncode}" + (f"; see {self.log_path}" if self.log_path else ""))
            if healthy(self.api_url, timeout_s=1.0):
                return self.api_url
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Prefect server did not become healthy on {self.api_url} within {timeout_s:.0f}s")

    def _release(self) -> None:
        if self.startup_lock is not None and self.startup_lock.is_locked:
            self.startup_lock.release()

    def stop(self) -> None:
        self._release()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start_temporary_server() -> ServerProcess:
    """Prefect's own temporary server (the API app under uvicorn, no UI), on a free port."""
    prefect_dir = Path(importlib.util.find_spec("prefect").origin).parent
    port = free_port()
    env = dict(_server_env(), PREFECT_UI_ENABLED="0", PREFECT__SERVER_EPHEMERAL="1", PREFECT__SERVER_FINAL="1")
    # Its SQLite file lives under PREFECT_HOME, which Prefect does not create.
    home = Path(os.path.expanduser(env.get("PREFECT_HOME", "~/.prefect")))
    home.mkdir(parents=True, exist_ok=True)
    # Two commands starting at once on one PREFECT_HOME would migrate its SQLite file at the same
    # time, and one server then dies at start-up: start one at a time, each holding the lock
    # until it answers (the second then finds the database migrated).
    startup_lock = FileLock(str(home / "temporary-server.lock"), timeout=300, thread_local=False, is_singleton=False)
    startup_lock.acquire()
    # Its log (stopping it mid-flush prints tracebacks of no consequence) goes to a file, named
    # in the error should it fail to start; appended, as another command's server may be writing.
    log = open(home / "temporary-server.log", "a")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect_dir.parent), "--factory", "prefect.server.api.server:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()  # the child holds its own descriptor
    return ServerProcess(proc, f"http://127.0.0.1:{port}/api", log_path=home / "temporary-server.log", startup_lock=startup_lock)


def start_server(host: str, port: int) -> ServerProcess:
    """`prefect server start` (UI and scheduler) as a child process."""
    # The UI's own idea of its API defaults to port 4200 whatever --port says.
    env = dict(_server_env(), PREFECT_UI_ENABLED="true", PREFECT_SERVER_UI_API_URL=f"http://{host}:{port}/api")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return ServerProcess(proc, f"http://{host}:{port}/api")


def api_for_run() -> tuple[str, Optional[ServerProcess]]:
    """The API a pipeline command should use: the configured server, else a temporary one
    started now (not yet healthy: `.wait()` on it before the first API call). Sets
    PREFECT_API_URL so the Prefect imported afterwards talks to it."""
    configured = configured_api_url()
    if configured:
        if not healthy(configured):
            raise RuntimeError(f"PREFECT_API_URL={configured} does not answer; start that server or unset PREFECT_API_URL")
        return configured, None
    server = start_temporary_server()
    os.environ["PREFECT_API_URL"] = server.api_url
    return server.api_url, server


def ensure_server(host: str = "127.0.0.1", port: int = 4200) -> str:
    """Use the configured server or one at host:port when it answers, else start one there;
    sets and returns PREFECT_API_URL. Call before importing Prefect (it reads the URL once)."""
    api_url = configured_api_url()
    if not (api_url and healthy(api_url)):
        api_url = f"http://{host}:{port}/api"
        if not healthy(api_url):
            api_url = start_server(host, port).wait(180)  # a busy machine needs more than a minute
    os.environ["PREFECT_API_URL"] = api_url
    return api_url
