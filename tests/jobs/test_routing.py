"""Queue routing of fleet runs by host tag."""

from __future__ import annotations

from pathlib import Path

from tend.execution.targets import HostSnapshot
from tend.jobs.fleet_run import queue_for, route_queue
from tests.conftest import make_settings


def host(name: str, *tags: str) -> HostSnapshot:
    return HostSnapshot(
        name=name,
        address="10.0.0.1",
        port=22,
        user=None,
        transport="ssh",
        tags=tags,
        key_file=None,
        proxy_jump=None,
        trust_on_first_use=False,
        host_key=None,
    )


def test_hosts_route_by_their_first_routed_tag(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, queue_routes={"site-eu": "eu", "site-us": "us"})
    assert route_queue(settings, host("a", "web", "site-eu")) == "eu"
    assert route_queue(settings, host("b", "web")) == "default"
    assert queue_for(settings, [host("a", "site-eu"), host("c", "site-eu", "db")]) == "eu"
    assert queue_for(settings, [host("a", "site-eu"), host("d", "site-us")]) == "default"


def test_routes_come_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TEND_QUEUE_ROUTES", '{"rack-7": "rack7"}')
    from tend.settings import Settings

    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    assert settings.queue_routes == {"rack-7": "rack7"}
