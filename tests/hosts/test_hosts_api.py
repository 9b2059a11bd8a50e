"""The hosts inventory over HTTP: viewers read, admins write, bad input is 422 naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from tend.auth.models import Role
from tests.conftest import Harness

WEB = {
    "name": "web-1",
    "address": "10.0.0.5",
    "port": 2222,
    "user": "deploy",
    "tags": ["prod", "Web", "prod"],
}


async def test_local_host_is_registered_on_first_start(harness: Harness) -> None:
    viewer = await harness.role_headers(Role.VIEWER)
    response = await harness.client.get("/api/v1/hosts/local", headers=viewer)
    assert response.status_code == 200
    assert response.json()["transport"] == "local"


async def test_admin_adds_updates_and_removes_a_host(harness: Harness) -> None:
    admin = await harness.role_headers(Role.ADMIN)
    viewer = await harness.role_headers(Role.VIEWER)
    created = await harness.client.post("/api/v1/hosts", json=WEB, headers=admin)
    assert created.status_code == 201
    body = created.json()
    assert body["tags"] == ["prod", "web"]
    assert body["transport"] == "ssh"
    assert body["created_at"].endswith("Z") or "+00:00" in body["created_at"]
    listed = await harness.client.get("/api/v1/hosts", headers=viewer)
    assert [h["name"] for h in listed.json()] == ["local", "web-1"]
    patched = await harness.client.patch(
        "/api/v1/hosts/web-1", json={"tags": ["db"], "port": 22, "user": None}, headers=admin
    )
    assert patched.status_code == 200
    assert patched.json()["tags"] == ["db"]
    assert patched.json()["port"] == 22
    assert patched.json()["user"] is None
    assert patched.json()["address"] == "10.0.0.5"
    assert patched.json()["updated_at"] > body["updated_at"]
    fetched = await harness.client.get("/api/v1/hosts/web-1", headers=viewer)
    assert fetched.json() == patched.json()
    assert (await harness.client.delete("/api/v1/hosts/web-1", headers=admin)).status_code == 204
    assert (await harness.client.get("/api/v1/hosts/web-1", headers=viewer)).status_code == 404


async def test_list_filters_by_tag_and_pages(harness: Harness) -> None:
    admin = await harness.role_headers(Role.ADMIN)
    for i in range(5):
        tags = ["prod"] if i % 2 == 0 else ["dev"]
        body = {"name": f"node-{i}", "address": f"node-{i}.example.com", "tags": tags}
        assert (
            await harness.client.post("/api/v1/hosts", json=body, headers=admin)
        ).status_code == 201
    prod = await harness.client.get("/api/v1/hosts", params={"tag": "prod"}, headers=admin)
    assert [h["name"] for h in prod.json()] == ["node-0", "node-2", "node-4"]
    page = await harness.client.get(
        "/api/v1/hosts", params={"limit": 2, "offset": 1}, headers=admin
    )
    assert [h["name"] for h in page.json()] == ["node-0", "node-1"]
    bad = await harness.client.get("/api/v1/hosts", params={"limit": 0}, headers=admin)
    assert bad.status_code == 422


async def test_duplicate_name_is_409(harness: Harness) -> None:
    admin = await harness.role_headers(Role.ADMIN)
    assert (await harness.client.post("/api/v1/hosts", json=WEB, headers=admin)).status_code == 201
    again = await harness.client.post("/api/v1/hosts", json=WEB, headers=admin)
    assert again.status_code == 409
    assert again.json()["error"] == "Conflict"
    assert "web-1" in again.json()["detail"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "Web_1"}, "name"),
        ({"name": "-web"}, "name"),
        ({"name": "a" * 64}, "name"),
        ({"name": ""}, "name"),
        ({"address": "-oProxyCommand=sh"}, "address"),
        ({"address": "bad host"}, "address"),
        ({"address": "300.1.1.1"}, "address"),
        ({"address": ""}, "address"),
        ({"port": 0}, "port"),
        ({"port": 65536}, "port"),
        ({"port": "ssh"}, "port"),
        ({"user": "root; rm"}, "user"),
        ({"tags": ["ok", "not ok"]}, "tags"),
        ({"tags": "prod"}, "tags"),
        ({"transport": "telnet"}, "transport"),
        ({"password": "x"}, "password"),
    ],
)
async def test_bad_host_input_is_422_naming_the_field(
    harness: Harness, change: dict[str, Any], field: str
) -> None:
    admin = await harness.role_headers(Role.ADMIN)
    response = await harness.client.post("/api/v1/hosts", json={**WEB, **change}, headers=admin)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "ValidationError"
    assert any(field in item["loc"] for item in response.json()["detail"]), response.json()


async def test_ssh_host_needs_an_address_and_local_does_not(harness: Harness) -> None:
    admin = await harness.role_headers(Role.ADMIN)
    missing = await harness.client.post("/api/v1/hosts", json={"name": "x"}, headers=admin)
    assert missing.status_code == 422
    local = await harness.client.post(
        "/api/v1/hosts", json={"name": "here", "transport": "local"}, headers=admin
    )
    assert local.status_code == 201
    assert local.json()["address"] == "localhost"


async def test_addresses_are_normalised(harness: Harness) -> None:
    admin = await harness.role_headers(Role.ADMIN)
    v6 = await harness.client.post(
        "/api/v1/hosts", json={"name": "v6", "address": "[2001:DB8::0:1]"}, headers=admin
    )
    assert v6.json()["address"] == "2001:db8::1"
    dns = await harness.client.post(
        "/api/v1/hosts", json={"name": "dns", "address": "Web-3.Example.COM."}, headers=admin
    )
    assert dns.json()["address"] == "web-3.example.com"


async def test_patch_rejects_bad_and_unknown_fields(harness: Harness) -> None:
    admin = await harness.role_headers(Role.ADMIN)
    await harness.client.post("/api/v1/hosts", json=WEB, headers=admin)
    for body, field in (
        ({"port": -1}, "port"),
        ({"name": "renamed"}, "name"),
        ({"address": "a b"}, "address"),
    ):
        response = await harness.client.patch("/api/v1/hosts/web-1", json=body, headers=admin)
        assert response.status_code == 422
        assert any(field in item["loc"] for item in response.json()["detail"])
    missing = await harness.client.patch("/api/v1/hosts/ghost", json={"port": 23}, headers=admin)
    assert missing.status_code == 404


async def test_operator_cannot_write_the_inventory(harness: Harness) -> None:
    operator = await harness.role_headers(Role.OPERATOR)
    response = await harness.client.post("/api/v1/hosts", json=WEB, headers=operator)
    assert response.status_code == 403
    assert response.json()["error"] == "Forbidden"


async def test_bulk_import_is_all_or_nothing(harness: Harness) -> None:
    admin = await harness.role_headers(Role.ADMIN)
    hosts = [{"name": f"imp-{i}", "address": f"10.1.0.{i}", "tags": ["imported"]} for i in range(3)]
    created = await harness.client.post(
        "/api/v1/hosts/import", json={"hosts": hosts}, headers=admin
    )
    assert created.status_code == 200
    assert created.json() == {"created": ["imp-0", "imp-1", "imp-2"], "updated": [], "skipped": []}
    changed = [{**hosts[0], "port": 2200}, {"name": "imp-9", "address": "10.1.0.9"}]
    updated = await harness.client.post(
        "/api/v1/hosts/import", json={"hosts": changed, "on_conflict": "update"}, headers=admin
    )
    assert updated.json() == {"created": ["imp-9"], "updated": ["imp-0"], "skipped": []}
    assert (await harness.client.get("/api/v1/hosts/imp-0", headers=admin)).json()["port"] == 2200
    conflict = await harness.client.post(
        "/api/v1/hosts/import",
        json={
            "hosts": [{"name": "new-1", "address": "10.2.0.1"}, hosts[1]],
            "on_conflict": "error",
        },
        headers=admin,
    )
    assert conflict.status_code == 409
    assert (await harness.client.get("/api/v1/hosts/new-1", headers=admin)).status_code == 404
    twice = await harness.client.post(
        "/api/v1/hosts/import", json={"hosts": [hosts[0], hosts[0]]}, headers=admin
    )
    assert twice.status_code == 409
    invalid = await harness.client.post(
        "/api/v1/hosts/import", json={"hosts": [{"name": "x", "address": "a b"}]}, headers=admin
    )
    assert invalid.status_code == 422


async def test_ssh_fields_are_validated(harness: Harness) -> None:
    admin = await harness.role_headers(Role.ADMIN)
    good = {
        "name": "jumpy",
        "address": "10.0.0.9",
        "key_file": "~/.ssh/id_ed25519",
        "proxy_jump": "ops@bastion:2222,gw",
        "trust_on_first_use": True,
        "host_key": (
            "ssh-ed25519 "
            "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl comment"
        ),
    }
    created = await harness.client.post("/api/v1/hosts", json=good, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["host_key"].count(" ") == 1  # the comment is dropped
    for field, value in (
        ("key_file", "relative/key"),
        ("proxy_jump", "-oProxyCommand=x"),
        ("host_key", "not a key"),
        ("key_file", "/etc/key\nx"),
    ):
        response = await harness.client.post(
            "/api/v1/hosts", json={**good, "name": "bad", field: value}, headers=admin
        )
        assert response.status_code == 422, (field, value)
        assert any(field in item["loc"] for item in response.json()["detail"])
    cleared = await harness.client.patch(
        "/api/v1/hosts/jumpy", json={"proxy_jump": None, "host_key": None}, headers=admin
    )
    assert cleared.json()["proxy_jump"] is None
    assert cleared.json()["host_key"] is None
    assert cleared.json()["key_file"] == "~/.ssh/id_ed25519"
