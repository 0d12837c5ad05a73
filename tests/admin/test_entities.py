"""The admin API: auth, CRUD, validation errors that name the field, rotation."""

from __future__ import annotations

from pathlib import Path

from inprocess import running

MSG = b'{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}'


async def test_admin_needs_the_token(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        r = await gw.client.get("/api/virtual-keys")
        assert r.status_code == 401 and "admin token" in r.json()["error"]["message"]
        r = await gw.client.get("/api/virtual-keys", headers={"authorization": "Bearer wrong"})
        assert r.status_code == 401


async def test_key_crud_and_secret_shown_once(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        r = await gw.client.post("/api/virtual-keys", json={"name": "ci"}, headers=gw.admin)
        assert r.status_code == 201
        created = r.json()
        assert created["key"].startswith("tw-") and len(created["key"]) >= 35
        assert "key_hash" not in created
        listed = (await gw.client.get("/api/virtual-keys", headers=gw.admin)).json()
        assert [k["name"] for k in listed] == ["ci"] and "key" not in listed[0]
        shown = (await gw.client.get(f"/api/virtual-keys/{created['id']}", headers=gw.admin)).json()
        assert shown["id"] == created["id"] and "key" not in shown
        rows = await gw.services.store.query("SELECT doc FROM entities")
        assert created["key"] not in rows[0]["doc"]  # stored hashed only
        r = await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": created["key"]})
        assert r.status_code == 200


async def test_bad_payload_is_422_naming_the_field(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        bad = {"name": "x", "budgets": [{"max_limit": 5, "reset_duration": "30 days"}]}
        r = await gw.client.post("/api/virtual-keys", json=bad, headers=gw.admin)
        assert r.status_code == 422
        problem = r.json()["error"]["fields"][0]
        assert problem["field"] == "budgets.0.reset_duration" and "duration" in problem["message"]
        r = await gw.client.post("/api/virtual-keys", json={"name": "x", "nope": 1},
                                 headers=gw.admin)  # fmt: skip
        assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "nope"


async def test_team_and_customer_ownership(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        cus = (
            await gw.client.post("/api/customers", json={"name": "acme"}, headers=gw.admin)
        ).json()
        team = await gw.client.post("/api/teams", json={"name": "t", "customer_id": cus["id"]},
                                    headers=gw.admin)  # fmt: skip
        assert team.status_code == 201
        both = {"name": "k", "team_id": team.json()["id"], "customer_id": cus["id"]}
        r = await gw.client.post("/api/virtual-keys", json=both, headers=gw.admin)
        assert r.status_code == 400 and "never both" in r.json()["error"]["message"]
        r = await gw.client.post("/api/teams", json={"name": "u", "customer_id": "cus_missing"},
                                 headers=gw.admin)  # fmt: skip
        assert r.status_code == 400 and "customer_id" in r.json()["error"]["message"]


async def test_rotate_keeps_id_and_counters(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        created = (await gw.client.post("/api/virtual-keys", json={
            "name": "r", "budgets": [{"max_limit": 100, "reset_duration": "1d"}]},
            headers=gw.admin)).json()  # fmt: skip
        await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": created["key"]})
        status = (await gw.client.get(f"/api/virtual-keys/{created['id']}/status",
                                      headers=gw.admin)).json()  # fmt: skip
        spent = status["budgets"][0]["spent"]
        assert float(spent) > 0
        rotated = (await gw.client.post(f"/api/virtual-keys/{created['id']}/rotate",
                                        headers=gw.admin)).json()  # fmt: skip
        assert rotated["id"] == created["id"] and rotated["key"] != created["key"]
        old = await gw.client.post(
            "/v1/messages", content=MSG, headers={"x-api-key": created["key"]}
        )
        assert old.status_code == 401
        new = await gw.client.post(
            "/v1/messages", content=MSG, headers={"x-api-key": rotated["key"]}
        )
        assert new.status_code == 200
        status = (await gw.client.get(f"/api/virtual-keys/{created['id']}/status",
                                      headers=gw.admin)).json()  # fmt: skip
        assert float(status["budgets"][0]["spent"]) > float(spent)


async def test_providers_are_redacted_and_replaceable(tmp_path: Path) -> None:
    config = (
        "providers:\n  openai: {base_url: 'http://127.0.0.1:9/v1', keys: [{value: sk-secret}]}\n"
    )
    async with running(tmp_path, config) as gw:
        r = await gw.client.get("/api/providers", headers=gw.admin)
        assert "sk-secret" not in r.text and r.json()[0]["keys"][0]["value"] == "<redacted>"
        r = await gw.client.put("/api/providers", json={"simulated": {}}, headers=gw.admin)
        assert r.status_code == 200 and [p["name"] for p in r.json()] == ["simulated"]
        key = await gw.key()
        r = await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": key})
        assert r.status_code == 200


async def test_openapi_document(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        doc = (await gw.client.get("/api/openapi.json", headers=gw.admin)).json()
        for path in ("/api/virtual-keys", "/api/teams", "/api/customers", "/api/budgets",
                     "/api/virtual-keys/{key_id}/status", "/api/providers"):  # fmt: skip
            assert path in doc["paths"], path
