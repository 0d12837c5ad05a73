"""The ``audit:`` section of the config: the log, its checkpoints and where it is sent.

```yaml
audit:
  enabled: true                 # agent actions, policy decisions, the hash-chained log
  checkpoint_every: 1000        # sign the chain's head after this many entries...
  checkpoint_interval_s: 60     # ...or this long after the last checkpoint
  sinks:
    - {type: syslog, address: "127.0.0.1:514", protocol: udp}   # RFC 5424
    - {type: webhook, url: "https://siem.example/ingest", headers: {Authorization: env.SIEM}}
```
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SinkConfig(_Model):
    type: Literal["syslog", "webhook"]
    address: str | None = None  # syslog: host:port
    protocol: Literal["udp", "tcp"] = "udp"
    app_name: str = "tollway"
    facility: int = Field(default=13, ge=0, le=23)  # 13: log audit
    url: str | None = None  # webhook
    headers: dict[str, str] = Field(default_factory=dict)  # values may be env.NAME
    timeout_s: float = Field(default=10, gt=0, le=300)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            host, _, port = value.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError("an address is host:port, e.g. 127.0.0.1:514")
        return value


class AuditConfig(_Model):
    enabled: bool = True
    checkpoint_every: int = Field(default=1000, ge=1)
    checkpoint_interval_s: float = Field(default=60, gt=0)
    flush_interval_ms: int = Field(default=500, ge=10)
    queue_size: int = Field(default=50_000, ge=100)
    body_queue_mb: float = Field(default=64, gt=0)  # request bodies waiting to be read
    sinks: list[SinkConfig] = Field(default_factory=list)

    @field_validator("sinks")
    @classmethod
    def _complete(cls, sinks: list[SinkConfig]) -> list[SinkConfig]:
        for sink in sinks:
            if sink.type == "syslog" and sink.address is None:
                raise ValueError("a syslog sink needs address: host:port")
            if sink.type == "webhook" and not sink.url:
                raise ValueError("a webhook sink needs url")
        return sinks
