"""The reservation journal on its own: replay, torn lines, rotation, orphans charged once."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from tollway.storage.journal import Journal

KEYS = [("vk:k/1d", 1000.0), ("team:t/1M", 900.0)]


def test_replay_keeps_the_last_spend_and_finds_orphans(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    journal.restart()
    journal.reserved(1, Decimal("2.5"), KEYS, "k", "claude-opus-4-8", 1.0)
    journal.reserved(2, Decimal("1.25"), KEYS, "k", "claude-opus-4-8", 2.0)
    journal.settled(1, [("vk:k/1d", 1000.0, Decimal("0.10")), ("team:t/1M", 900.0, Decimal(3))])
    journal.settled(None, [("vk:k/1d", 1000.0, Decimal(0))])  # a reset
    journal.close()
    with (tmp_path / "j").open("ab") as f:
        f.write(b'["R","torn.3","9",[["vk:k/1d"')  # a crash in the middle of a write
    replay = Journal(tmp_path / "j").replay()
    assert replay.spent == {("vk:k/1d", 1000.0): Decimal(0), ("team:t/1M", 900.0): Decimal(3)}
    [orphan] = replay.orphans
    assert orphan.amount == Decimal("1.25") and orphan.keys == tuple(KEYS)
    assert (orphan.vk_id, orphan.model, orphan.at) == ("k", "claude-opus-4-8", 2.0)


def test_orphans_settled_before_the_store_are_not_charged_twice(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    journal.restart()
    journal.reserved(7, Decimal(1), KEYS[:1], None, None, 1.0)
    journal.close()
    first = Journal(tmp_path / "j")
    replay = first.replay()
    first.settle_orphans([(replay.orphans[0], [("vk:k/1d", 1000.0, Decimal(1))])])
    first.close()  # a second crash before the store was written
    again = Journal(tmp_path / "j").replay()
    assert again.orphans == [] and again.spent == {("vk:k/1d", 1000.0): Decimal(1)}


def test_rotation_keeps_open_reservations_and_the_old_file_until_committed(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path / "j", rotate_bytes=200)
    journal.restart()
    for rid in range(1, 4):
        journal.reserved(rid, Decimal(1), KEYS[:1], "k", "m", float(rid))
    journal.settled(1, [("vk:k/1d", 1000.0, Decimal("0.5"))])
    assert journal.wants_rotation()
    still_open = [journal.entry(r, Decimal(1), KEYS[:1], "k", "m", float(r)) for r in (2, 3)]
    journal.rotate(still_open)
    assert journal.old.exists() and not journal.wants_rotation()
    journal.settled(2, [("vk:k/1d", 1000.0, Decimal("0.75"))])
    # A crash now replays both files: spend from either, one orphan left (3).
    replay = Journal(tmp_path / "j").replay()
    assert [o.id for o in replay.orphans] == [f"{journal.epoch}.3"]
    assert replay.spent == {("vk:k/1d", 1000.0): Decimal("0.75")}
    journal.committed()
    assert not journal.old.exists()
    replay = Journal(tmp_path / "j").replay()
    assert [o.id for o in replay.orphans] == [f"{journal.epoch}.3"]
    journal.close()
