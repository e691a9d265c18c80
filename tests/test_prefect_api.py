"""Which Prefect API a pipeline command uses, and the temporary server it starts itself."""

from __future__ import annotations

import threading
import time

import pytest

from flows.prefect_api import api_for_run, configured_api_url, free_port, healthy, start_temporary_server


def test_configured_api_url_from_the_environment_or_the_active_profile(tmp_path, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("PREFECT_PROFILE", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    assert configured_api_url() is None
    (tmp_path / "profiles.toml").write_text(
        'active = "local"\n[profiles.local]\nPREFECT_API_URL = "http://127.0.0.1:4321/api"\n[profiles.other]\nPREFECT_API_URL = "http://x/api"\n'
    )
    assert configured_api_url() == "http://127.0.0.1:4321/api"
    monkeypatch.setenv("PREFECT_PROFILE", "other")
    assert configured_api_url() == "http://x/api"
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:1/api")
    assert configured_api_url() == "http://127.0.0.1:1/api"


def test_a_configured_server_that_does_not_answer_is_an_error(monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{free_port()}/api")
    with pytest.raises(RuntimeError, match="does not answer"):
        api_for_run()


@pytest.mark.slow
def test_temporary_servers_started_at_once_on_a_new_home_start_in_turn_and_all_answer(tmp_path, monkeypatch):
    """Fault: three commands start their temporary servers at once on a new PREFECT_HOME (two
    `skipthink run` at once). Before, both migrated its SQLite file together and one server died
    at start-up (exit code 3). Expected: they start one after the other; all answer."""
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    servers, errors, spans = [], [], []

    def start_and_wait():
        try:
            server = start_temporary_server()
            started = time.monotonic()  # its process was just spawned
            servers.append(server)
            server.wait(180)
            spans.append((started, time.monotonic()))
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=start_and_wait) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(400)
    try:
        assert errors == [] and len(servers) == 3
        assert len({s.api_url for s in servers}) == 3 and all(healthy(s.api_url) for s in servers)
        # One at a time: each server process started after the one before it answered (the
        # migration race is timing-dependent; the serialisation that prevents it is not).
        spans.sort()
        assert all(later[0] >= earlier[1] - 0.5 for earlier, later in zip(spans, spans[1:])), spans
        assert (tmp_path / "temporary-server.log").is_file() and (tmp_path / "prefect.db").is_file()
    finally:
        for server in servers:
            server.stop()
    assert all(s.proc.poll() is not None and not healthy(s.api_url) for s in servers)
