"""The audit log: entries commit with the action they describe, survive the deletion of the people
they name, read back newest first with filters, export as JSON lines, and cannot be changed or
deleted, not even by SQL (a trigger on both databases)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DatabaseError

from kiln.accounts.models import User
from kiln.moderation import audit
from kiln.moderation.models import AuditEntry
from kiln.runtime import Runtime
from tests.social_kit import person

pytestmark = pytest.mark.db


def test_entries_read_back_filtered_and_as_json_lines_and_outlive_their_people(rt: Runtime) -> None:
    mod_id, target_id = person(rt, "mona"), person(rt, "bert")
    with rt.sessions() as session:
        mod = session.get(User, mod_id)
        audit.record(session, mod, "ban", "user", target_id, target_label="bert", reason="spam",
                     details={"days": 3})
        audit.record(session, mod, "privilege.revoke", "user", target_id, target_label="bert",
                     details={"privilege": "commenter"})
        audit.record(session, None, "user.delete", "user", target_id, target_label="bert", via="cli")
        session.rollback()  # an action that is rolled back leaves no entry
        assert session.scalar(select(AuditEntry.id)) is None
        audit.record(session, mod, "ban", "user", target_id, target_label="bert", reason="spam",
                     details={"days": 3})
        audit.record(session, mod, "privilege.revoke", "user", target_id, target_label="bert",
                     details={"privilege": "commenter"})
        audit.record(session, None, "user.delete", "user", target_id, target_label="bert", via="cli")
        session.execute(delete(User).where(User.id.in_([mod_id, target_id])))
        session.commit()

        newest = audit.page(session, audit.AuditFilter())
        assert [e.action for e in newest] == ["user.delete", "privilege.revoke", "ban"]
        assert newest[0].actor_name.startswith("cli:") and newest[0].actor_id is None
        assert newest[2].actor_name == "mona" and newest[2].actor_id == mod_id  # kept after deletion
        assert [e.action for e in audit.page(session, audit.AuditFilter(action="privilege"))] == \
            ["privilege.revoke"]
        assert [e.action for e in audit.page(session, audit.AuditFilter(actor="mona"))] == \
            ["privilege.revoke", "ban"]
        assert [e.action for e in audit.page(session, audit.AuditFilter(), before=newest[1].id)] == ["ban"]
        lines = [json.loads(line) for line in audit.json_lines(session, audit.AuditFilter(), batch=2)]
        assert [(d["action"], d["target"], d["reason"]) for d in lines] == \
            [("ban", "bert", "spam"), ("privilege.revoke", "bert", ""), ("user.delete", "bert", "")]
        assert lines[0]["details"] == {"days": 3}


def test_the_database_refuses_to_change_or_delete_an_entry(rt: Runtime) -> None:
    with rt.sessions() as session:
        entry = audit.record(session, None, "settings.change", "site", None, via="cli")
        session.commit()
        entry_id = entry.id
    for statement in (update(AuditEntry).where(AuditEntry.id == entry_id).values(reason="forged"),
                      delete(AuditEntry).where(AuditEntry.id == entry_id)):
        with rt.sessions() as session, pytest.raises(DatabaseError, match="append-only"):
            session.execute(statement)
            session.commit()
    with rt.sessions() as session:
        assert session.scalar(text("SELECT reason FROM audit_log")) == ""
