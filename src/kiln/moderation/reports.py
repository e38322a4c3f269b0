"""Reports: people with the ``reporter`` privilege report a media item, a comment, a collection or a
person; the moderators see open reports grouped by target (one case per target) and act on them
(``kiln.moderation.actions``).

A target the reporter may not see does not exist for them (404). The same person reporting the same
thing again while their report is open gets that report back: no second case, no second row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.errors import InvalidInput, NotAuthenticated, NotFound, PermissionDenied
from kiln.i18n import N_
from kiln.media.models import MediaEntry
from kiln.media.text import html_text
from kiln.media.visibility import visible
from kiln.moderation.models import REPORT_CATEGORIES, REPORT_TARGETS, REPORT_TEXT_MAX, AuditEntry, Report
from kiln.social.collections import may_see
from kiln.social.models import Collection, Comment
from kiln.typed import clean_typed

SORTS = ("newest", "most")
CASES_SHOWN = 100
HISTORY_SHOWN = 50
NO_SUCH_THING = N_("There is nothing to report with that id. It may have been deleted.")


def check_reporter(user: User | None) -> User:
    """Who may report: a logged-in, verified, unbanned person holding ``reporter``."""
    if user is None:
        raise NotAuthenticated("Log in to report something.")
    if user.banned_now:
        raise PermissionDenied("This account is banned.", code="banned")
    if not user.is_active:
        raise PermissionDenied("Confirm your email address before you report something.", code="not_verified")
    if not user.has("reporter"):
        raise PermissionDenied("Your account may not report anything.", code="not_reporter")
    return user


@dataclass
class Target:
    """What a report is about, as a moderator reads it."""

    type: str
    id: int
    owner: User | None
    label: str  # a title, a username, the start of a comment
    row: Any = None  # the MediaEntry, Comment, Collection or User; None once it is gone
    media: MediaEntry | None = None  # the item itself, or the item a comment is on

    def snapshot(self) -> dict[str, Any]:
        """What it said when it was reported (kept with the report)."""
        owner = self.owner.username if self.owner else None
        if owner is None and isinstance(self.row, Comment) and self.row.remote_actor is not None:
            owner = self.row.remote_actor.handle
        data: dict[str, Any] = {"label": self.label, "owner": owner}
        if self.type == "comment" and self.row is not None:
            data["text"] = self.row.body
            data["media_id"] = self.row.media_id
        if self.type == "media" and self.row is not None:
            data["description"] = self.row.description[:2000]
        return data


def find_target(session: Session, target_type: str, target_id: int, viewer: User | None = None,
                *, check: bool = True) -> Target:
    """The thing ``target_type``/``target_id`` names. ``check``: 404 unless ``viewer`` may see it
    (moderators read cases with ``check=False``: a target made private since still shows)."""
    if target_type not in REPORT_TARGETS:
        raise InvalidInput("You can report a media item, a comment, a collection or a person.", code="bad_target")
    if not 1 <= target_id <= 2**31 - 1:
        raise NotFound(NO_SUCH_THING)
    if target_type == "media":
        media = session.get(MediaEntry, target_id)
        if media is None or (check and not visible(media, viewer)):
            raise NotFound(NO_SUCH_THING)
        return Target("media", media.id, media.owner, media.title, media, media)
    if target_type == "comment":
        comment = session.get(Comment, target_id)
        on = session.get(MediaEntry, comment.media_id) if comment is not None else None
        if comment is None or on is None or (check and (comment.deleted is not None or not visible(on, viewer))):
            raise NotFound(NO_SUCH_THING)
        # A reply from another server is HTML: its text makes the label.
        label = (html_text(comment.body) if comment.remote_actor_id else comment.body or "")[:80]
        return Target("comment", comment.id, comment.author, label, comment, on)
    if target_type == "collection":
        collection = session.get(Collection, target_id)
        if collection is None or (check and not may_see(session, collection, viewer)):
            raise NotFound(NO_SUCH_THING)
        return Target("collection", collection.id, collection.owner, collection.title, collection)
    person = session.get(User, target_id)
    if person is None:
        raise NotFound(NO_SUCH_THING)
    return Target("user", person.id, person, person.username, person)


def clean_text(text: str) -> str:
    body = clean_typed(text or "").strip()
    if len(body) > REPORT_TEXT_MAX:
        raise InvalidInput("A report can have at most %(max)s characters; this one has %(length)s.",
                           code="report_too_long", max=REPORT_TEXT_MAX, length=len(body))
    return body


def reportable(session: Session, reporter: User | None, target_type: str, target_id: int) -> Target:
    """The target, when ``reporter`` may report it (what the report form shows)."""
    target = find_target(session, target_type, target_id, reporter)
    user = check_reporter(reporter)
    if target.owner is not None and target.owner.id == user.id:
        raise InvalidInput("You cannot report yourself or what is yours.", code="own_target")
    return target


def file_report(session: Session, reporter: User | None, target_type: str, target_id: int, category: str,
                text: str) -> tuple[Report, bool]:
    """Report something; returns (the report, whether it is new). The caller commits."""
    user = check_reporter(reporter)
    target = reportable(session, user, target_type, target_id)
    if category not in REPORT_CATEGORIES:
        raise InvalidInput("Choose why you report it: %(known)s.", code="bad_category",
                           known=", ".join(REPORT_CATEGORIES))
    body = clean_text(text)
    existing = session.scalar(select(Report).where(Report.reporter_id == user.id, Report.state == "open",
                                                   Report.target_type == target.type, Report.target_id == target.id))
    if existing is not None:
        return existing, False
    report = Report(reporter_id=user.id, target_type=target.type, target_id=target.id,
                    target_owner_id=target.owner.id if target.owner else None, category=category, text=body,
                    snapshot=target.snapshot(), state="open", resolution="")
    try:
        with session.begin_nested():  # the same report sent twice at once: the second takes the first's row
            session.add(report)
    except IntegrityError:
        return session.scalars(select(Report).where(Report.reporter_id == user.id, Report.state == "open",
                                                    Report.target_type == target.type,
                                                    Report.target_id == target.id)).one(), False
    return report, True


def _reporter_name(report: Report) -> str | None:
    """Who reported it: a username, ``@name@host`` for a report from another server (a ``Flag``)."""
    if report.reporter is not None:
        return report.reporter.username
    return report.remote_reporter.handle if report.remote_reporter is not None else None


def is_reported(session: Session, target_type: str, target_id: int) -> bool:
    """Whether anyone ever reported this (moderators may then see it whatever its visibility)."""
    return session.scalar(select(Report.id).where(Report.target_type == target_type, Report.target_id == target_id)
                          .limit(1)) is not None


def my_reports(session: Session, user: User, limit: int = 100) -> list[Report]:
    return list(session.scalars(select(Report).where(Report.reporter_id == user.id)
                                .order_by(Report.id.desc()).limit(limit)).unique())


def get_report(session: Session, report_id: int) -> Report:
    report = session.get(Report, report_id)
    if report is None:
        raise NotFound("There is no such report.")
    return report


@dataclass
class Case:
    """The open reports about one target (or, on a case page, all of them)."""

    target_type: str
    target_id: int
    reports: list[Report] = field(default_factory=list)
    target: Target | None = None  # None once the target is gone

    @property
    def first(self) -> Report:
        return self.reports[0]

    @property
    def open(self) -> list[Report]:
        return [r for r in self.reports if r.state == "open"]


def _target_or_none(session: Session, target_type: str, target_id: int) -> Target | None:
    try:
        return find_target(session, target_type, target_id, check=False)
    except NotFound:
        return None


def open_cases(session: Session, sort: str = "newest", limit: int = CASES_SHOWN) -> list[Case]:
    """Open reports grouped by target: the newest report first, or the most reported target first."""
    if sort not in SORTS:
        raise InvalidInput("Sort by newest or most reported.", code="bad_sort")
    count, newest = func.count(Report.id), func.max(Report.id)
    grouped = (select(Report.target_type, Report.target_id).where(Report.state == "open")
               .group_by(Report.target_type, Report.target_id))
    grouped = grouped.order_by(count.desc(), newest.desc()) if sort == "most" else grouped.order_by(newest.desc())
    keys = list(session.execute(grouped.limit(limit)))
    if not keys:
        return []
    wanted = or_(*[(Report.target_type == t) & (Report.target_id == i) for t, i in keys])
    by_key: dict[tuple[str, int], list[Report]] = {}
    for report in session.scalars(select(Report).where(Report.state == "open", wanted).order_by(Report.id.desc())):
        by_key.setdefault((report.target_type, report.target_id), []).append(report)
    return [Case(t, i, by_key.get((t, i), []), _target_or_none(session, t, i)) for t, i in keys]


def case_of(session: Session, report: Report) -> Case:
    """Every report about ``report``'s target, open ones first, newest first."""
    rows = list(session.scalars(select(Report).where(Report.target_type == report.target_type,
                                                     Report.target_id == report.target_id)
                                .order_by(Report.state, Report.id.desc())).unique())
    return Case(report.target_type, report.target_id, rows,
                _target_or_none(session, report.target_type, report.target_id))


@dataclass
class History:
    reports: list[Report]
    audit: list[AuditEntry]


def history(session: Session, owner_id: int | None) -> History:
    """What happened before to the person a case is about: resolved reports about them, and the
    audit entries about them and their things."""
    if owner_id is None:
        return History([], [])
    reports = list(session.scalars(select(Report).where(Report.target_owner_id == owner_id,
                                                        Report.state == "resolved")
                                   .order_by(Report.id.desc()).limit(HISTORY_SHOWN)).unique())
    entries = list(session.scalars(select(AuditEntry).where(
        or_((AuditEntry.target_type == "user") & (AuditEntry.target_id == owner_id),
            AuditEntry.details["owner_id"].as_integer() == owner_id,
            AuditEntry.details["author_id"].as_integer() == owner_id))
        .order_by(AuditEntry.id.desc()).limit(HISTORY_SHOWN)))
    return History(reports, entries)


def report_json(report: Report) -> dict[str, Any]:
    """A report as its reporter and the moderators read it."""
    return {"id": report.id, "created": report.created.isoformat(), "target_type": report.target_type,
            "target_id": report.target_id, "category": report.category, "text": report.text,
            "state": report.state, "outcome": report.outcome,
            "resolved_at": report.resolved_at.isoformat() if report.resolved_at else None}


def case_json(case: Case) -> dict[str, Any]:
    target = case.target
    return {"target_type": case.target_type, "target_id": case.target_id,
            "label": target.label if target else (case.first.snapshot or {}).get("label", ""),
            "owner": target.owner.username if target and target.owner else None,
            "exists": target is not None, "count": len(case.reports),
            "reports": [{**report_json(r), "reporter": _reporter_name(r)}
                        for r in case.reports]}
