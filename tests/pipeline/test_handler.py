"""The request path in-process, against the simulated provider."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inprocess import Running, running
from tollway.config import Budget, ProviderGrant

MSG = b'{"model":"claude-sonnet-4-5","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}'
CHAT = b'{"model":"gpt-5","messages":[{"role":"user","content":"hi"}]}'


async def test_anthropic_and_openai_round_trip(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        key = await gw.key()
        r = await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": key})
        assert r.status_code == 200 and r.json()["type"] == "message"
        r = await gw.client.post(
            "/openai/v1/chat/completions", content=CHAT, headers={"authorization": f"Bearer {key}"}
        )
        assert r.status_code == 200 and r.json()["object"] == "chat.completion"


async def test_keys_accepted_from_every_header(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        key = await gw.key()
        for header in ({"x-api-key": key}, {"authorization": f"Bearer {key}"},
                       {"api-key": key}, {"x-goog-api-key": key}):  # fmt: skip
            r = await gw.client.post("/v1/messages", content=MSG, headers=header)
            assert r.status_code == 200, header


async def test_401_in_each_dialect(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        r = await gw.client.post("/v1/messages", content=MSG)
        body = r.json()
        assert r.status_code == 401 and body["type"] == "error"
        assert body["error"]["type"] == "authentication_error"
        assert "ANTHROPIC_API_KEY" in body["error"]["message"]
        r = await gw.client.post(
            "/v1/chat/completions", content=CHAT, headers={"authorization": "Bearer tw-nope"}
        )
        err = r.json()["error"]
        assert r.status_code == 401 and err["code"] == "invalid_api_key"
        assert "not known" in err["message"]


async def test_revoked_and_expired_keys_are_refused(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        key = await gw.key("old", expires_at="2020-01-01T00:00:00Z")
        r = await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": key})
        assert r.status_code == 401 and "expired" in r.json()["error"]["message"]
        key2 = await gw.key("bob")
        r = await gw.client.delete("/api/virtual-keys/bob", headers=gw.admin)
        assert r.status_code == 200
        r = await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": key2})
        assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]


async def test_model_not_allowed_is_403_naming_what_is_allowed(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        grant = ProviderGrant(provider="simulated", allowed_models=["claude-haiku-*"])
        key = await gw.key(provider_configs=[grant])
        r = await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": key})
        assert r.status_code == 403
        message = r.json()["error"]["message"]
        assert "claude-sonnet-4-5" in message and "claude-haiku-*" in message
        ok = MSG.replace(b"claude-sonnet-4-5", b"claude-haiku-4-5")
        r = await gw.client.post("/v1/messages", content=ok, headers={"x-api-key": key})
        assert r.status_code == 200


async def test_empty_allowlist_allows_nothing(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        key = await gw.key(
            provider_configs=[ProviderGrant(provider="simulated", allowed_models=[])]
        )
        r = await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": key})
        assert r.status_code == 403


async def test_bad_input_gets_a_dialect_error_and_is_logged(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        key = await gw.key()
        r = await gw.client.post("/v1/messages", content=b"{not json", headers={"x-api-key": key})
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
        r = await gw.client.post("/v1/chat/completions", content=b"[]",
                                 headers={"authorization": f"Bearer {key}"})  # fmt: skip
        assert r.status_code == 400 and "error" in r.json()
        r = await gw.client.post("/v1/messages", content=b'{"max_tokens": 5}',
                                 headers={"x-api-key": key})  # fmt: skip
        assert r.status_code == 400 and "model" in r.json()["error"]["message"]
        r = await gw.client.get("/v1/messages", headers={"x-api-key": key})
        assert r.status_code == 405
        await gw.services.writer.flush()
        rows = await gw.services.store.query("SELECT status FROM requests ORDER BY started_at")
        assert [row["status"] for row in rows] == [400, 400, 400]


async def test_a_body_the_bound_cannot_read_goes_on_only_where_no_bound_is_needed(
    tmp_path: Path,
) -> None:
    """Routing and the bound share one parse; a body whose bound fields have the wrong
    type (``tools`` not a list) still routes for a key without a budget, which never
    needs the bound, and is refused with a 400 that says why for a key with one."""
    odd = (b'{"model":"claude-sonnet-4-5","max_tokens":50,"tools":"none",'
           b'"messages":[{"role":"user","content":"hi"}]}')  # fmt: skip
    async with running(tmp_path) as gw:
        free = await gw.key("free")
        capped = await gw.key("capped", budgets=[Budget(max_limit="5", reset_duration="1d")])
        r = await gw.client.post("/v1/messages", content=odd, headers={"x-api-key": free})
        assert r.status_code == 200 and r.json()["type"] == "message"
        r = await gw.client.post("/v1/messages", content=odd, headers={"x-api-key": capped})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["message"].startswith(
            "the request body is not valid JSON for this API (Expected `array | null`, got "
            "`str` - at `$.tools`)"
        )
        r = await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": capped})
        assert r.status_code == 200  # the same key with a body it can bound


async def test_provider_prefix_rewrites_only_the_model(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        key = await gw.key()
        body = b'{"model": "simulated/claude-x",  "max_tokens": 5, "z": 1.10, "messages": []}'
        r = await gw.client.post("/v1/messages", content=body, headers={"x-api-key": key})
        assert r.status_code == 200 and r.json()["model"] == "claude-x"


async def test_upstream_errors_pass_through_with_retry_after(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        key = await gw.key()
        headers = {"x-api-key": key, "x-tollway-simulate": "status=429; retry-after=7"}
        r = await gw.client.post("/v1/messages", content=MSG, headers=headers)
        assert r.status_code == 429 and r.headers["retry-after"] == "7"
        assert r.json()["error"]["type"] == "rate_limit_error"


async def test_models_listing_in_both_shapes(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        key = await gw.key()
        r = await gw.client.get(
            "/v1/models", headers={"x-api-key": key, "anthropic-version": "2023-06-01"}
        )
        assert r.status_code == 200 and r.json()["data"][0]["type"] == "model"
        r = await gw.client.get("/v1/models", headers={"authorization": f"Bearer {key}"})
        assert r.json()["object"] == "list"


async def test_health_and_head(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        assert (await gw.client.get("/health")).json() == {"status": "ok"}
        assert (await gw.client.head("/")).status_code == 200
        r = await gw.client.get("/nope", headers={"anthropic-version": "2023-06-01"})
        assert r.status_code == 404 and r.json()["type"] == "error"


async def test_stream_cut_is_billed_as_partial(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        key = await gw.key()
        body = MSG.replace(b'"max_tokens":50', b'"max_tokens":50,"stream":true')
        headers = {"x-api-key": key, "x-tollway-simulate": "cut-after=5"}
        r = await gw.client.post("/v1/messages", content=body, headers=headers)
        assert r.status_code == 200 and "event: error" in r.text
        await gw.services.writer.flush()
        rows = await gw.services.store.query(
            "SELECT partial, output_tokens, error_type FROM requests"
        )
        assert rows[0]["partial"] == 1 and rows[0]["output_tokens"] >= 1
        assert rows[0]["error_type"] == "upstream_stream_error"


async def test_metrics_count_requests_and_cost(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        key = await gw.key()
        await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": key})
        text = (await gw.client.get("/metrics")).text
        assert 'tollway_requests_total{model="claude-sonnet-4-5",provider="simulated"' in text
        assert "tollway_cost_usd_total" in text and "tollway_log_queue" in text


async def test_count_tokens_is_governed_but_free(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        key = await gw.key("counter", budgets=[Budget(max_limit="0.000001", reset_duration="1d")])
        r = await gw.client.post(
            "/v1/messages/count_tokens", content=MSG, headers={"x-api-key": key}
        )
        # A budget too small for any message still counts tokens.
        assert r.status_code == 200 and r.json()["input_tokens"] > 0
        r = await gw.client.post("/v1/messages/count_tokens", content=MSG)
        assert r.status_code == 401
        await gw.services.writer.flush()
        rows = await gw.services.store.query(
            "SELECT cost_total_pico, input_tokens FROM requests WHERE status = 200"
        )
        assert [(row["cost_total_pico"], row["input_tokens"]) for row in rows] == [(0, 0)]


async def test_provider_key_never_reaches_client_or_log(tmp_path: Path) -> None:
    secret = "sk-ant-never-show-this-0123456789"
    config = (
        "providers:\n  anthropic:\n    base_url: http://127.0.0.1:9\n"
        f"    keys: [{{name: a, value: {secret}}}, {{name: b, value: {secret}-2}}]\n"
    )
    async with running(tmp_path, config) as gw:
        key = await gw.key()
        r = await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": key})
        assert r.status_code == 502 and "cannot reach provider anthropic" in r.text
        assert secret not in r.text
        await gw.services.writer.flush()
        rows = await gw.services.store.query("SELECT * FROM requests")
        attempts = await gw.services.store.query("SELECT * FROM attempts ORDER BY idx")
        assert secret not in repr(rows) + repr(attempts)
        assert [a["key_name"] for a in attempts] in (["a", "b"], ["b", "a"])  # failed over
        providers = await gw.client.get("/api/providers", headers=gw.admin)
        assert secret not in providers.text


async def _logs(gw: Running, **params: Any) -> list[dict[str, Any]]:
    await gw.services.writer.flush()
    r = await gw.client.get("/api/logs", params=params, headers=gw.admin)
    assert r.status_code == 200, r.text
    return list(r.json()["data"])


async def test_final_answers_tell_agents_not_to_retry(tmp_path: Path) -> None:
    """Claude Code retries a 401 for three minutes unless told not to; 401/402/403/404 are
    answers that retrying cannot change."""
    async with running(tmp_path) as gw:
        r = await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": "tw-nope"})
        assert r.status_code == 401 and r.headers["x-should-retry"] == "false"
        limited = await gw.key("limited", provider_configs=[ProviderGrant(
            provider="*", allowed_models=["claude-haiku-*"])])  # fmt: skip
        r = await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": limited})
        assert r.status_code == 403 and r.headers["x-should-retry"] == "false"
        assert "virtual key 'limited' may not use model 'claude-sonnet-4-5'" in r.text
        r = await gw.client.post("/v1/v1/messages", content=MSG, headers={"x-api-key": limited})
        assert r.status_code == 404 and r.headers["x-should-retry"] == "false"


async def test_refused_requests_are_logged_with_what_they_asked_for(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        session = {"x-claude-code-session-id": "sess-9", "user-agent": "claude-cli/2.1.197"}
        await gw.client.post(
            "/v1/messages", content=MSG, headers={"x-api-key": "tw-bad", **session}
        )
        grant = ProviderGrant(provider="*", allowed_models=["gpt-*"])
        key = await gw.key("bob", provider_configs=[grant])
        await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": key, **session})
        await gw.client.post("/v1/messages", content=b"{not json", headers={"x-api-key": key})
        rows = {r["status"]: r for r in await _logs(gw)}
        assert set(rows) == {400, 401, 403}
        for status in (401, 403):
            row = rows[status]
            assert row["requested_model"] == "claude-sonnet-4-5", row
            assert row["session_id"] == "sess-9" and row["client"] == "claude-code"
            assert row["endpoint"] == "/v1/messages" and row["surface"] == "anthropic"
        assert rows[401]["vk_name"] is None and rows[403]["vk_name"] == "bob"
        assert rows[400]["vk_name"] == "bob" and rows[400]["error_type"] == "invalid_request_error"


async def test_unknown_path_gets_the_fix_and_is_logged_and_counted(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        key = await gw.key("carol")
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
        r = await gw.client.post("/v1/v1/messages", content=MSG, headers=headers)
        assert r.status_code == 404 and r.json()["type"] == "error"
        message = r.json()["error"]["message"]
        assert "drop /v1 from ANTHROPIC_BASE_URL (use http://gw)" in message
        r = await gw.client.post("/v1/v1/chat/completions", content=CHAT,
                                 headers={"authorization": f"Bearer {key}"})  # fmt: skip
        assert r.json()["error"]["code"] == "unknown_url"
        assert "use http://gw/v1" in r.json()["error"]["message"]
        rows = await _logs(gw, status=404)
        assert {row["endpoint"] for row in rows} == {"/v1/v1/messages", "/v1/v1/chat/completions"}
        assert {row["vk_name"] for row in rows} == {"carol"}
        metrics = (await gw.client.get("/metrics")).text
        assert 'tollway_unknown_path_requests_total{hint="doubled_v1"} 2.0' in metrics


async def test_a_bug_is_answered_in_the_dialect_and_logged(
    tmp_path: Path, monkeypatch: Any, caplog: Any
) -> None:
    async with running(tmp_path) as gw:
        key = await gw.key("buggy")

        def broken(*_args: Any, **_kwargs: Any) -> Any:
            raise RuntimeError("a bug in routing")

        monkeypatch.setattr(gw.services.gateway.router, "plan", broken)
        r = await gw.client.post("/v1/messages", content=MSG, headers={"x-api-key": key})
        assert r.status_code == 500
        body = r.json()
        assert body["type"] == "error" and body["error"]["type"] == "api_error"
        assert "the gateway failed on this request (request id " in body["error"]["message"]
        r = await gw.client.post("/openai/v1/chat/completions", content=CHAT,
                                 headers={"authorization": f"Bearer {key}"})  # fmt: skip
        assert r.status_code == 500 and r.json()["error"]["type"] == "server_error"
        assert "RuntimeError: a bug in routing" in caplog.text
        await gw.services.writer.flush()
        rows = await gw.services.store.query(
            "SELECT vk_name, status, error_type FROM requests ORDER BY started_at"
        )
        got = [(row["vk_name"], row["status"], row["error_type"]) for row in rows]
        assert got == [("buggy", 500, "api_error")] * 2
