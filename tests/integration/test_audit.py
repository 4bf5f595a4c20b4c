"""The audit trail on a real PostgreSQL: events recorded in the caller's transaction, read back
newest first, by subject and by action family; an action not of the form family.verb is refused."""

from __future__ import annotations

import psycopg2
import pytest

from edihub import audit


def test_events_are_recorded_with_the_change_and_read_back(dsn: str) -> None:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            audit.record(cur, "alice", "partner.add", "INS53", {"name": "Mutuelle 53"})
            audit.record(cur, "bob", "partner.suspend", "INS53")
            audit.record(cur, "bob", "file.reprocess", "1234", {"new_file_id": 1240})
        conn.rollback()  # an undone change leaves no event
        with conn.cursor() as cur:
            assert audit.events(cur, subject="INS53") == []
            first = audit.record(cur, "alice", "partner.add", "INS53", {"name": "Mutuelle 53"})
            second = audit.record(cur, "bob", "partner.suspend", "INS53")
            audit.record(cur, "bob", "file.reprocess", "1234", {"new_file_id": 1240})
        conn.commit()
        with conn.cursor() as cur:
            trail = audit.events(cur, subject="INS53")
            assert [(e["id"], e["actor"], e["action"]) for e in trail] == [
                (second, "bob", "partner.suspend"),
                (first, "alice", "partner.add"),
            ]
            assert trail[1]["detail"] == {"name": "Mutuelle 53"}
            assert [e["subject"] for e in audit.events(cur, action="partner.")] == ["INS53"] * 2
            assert [e["subject"] for e in audit.events(cur, action="file.reprocess")] == ["1234"]
            with pytest.raises(psycopg2.errors.CheckViolation):
                audit.record(cur, "eve", "DROP TABLE", "x")
    finally:
        conn.close()


def test_the_actor_is_the_named_person_else_the_system_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EDIHUB_ACTOR", "j.dupont")
    assert audit.current_actor() == "j.dupont"
    monkeypatch.delenv("EDIHUB_ACTOR")
    assert audit.current_actor() not in ("", "j.dupont")
