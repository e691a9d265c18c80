"""Orchestration against a real local Prefect server and a real served deployment.

One server and one `skipthink server --preset smoke` process for the module; every flow run is
created through the API the UI's Run button calls, and executes in a child process of the
served deployment, writing to one shared DuckDB file.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage import Database
from tests.prefect_helpers import free_port, kill_processes_with_env, processes_left, wait_for_deployment

pytestmark = pytest.mark.slow
ALL_STAGE_TASKS = 1 + 1 + 1 + 1 + 6 + 1 + 6 + 1  # data teacher chunk student, 6 train, skipdata, 6 evaluate, report


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "process exited early"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(url)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("orchestration")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = dict(
        os.environ,
        PREFECT_HOME=str(base / "prefect"),
        PREFECT_API_URL=api,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="2",
        PREFECT_UI_ENABLED="false",
        SKIPTHINK_HOME=str(base / "home"),
        # Two flow runs share 2 cores: one torch thread each, or they thrash (~10x slower).
        OMP_NUM_THREADS="1",
    )
    server_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=server_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    wait_healthy(f"{api}/health", server)
    served = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "server", "--preset", "smoke", "--limit", "2"],
        env=env, stdout=open(base / "serve.log", "w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    os.environ.update(PREFECT_API_URL=api, PREFECT_HOME=env["PREFECT_HOME"])
    # Prefect is already imported in this process, so the environment alone does not reach its
    # settings: without this the test's client starts an ephemeral server of its own (which
    # times out on a loaded machine).
    from prefect.settings import PREFECT_API_URL, temporary_settings

    try:
        with temporary_settings(updates={PREFECT_API_URL: api}):
            asyncio.run(wait_for_deployment("distill/distill", served))
            yield {"api": api, "home": Path(env["SKIPTHINK_HOME"]), "base": base}
    finally:
        for proc in (served, server):
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)


async def run_deployment_like_the_ui(parameters: dict | None = None, timeout: float = 600, expected_tasks: int = ALL_STAGE_TASKS):
    """Create a flow run of distill/distill through the API and wait for a final state."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        dep = await client.read_deployment_by_name("distill/distill")
        params = dict(dep.parameters)
        params.update(parameters or {})
        run = await client.create_flow_run_from_deployment(dep.id, parameters=params)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = await client.read_flow_run(run.id)
            if run.state and run.state.is_final():
                break
            await asyncio.sleep(1)
        # Task-run states reach the server as events and may trail the flow run's final state.
        for _ in range(60):
            tasks = await client.read_task_runs(flow_run_filter=_flow_filter(run.id))
            states = {t.name: t.state.name for t in tasks if t.state is not None}
            if len(states) >= expected_tasks and all(t.state.is_final() for t in tasks):
                break
            await asyncio.sleep(0.5)
        return run, states


def _flow_filter(flow_run_id):
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    return FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))


def wall(run) -> float:
    return (run.end_time - run.start_time).total_seconds()


def smoke_config(home: Path, **overrides) -> dict:
    from skipthink.config import load_config

    overrides["storage.home"] = str(home)
    return load_config("smoke", overrides=[f"{k}={v}" for k, v in overrides.items()]).model_dump(mode="json")


def test_ui_run_then_cached_rerun_then_refresh_chunk(env):
    first, states = asyncio.run(run_deployment_like_the_ui())
    assert first.state.is_completed(), first.state
    assert len(states) == ALL_STAGE_TASKS and all(s == "Completed" for s in states.values()), states
    db = Database(env["home"] / "skipthink.duckdb")
    teacher_rows = db.count("teacher_requests")
    assert teacher_rows > 0 and db.count("metrics") == 6

    second, states = asyncio.run(run_deployment_like_the_ui())
    assert second.state.is_completed(), second.state
    assert len(states) == ALL_STAGE_TASKS and all(s == "Cached" for s in states.values()), states
    assert wall(second) <= 0.2 * wall(first), (wall(second), wall(first))

    third, states = asyncio.run(run_deployment_like_the_ui({"refresh": ["chunk"]}))
    assert third.state.is_completed(), third.state
    assert states["data"] == "Cached" and states["teacher"] == "Cached"
    for key in ("chunk", "student", "train:cwt-sbc", "skipdata", "train:stt", "evaluate:stt", "report"):
        assert states[key] == "Completed", (key, states)
    assert db.count("teacher_requests") == teacher_rows


def test_two_concurrent_runs_both_complete_with_all_rows(env):
    async def both():
        a = smoke_config(env["home"], **{"dataset.name": "last_letter_concatenation", "run_name": "concurrent-a"})
        b = smoke_config(env["home"], **{"dataset.name": "multiarith", "run_name": "concurrent-b"})
        # Two smoke runs at once on 2 cores take ~4 minutes idle; a loaded machine (a sweep beside
        # the suite) timed out at 10.
        return await asyncio.gather(run_deployment_like_the_ui({"config": a}, timeout=1500), run_deployment_like_the_ui({"config": b}, timeout=1500))

    (run_a, _), (run_b, _) = asyncio.run(both())
    assert run_a.state.is_completed() and run_b.state.is_completed(), (run_a.state, run_b.state)
    # they really overlapped
    assert run_a.start_time < run_b.end_time and run_b.start_time < run_a.end_time
    db = Database(env["home"] / "skipthink.duckdb")
    for name in ("last_letter_concatenation", "multiarith"):
        assert db.scalar("SELECT count(*) FROM examples WHERE dataset = ?", [name]) > 0
        assert db.scalar("SELECT count(DISTINCT method) FROM metrics WHERE dataset = ?", [name]) == 6
        assert db.scalar("SELECT count(*) FROM train_runs WHERE dataset = ?", [name]) == 6
    assert db.scalar("SELECT count(*) FROM stage_runs WHERE status <> 'completed'") == 0


def test_cron_scheduled_deployment_creates_runs(env):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    from flows.distill import distill

    async def scheduled_runs() -> int:
        deployment = await distill.ato_deployment(name="every-minute", cron="* * * * *")
        dep_id = await deployment.aapply()
        async with get_client() as client:
            for _ in range(60):
                runs = await client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep_id])))
                if runs:
                    return len(runs)
                await asyncio.sleep(1)
        return 0

    assert asyncio.run(scheduled_runs()) >= 1


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_a_background_server_stops_on_sigint_and_takes_its_prefect_server_with_it(tmp_path):
    """Fault: started from a script in the background, `skipthink server` inherits SIGINT as
    ignored; Ctrl-C (SIGINT to its group) did nothing, the caller had to SIGKILL it, and the
    Prefect server it had started (its own session) lived on. Found as orphans after CI runs."""
    home = tmp_path / "home"
    port = free_port()
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect"), SKIPTHINK_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", OMP_NUM_THREADS="1")
    env.pop("PREFECT_API_URL", None)
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "server", "--preset", "smoke", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/api/health", proc)
        deadline = time.monotonic() + 300
        while "being served" not in log.read_text():  # serve() has installed its runner
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)
        try:
            code = proc.wait(120)
        except subprocess.TimeoutExpired:
            code = None
        assert code == 0, log.read_text()[-3000:]
        left = processes_left(f"SKIPTHINK_HOME={home}\0")
        assert left == [], f"processes left behind: {left}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        kill_processes_with_env(f"SKIPTHINK_HOME={home}\0")
