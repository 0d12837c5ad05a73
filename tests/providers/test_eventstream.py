"""The event stream codec: frames written here parse with botocore, checksums and all."""

from __future__ import annotations

import base64
import json

import pytest
from botocore.eventstream import EventStreamBuffer

from cloud_fakes import bedrock_chunk
from tollway.errors import UpstreamError
from tollway.providers.eventstream import (
    EventStreamDecoder,
    chunk_frame,
    exception_frame,
    frame_to_sse,
)


def test_written_frames_parse_with_botocore() -> None:
    event = b'{"type":"message_stop"}'
    buf = EventStreamBuffer()
    buf.add_data(chunk_frame(event) + exception_frame("throttlingException", "slow down"))
    first, second = list(buf)
    assert first.headers == {":event-type": "chunk", ":content-type": "application/json",
                             ":message-type": "event"}  # fmt: skip
    assert base64.b64decode(json.loads(first.payload)["bytes"]) == event
    assert second.headers[":exception-type"] == "throttlingException"
    assert json.loads(second.payload) == {"message": "slow down"}


def test_decoder_reassembles_frames_cut_anywhere() -> None:
    data = b"".join(bedrock_chunk({"type": "ping", "n": i}) for i in range(3))
    decoder = EventStreamDecoder("b")
    seen = []
    for i in range(0, len(data), 7):
        seen += [frame_to_sse(h, p, "b") for h, p in decoder.feed(data[i : i + 7])]
    decoder.finish()
    assert seen == [f'event: ping\ndata: {{"type": "ping", "n": {i}}}\n\n'.encode()
                    for i in range(3)]  # fmt: skip


def test_a_corrupt_frame_is_an_upstream_error() -> None:
    data = bytearray(bedrock_chunk({"type": "ping"}))
    data[-1] ^= 0xFF
    with pytest.raises(UpstreamError, match="corrupt event stream frame"):
        list(EventStreamDecoder("b").feed(bytes(data)))
