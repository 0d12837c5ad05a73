from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from tollway.sse import SSEEvent, SSEParser

# The event sequence Claude Code received for a thinking + tool-use turn (wire capture
# claude_tool_think.jsonl, seq 3), trimmed to its shape.
CLAUDE_TURN: list[tuple[str, dict[str, object]]] = [
    ("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 19406}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0}),
    ("content_block_delta", {"type": "content_block_delta", "delta": {"thinking": "Use Bash."}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("ping", {"type": "ping"}),
    ("content_block_delta", {"type": "content_block_delta", "delta": {"text": "I'll run it."}}),
    ("message_delta", {"type": "message_delta", "usage": {"output_tokens": 5}}),
    ("message_stop", {"type": "message_stop"}),
]


def encode(events: list[tuple[str, dict[str, object]]], newline: bytes = b"\n") -> bytes:
    out = b""
    for name, data in events:
        out += b"event: " + name.encode() + newline
        out += b"data: " + json.dumps(data).encode() + newline + newline
    return out


def expected(events: list[tuple[str, dict[str, object]]]) -> list[SSEEvent]:
    return [SSEEvent(name, json.dumps(data).encode()) for name, data in events]


def parse(chunks: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.flush())
    return events


def test_named_events_in_one_chunk() -> None:
    assert parse([encode(CLAUDE_TURN)]) == expected(CLAUDE_TURN)


def test_byte_at_a_time() -> None:
    stream = encode(CLAUDE_TURN)
    assert parse([stream[i : i + 1] for i in range(len(stream))]) == expected(CLAUDE_TURN)


def test_feed_returns_events_as_soon_as_they_end() -> None:
    parser = SSEParser()
    assert parser.feed(b"event: ping\ndata: {}\n") == []
    assert parser.feed(b"\n") == [SSEEvent("ping", b"{}")]
    assert parser.flush() == []


def test_crlf_and_cr_line_endings() -> None:
    for newline in (b"\r\n", b"\r"):
        assert parse([encode(CLAUDE_TURN, newline)]) == expected(CLAUDE_TURN)


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    events = parse([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"])
    assert events == [SSEEvent(None, b"a\nb")]


def test_cr_at_chunk_end_dispatches_without_waiting() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: x\r\r") == [SSEEvent(None, b"x")]
    assert parser.feed(b"\ndata: y\r\r") == [SSEEvent(None, b"y")]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert parse([b"data: one\ndata:two\ndata:  three\ndata\n\n"]) == [
        SSEEvent(None, b"one\ntwo\n three\n")
    ]


def test_comments_ids_and_unknown_fields_are_ignored() -> None:
    stream = b": keep-alive\nid: 7\nretry: 100\nfoo: bar\nevent: e\ndata: d\n\n:\n\n"
    assert parse([stream]) == [SSEEvent("e", b"d")]


def test_event_without_data_is_not_dispatched_and_name_resets() -> None:
    assert parse([b"event: lonely\n\ndata: x\n\n"]) == [SSEEvent(None, b"x")]


def test_empty_data_field_still_dispatches() -> None:
    assert parse([b"data:\n\n"]) == [SSEEvent(None, b"")]


def test_empty_event_name_is_none() -> None:
    assert parse([b"event:\ndata: x\n\n"]) == [SSEEvent(None, b"x")]


def test_openai_done_sentinel_is_plain_data() -> None:
    assert parse([b'data: {"choices":[]}\n\ndata: [DONE]\n\n']) == [
        SSEEvent(None, b'{"choices":[]}'),
        SSEEvent(None, b"[DONE]"),
    ]


def test_leading_bom_is_stripped_even_when_split() -> None:
    bom = b"\xef\xbb\xbf"
    assert parse([bom[:1], bom[1:] + b"data: x\n\n"]) == [SSEEvent(None, b"x")]
    # Only the stream's first line may start with a BOM; later it is part of a field name.
    assert parse([b"data: x\n\n" + bom + b"data: y\n\n"]) == [SSEEvent(None, b"x")]


def test_flush_returns_an_unterminated_event_and_resets() -> None:
    parser = SSEParser()
    assert parser.feed(b'event: message_delta\ndata: {"usage":{}}') == []
    assert parser.flush() == [SSEEvent("message_delta", b'{"usage":{}}')]
    assert parser.flush() == []
    assert parser.feed(b"data: again\n\n") == [SSEEvent(None, b"again")]


def test_flush_drops_a_half_event_without_data() -> None:
    parser = SSEParser()
    parser.feed(b"event: message_stop\n")
    assert parser.flush() == []


def test_non_utf8_event_name_does_not_raise() -> None:
    assert parse([b"event: \xff\ndata: x\n\n"]) == [SSEEvent("\ufffd", b"x")]


def _split(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(stream)) for c in cuts})
    bounds = [0, *points, len(stream)]
    return [stream[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


_NAMES = st.sampled_from(["message_start", "content_block_delta", "response.completed", "x"])
_DATA = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=40
)
_EVENTS = st.lists(st.tuples(_NAMES, st.lists(_DATA, min_size=1, max_size=3)), max_size=6)


@given(
    events=_EVENTS,
    newline=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
)
def test_any_split_of_a_stream_yields_its_events(
    events: list[tuple[str, list[str]]], newline: bytes, cuts: list[int]
) -> None:
    stream = b""
    for name, lines in events:
        stream += b": comment" + newline + b"event: " + name.encode() + newline
        for line in lines:
            stream += b"data: " + line.encode() + newline
        stream += newline
    want = [SSEEvent(name, "\n".join(lines).encode()) for name, lines in events]
    assert parse([stream]) == want
    assert parse(_split(stream, cuts)) == want


_PIECES = st.sampled_from(
    [b"data:", b"data: ", b"event:", b"event: e", b":", b" ", b"x", b"\r", b"\n", b"\r\n", b"\xef"]
)


@given(
    pieces=st.lists(_PIECES, max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=10),
)
def test_split_never_changes_what_arbitrary_bytes_parse_to(
    pieces: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(pieces)
    assert parse(_split(stream, cuts)) == parse([stream])
