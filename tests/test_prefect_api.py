"""Which Prefect API a pipeline command uses, and the temporary server it starts itself."""

from __future__ import annotations

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
def test_temporary_server_starts_answers_and_stops(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    server = start_temporary_server()
    try:
        assert server.wait(180) == server.api_url and healthy(server.api_url)
        assert (tmp_path / "temporary-server.log").is_file()
    finally:
        server.stop()
    assert server.proc.poll() is not None and not healthy(server.api_url)
