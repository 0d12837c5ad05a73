from __future__ import annotations
import httpx


def test_up(gateway_server, mock_upstream):
    k = gateway_server.create_key("a")
    print(k)
    with httpx.Client(timeout=10) as c:
        r = c.post(
            gateway_server.base_url + "/v1/messages?beta=true",
            headers={"x-api-key": k["key"], "anthropic-version": "2023-06-01"},
            json={
                "model": "claude-opus-4-5",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "hi"}],
            },
        )
        print(r.status_code, r.headers, r.text)
    for req in mock_upstream.requests:
        print(req.method, req.raw_path, req.headers, req.body)
    print(gateway_server.logs())
