"""Where the audit log goes besides the database: syslog (RFC 5424) and a webhook.

Entries are sent after they are committed, already redacted. A sink that fails keeps its
entries (up to ``MAX_BACKLOG``) and tries again on the next flush.

Syslog: one message per entry, ``<PRI>1 TIMESTAMP HOST tollway - KIND [tollway@32473
seq=".." hash=".."] {json}``; over UDP one datagram each, over TCP octet-counted frames
(RFC 6587). The webhook gets ``POST {"entries": [...]}`` as JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from datetime import UTC, datetime
from typing import Protocol

import httpx

from tollway.audit.chain import Entry
from tollway.audit.settings import SinkConfig

log = logging.getLogger("tollway.audit")
MAX_BACKLOG = 10_000
_ENTERPRISE = 32473  # the example private enterprise number of RFC 5612
_WARNING, _INFO = 4, 6


class Sink(Protocol):
    name: str

    async def send(self, entries: list[Entry]) -> None: ...
    async def close(self) -> None: ...


def _sd_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def rfc5424(entry: Entry, app_name: str, facility: int, host: str) -> bytes:
    severity = _WARNING if entry.kind in ("policy.deny", "action.denied") else _INFO
    stamp = datetime.fromtimestamp(entry.at, UTC).isoformat(timespec="microseconds")
    stamp = stamp.replace("+00:00", "Z")
    msgid = entry.kind[:32] or "-"
    sd = (f'[tollway@{_ENTERPRISE} seq="{entry.seq}" hash="{entry.hash}" '
          f'actor="{_sd_escape(entry.actor)}" subject="{_sd_escape(entry.subject)}"]')  # fmt: skip
    pri = facility * 8 + severity
    head = f"<{pri}>1 {stamp} {host[:255] or '-'} {app_name[:48]} - {msgid} {sd} "
    return head.encode() + b"\xef\xbb\xbf" + json.dumps(entry.public(), sort_keys=True).encode()


class SyslogSink:
    def __init__(self, config: SinkConfig) -> None:
        assert config.address is not None
        host, _, port = config.address.rpartition(":")
        self.name = f"syslog {config.protocol}://{config.address}"
        self.host, self.port, self.config = host.strip("[]"), int(port), config
        self.hostname = socket.gethostname()
        self._writer: asyncio.StreamWriter | None = None

    def _messages(self, entries: list[Entry]) -> list[bytes]:
        return [rfc5424(e, self.config.app_name, self.config.facility, self.hostname)
                for e in entries]  # fmt: skip

    async def send(self, entries: list[Entry]) -> None:
        messages = self._messages(entries)
        if self.config.protocol == "udp":
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, remote_addr=(self.host, self.port)
            )
            try:
                for m in messages:
                    transport.sendto(m)
            finally:
                transport.close()
            return
        writer = await self._connection()
        try:
            writer.write(b"".join(str(len(m)).encode() + b" " + m for m in messages))
            await asyncio.wait_for(writer.drain(), self.config.timeout_s)
        except (OSError, TimeoutError):
            writer.close()
            self._writer = None
            raise

    async def _connection(self) -> asyncio.StreamWriter:
        if self._writer is not None and not self._writer.is_closing():
            return self._writer
        opened = asyncio.open_connection(self.host, self.port)
        _, fresh = await asyncio.wait_for(opened, self.config.timeout_s)
        self._writer = fresh
        return fresh

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class WebhookSink:
    def __init__(self, config: SinkConfig, headers: dict[str, str]) -> None:
        assert config.url is not None
        self.name = f"webhook {config.url}"
        self.url = config.url
        self._client = httpx.AsyncClient(timeout=config.timeout_s, headers=headers)

    async def send(self, entries: list[Entry]) -> None:
        resp = await self._client.post(self.url, json={"entries": [e.public() for e in entries]})
        if resp.status_code >= 300:
            raise OSError(f"{self.url} answered {resp.status_code}")

    async def close(self) -> None:
        await self._client.aclose()


def build_sinks(configs: list[SinkConfig]) -> list[Sink]:
    from tollway.config import resolve_secret

    out: list[Sink] = []
    for c in configs:
        if c.type == "syslog":
            out.append(SyslogSink(c))
        else:
            out.append(WebhookSink(c, {k: resolve_secret(v) for k, v in c.headers.items()}))
    return out


class Forwarder:
    """Sends committed entries to every sink, keeping a bounded backlog for a failing one."""

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks
        self.backlog: dict[str, list[Entry]] = {s.name: [] for s in sinks}
        self.dropped = 0

    async def forward(self, entries: list[Entry]) -> None:
        for sink in self.sinks:
            waiting = self.backlog[sink.name] + entries
            if len(waiting) > MAX_BACKLOG:
                self.dropped += len(waiting) - MAX_BACKLOG
                waiting = waiting[-MAX_BACKLOG:]
            if not waiting:
                continue
            try:
                await sink.send(waiting)
            except (OSError, TimeoutError, httpx.HTTPError) as exc:
                self.backlog[sink.name] = waiting
                log.warning("audit sink %s failed (%s); %d entries wait for the next try",
                            sink.name, exc, len(waiting))  # fmt: skip
            else:
                self.backlog[sink.name] = []

    async def close(self) -> None:
        for sink in self.sinks:
            await sink.close()
