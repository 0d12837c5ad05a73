"""Fuzzing the SSE parser: any split of any stream gives the same events; bytes never crash.

Run by ``make test`` with the derandomized 'ci' profile (tests/conftest.py) when CI is set.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tollway.sse import SSEEvent, SSEParser

# Field values never hold a line break; data may be any other bytes (SSE is UTF-8 text, but
# the parser must survive whatever an upstream sends).
_value = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
_name = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=12,
)
_event = st.tuples(st.none() | _name, st.lists(_value, min_size=1, max_size=4))
_newline = st.sampled_from([b"\n", b"\r\n", b"\r"])


def _encode(
    events: list[tuple[str | None, list[bytes]]], newline: bytes, comments: bool, bom: bool
) -> bytes:
    out = [b"\xef\xbb\xbf"] if bom else []
    for name, lines in events:
        if comments:
            out.append(b": keep-alive" + newline)
        if name is not None:
            out.append(b"event: " + name.encode() + newline)
        out.extend(b"data: " + line + newline for line in lines)
        out.append(newline)
    return b"".join(out)


def _feed_split(stream: bytes, cuts: list[int]) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    last = 0
    for cut in sorted(set(cuts)):
        events += parser.feed(stream[last:cut])
        last = cut
    events += parser.feed(stream[last:])
    return events + parser.flush()


@settings(max_examples=300)
@given(
    st.lists(_event, max_size=8),
    _newline,
    st.booleans(),
    st.booleans(),
    st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
)
def test_any_split_of_a_well_formed_stream_gives_its_events(
    events: list[tuple[str | None, list[bytes]]],
    newline: bytes,
    comments: bool,
    bom: bool,
    cuts: list[int],
) -> None:
    stream = _encode(events, newline, comments, bom)
    cuts = [c % (len(stream) + 1) for c in cuts]
    expected = [SSEEvent(name, b"\n".join(lines)) for name, lines in events]
    assert _feed_split(stream, cuts) == expected


@settings(max_examples=300)
@given(
    st.binary(max_size=600)
    | st.lists(
        st.sampled_from(
            [
                b"data:",
                b"data: x",
                b"event:",
                b"event: e",
                b":",
                b"\r",
                b"\n",
                b"\r\n",
                b" ",
                b"\xef\xbb\xbf",
                b"id: 1",
                b"retry: 5",
                b"\xff",
            ]
        ),
        max_size=60,
    ).map(b"".join),  # fmt: skip
    st.lists(st.integers(min_value=0, max_value=700), max_size=10),
)
def test_arbitrary_bytes_never_crash_and_splits_do_not_matter(
    stream: bytes, cuts: list[int]
) -> None:
    whole = _feed_split(stream, [])
    assert _feed_split(stream, [c % (len(stream) + 1) for c in cuts]) == whole
    for event in whole:
        assert isinstance(event.data, bytes)
        assert b"\r" not in event.data
