"""The README's UI path in a real browser: Deployments → distill → Run → Custom run → Submit.

`skipthink server --preset smoke` starts a Prefect server with its UI and serves the
deployments; Debian's Chromium, driven by Playwright (no browser download), clicks through the
Custom run form exactly as a user would. The run's outcome is then checked through the API:
every stage a completed task run, the `skipthink-report` artifact with its examples and
embedded figures, the flow run named after what it runs. Screenshots of every step are kept
when the test fails.
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

from tests.prefect_helpers import free_port, kill_processes_with_env, wait_for_deployment

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
STAGE_TASKS = 18  # data teacher chunk student, 6 trainings, skipdata, 6 evaluations, report


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed: apt-get install -y chromium (.ci/run does this)")
    pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install -e '.[test]'")
    base = tmp_path_factory.mktemp("ui")
    port = free_port()
    env = dict(
        os.environ,
        PREFECT_HOME=str(base / "prefect"),
        SKIPTHINK_HOME=str(base / "home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        OMP_NUM_THREADS="1",
    )
    env.pop("PREFECT_API_URL", None)  # `skipthink server` starts its own on --port
    log = open(base / "serve.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "server", "--preset", "smoke", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/api"
    previous = {k: os.environ.get(k) for k in ("PREFECT_API_URL", "PREFECT_HOME")}
    os.environ.update(PREFECT_API_URL=api, PREFECT_HOME=env["PREFECT_HOME"])
    # Prefect may already be imported in this process (a whole-suite run), so the environment
    # alone does not reach its settings: without temporary_settings the test's client would start
    # an ephemeral server of its own, which times out on a loaded machine.
    from prefect.settings import PREFECT_API_URL, temporary_settings

    try:
        from flows.prefect_api import ServerProcess

        ServerProcess(proc, api).wait(300)
        with temporary_settings(updates={PREFECT_API_URL: api}):
            asyncio.run(wait_for_deployment("distill/distill", proc, 300))
            yield {"ui": f"http://127.0.0.1:{port}", "api": api, "base": base}
    finally:
        # Ctrl-C, as in a terminal: the runner stops and its Prefect server goes with it.
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        # Its Prefect server runs in a session of its own: never leave it behind.
        kill_processes_with_env(f"SKIPTHINK_HOME={env['SKIPTHINK_HOME']}\0")
        log.close()
        for k, v in previous.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _blocking(coroutine_fn, *args, **kwargs):
    """Run an API coroutine to completion from inside Playwright's sync API (which holds the
    main thread's event loop)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(coroutine_fn(*args, **kwargs))).result()


async def _only_flow_run(timeout: float = 60) -> str:
    """The id of the one flow run the form created."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = await client.read_flow_runs()
            if runs:
                assert len(runs) == 1, [r.name for r in runs]
                return str(runs[0].id)
            await asyncio.sleep(0.5)
    raise TimeoutError("the Custom run form created no flow run")


async def _finished_run(flow_run_id: str, timeout: float):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter, FlowRunFilterId

    async with get_client() as client:
        deadline = time.monotonic() + timeout
        run = await client.read_flow_run(flow_run_id)
        while not (run.state and run.state.is_final()) and time.monotonic() < deadline:
            await asyncio.sleep(2)
            run = await client.read_flow_run(flow_run_id)
        # Task-run states reach the server as events and may trail the flow run's final state.
        for _ in range(60):
            tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
            if len(tasks) >= STAGE_TASKS and all(t.state and t.state.is_final() for t in tasks):
                break
            await asyncio.sleep(0.5)
        artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
        return run, {t.name: t.state.name for t in tasks if t.state}, {a.key: a for a in artifacts if a.key}


def test_custom_run_from_the_ui_completes_with_report(served, tmp_path_factory):
    from playwright.sync_api import expect, sync_playwright

    shots = tmp_path_factory.mktemp("screenshots")
    steps: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)

        def shot(name: str) -> None:
            path = shots / f"{len(steps):02d}-{name}.png"
            page.screenshot(path=str(path), full_page=True)
            steps.append(str(path))

        try:
            page.goto(f"{served['ui']}/deployments")
            # The row holds two "distill" links, the deployment's and its flow's (in an order the
            # UI does not promise): pick the deployment's by where it goes.
            link = page.locator('a[href*="/deployments/deployment/"]', has_text="distill")
            for _ in range(20):  # a busy server can answer the first list query before it lists the deployment
                if link.count():
                    break
                page.wait_for_timeout(3000)
                page.reload()
            link.first.click()
            page.wait_for_url("**/deployments/deployment/**")
            page.get_by_text("Description", exact=True).click()
            expect(page.get_by_text("One dataset through every stage")).to_be_visible()
            shot("deployment-description")
            page.get_by_role("button", name="Run", exact=True).click()
            page.get_by_role("button", name="Custom run").click()
            page.wait_for_url("**/run?**")
            submit = page.get_by_role("button", name="Submit")
            expect(submit).to_be_visible()
            shot("custom-run-form")
            submit.click()
            page.wait_for_url(lambda url: "/run?" not in url)  # back on the deployment page
            run, tasks, artifacts = _blocking(_finished_run, _blocking(_only_flow_run), timeout=1200)
            page.goto(f"{served['ui']}/runs/flow-run/{run.id}")
            expect(page.get_by_text(run.name).first).to_be_visible()
            expect(page.get_by_text("Completed").first).to_be_visible()
            shot("finished-run")
            # The report artifact as the UI renders it: the examples and the embedded figures.
            page.goto(f"{served['ui']}/artifacts/artifact/{artifacts['skipthink-report'].id}")
            expect(page.get_by_text("Examples", exact=True).first).to_be_visible()
            page.wait_for_function("() => [...document.images].some(i => i.src.startsWith('data:image/png') && i.naturalWidth > 300)")
            shot("report-artifact")
        except Exception:
            shot("failure")
            print("screenshots:", *steps, sep="\n  ")
            raise
        finally:
            browser.close()

    assert run.state.is_completed(), run.state
    assert run.name == "coin_flip-smoke-seed0"
    assert run.parameters["preset"] == "smoke", run.parameters
    assert len(tasks) == STAGE_TASKS and set(tasks.values()) == {"Completed"}, tasks
    report = artifacts["skipthink-report"]
    assert "skipthink-metrics" in artifacts
    assert "## Examples" in report.data and "### Question 3" in report.data
    assert "](data:image/png;base64," in report.data  # the figures show in the UI
