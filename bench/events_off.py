"""The service with order events off, for the bench only: what an order costs without them.

Issue 18's goal is that placing an order with its event costs at most 10% more than the same
order without it. The service has no switch for that (events are not optional), so the bench
builds its own: the same container with the unit of work overridden by one whose write units
of work write nothing down on commit (no event built, no plain copy of the order, no INSERT).
Everything else is the service's, statement for statement.

    gunicorn --config gunicorn.conf.py --pythonpath bench 'events_off:create_app()'

reads the service's settings from the environment, as ``opply.entrypoints.wsgi`` does;
``cpu_per_request.py`` uses ``EventsSwitch`` to take the same order both ways in one process.
"""

from __future__ import annotations

from dependency_injector import providers
from flask import Flask

from opply.adapters.sql_uow import SqlUnitOfWork
from opply.adapters.sql_writes import SqlWriteUnitOfWork
from opply.entrypoints.app import create_app as create_service_app
from opply.entrypoints.config import Settings
from opply.entrypoints.container import build_container


class SqlWriteUnitOfWorkWithoutEvents(SqlWriteUnitOfWork):
    """Commits what the service commits, less the events: what the orders recorded is dropped
    (so it does not pile up), nothing is built or written from it."""

    def _write_down_events(self) -> None:
        for order in self.orders.seen:
            order.events.clear()


class EventsSwitch(SqlUnitOfWork):
    """The service's unit of work, whose write units of work write events only while
    ``events`` is true."""

    events = True

    def write(self) -> SqlWriteUnitOfWork:
        if self.events:
            return super().write()
        return SqlWriteUnitOfWorkWithoutEvents(self._session_factory)


def create_app(settings: Settings | None = None, *, events: bool = False) -> Flask:
    """The service's app on an ``EventsSwitch``, events off unless ``events``."""
    settings = settings or Settings.from_env()
    container = build_container(settings)
    switch = providers.Singleton(
        EventsSwitch,
        read_bind=container.read_engine,
        session_factory=container.session_factory,
    )
    container.uow.override(switch)
    switch().events = events
    return create_service_app(settings, container)


def switch_of(app: Flask) -> EventsSwitch:
    """The switch of an app made by ``create_app``."""
    found = app.extensions["container"].uow()
    assert isinstance(found, EventsSwitch), "an app of events_off.create_app"
    return found
