"""The long-lived parts of a Kiln process, built from Settings: database, stores, queue, mail.

The web app, the CLI and the workers each build one Runtime and pass it down; nothing below
reads settings or creates engines on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from kiln.accounts.mail import Mailer, make_mailer
from kiln.accounts.services import use_password_costs
from kiln.config import Settings
from kiln.db.session import BACKGROUND, Timeouts, make_engine, make_session_factory
from kiln.processing.dispatch import Dispatcher
from kiln.processing.outbox import Bell, make_bell
from kiln.processing.outbox import install as install_outbox
from kiln.search.upkeep import install as install_search_upkeep
from kiln.storage import Stores, make_stores
from kiln.storage.assignments import loader


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    stores: Stores
    mailer: Mailer
    dispatcher: Dispatcher
    # Rings the outbox's effects after their transaction commits (processing/outbox.py).
    effects: Bell = field(default=None)  # type: ignore[assignment]
    # Inside a worker pool process: a step that overruns its time limit kills the process.
    enforce_limits: bool = False
    # How long this process's database calls may wait (kiln.db.session: WEB for the web app).
    timeouts: Timeouts = BACKGROUND

    def close(self) -> None:
        self.stores.close()
        self.engine.dispose()


def build_runtime(settings: Settings, dispatcher: Dispatcher | None = None,
                  timeouts: Timeouts = BACKGROUND) -> Runtime:
    # Modules whose outbox effects every process must know how to run (imported here, not at the top:
    # they import media and social services, which import this module).
    from kiln.federation import delivery as _delivery  # noqa: F401
    from kiln.federation import inbox as _inbox  # noqa: F401
    from kiln.federation import media_cache as _media_cache  # noqa: F401
    from kiln.federation import publishing as _publishing  # noqa: F401

    use_password_costs(settings.security)
    engine = make_engine(settings.db_url, timeouts)
    sessions = make_session_factory(engine)
    if dispatcher is None:
        from kiln.processing.celery_app import make_celery
        from kiln.processing.dispatch import CeleryDispatcher

        dispatcher = CeleryDispatcher(make_celery(settings))
    runtime = Runtime(
        settings=settings,
        engine=engine,
        sessions=sessions,
        stores=make_stores(settings, loader(settings.db_url, timeouts)),
        mailer=make_mailer(settings),
        dispatcher=dispatcher,
        timeouts=timeouts,
    )
    runtime.effects = make_bell(runtime)
    install_outbox(sessions, lambda ids: runtime.effects.ring(ids))
    install_search_upkeep(sessions)
    return runtime
