"""Audit entries to a SIEM: RFC 5424 syslog over UDP and TCP, and a webhook (loopback)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from aiohttp import web
from audit_scenarios import T0, record

from tollway.audit.log import AuditLog
from tollway.audit.settings import AuditConfig, SinkConfig
from tollway.storage.sqlite import SQLiteStore

_HEADER = re.compile(
    r"^<110>1 2027-01-15T08:00:0(\d)\.000000Z \S+ tollway - request "
    r'\[tollway@32473 seq="(\d+)" hash="([0-9a-f]{64})" actor="alice" subject="(r\d)"\] '
)  # 110 = facility 13 (log audit) * 8 + severity 6 (informational)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.got.put_nowait(data)


async def _log_with(tmp_path: Path, sinks: list[SinkConfig]) -> AuditLog:
    store = SQLiteStore(f"sqlite:///{tmp_path / 'a.db'}")
    await store.open()
    audit = AuditLog(store, AuditConfig(sinks=sinks))
    await audit.start()
    for i in range(2):
        audit.submit(record(f"r{i}", T0 + i, "s"), "anthropic", b"{}", None)
    await audit.flush()
    return audit


def _check(message: bytes, index: int) -> None:
    text = message.decode()
    head = _HEADER.match(text)
    assert head is not None, text
    assert head.groups()[0] == str(index) and head.groups()[1] == str(index + 1)
    doc = json.loads(message[head.end() :].removeprefix(b"\xef\xbb\xbf"))
    assert doc["seq"] == index + 1 and doc["hash"] == head.groups()[2]
    assert doc["doc"]["id"] == f"r{index}" and doc["kind"] == "request"


async def test_syslog_udp_and_tcp(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    transport, udp = await loop.create_datagram_endpoint(_Udp, local_addr=("127.0.0.1", 0))
    udp_port = transport.get_extra_info("sockname")[1]
    frames: asyncio.Queue[bytes] = asyncio.Queue()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:  # octet counting (RFC 6587): "LEN SP MSG"
            size = await reader.readuntil(b" ")
            frames.put_nowait(await reader.readexactly(int(size)))

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    tcp_port = server.sockets[0].getsockname()[1]
    audit = await _log_with(tmp_path, [
        SinkConfig(type="syslog", address=f"127.0.0.1:{udp_port}", protocol="udp"),
        SinkConfig(type="syslog", address=f"127.0.0.1:{tcp_port}", protocol="tcp"),
    ])  # fmt: skip
    try:
        for i in range(2):
            _check(await asyncio.wait_for(udp.got.get(), 5), i)
            _check(await asyncio.wait_for(frames.get(), 5), i)
    finally:
        await audit.stop()
        await audit.store.close()
        transport.close()
        server.close()


async def test_webhook_gets_the_entries_and_a_failure_is_retried(tmp_path: Path) -> None:
    got: list[dict[str, Any]] = []
    statuses = [503, 200]

    async def ingest(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Bearer siem-token"
        status = statuses.pop(0) if statuses else 200
        if status == 200:
            got.append(await request.json())
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/ingest", ingest)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    sink = SinkConfig(type="webhook", url=f"http://127.0.0.1:{port}/ingest",
                      headers={"Authorization": "Bearer siem-token"})  # fmt: skip
    audit = await _log_with(tmp_path, [sink])
    try:
        assert got == [] and len(audit.forwarder.backlog[audit.forwarder.sinks[0].name]) == 2
        audit.submit(record("r2", T0 + 2, "s"), "anthropic", b"{}", None)
        await audit.flush()  # the backlog goes first, then the new entry
        assert [[e["seq"] for e in batch["entries"]] for batch in got] == [[1, 2, 3]]
    finally:
        await audit.stop()
        await audit.store.close()
        await runner.cleanup()
