"""Order events as the customer's feed: every event after an opaque cursor, exactly once.

Events are made by the orders themselves and written by the unit of work (``unit_of_work``);
this module only reads them. The cursor is the position of the last event a reader got (see
``FeedPosition``), written as an opaque string so that clients keep it without reading it.
"""

from __future__ import annotations

import base64
import binascii
import re

from opply.application.dto import FEED_START, EventFeed, FeedPosition
from opply.application.unit_of_work import UnitOfWork
from opply.domain.errors import InvalidCursor

MAX_CURSOR_LENGTH = 128
DEFAULT_FEED_LIMIT = 50
MAX_FEED_LIMIT = 100
_POSITION = re.compile(r"e1\.([0-9]{1,19})\.([0-9]{1,19})")


def cursor_of(position: FeedPosition) -> str:
    text = f"e1.{position.tx}.{position.id}"
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def position_of(cursor: str) -> FeedPosition:
    """The position a cursor of ours stands for; anything else is ``InvalidCursor``."""
    if len(cursor) > MAX_CURSOR_LENGTH or not cursor.isascii():
        raise InvalidCursor()
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError):
        raise InvalidCursor() from None
    found = _POSITION.fullmatch(text)
    if found is None or cursor_of(FeedPosition(int(found[1]), int(found[2]))) != cursor:
        raise InvalidCursor()
    return FeedPosition(tx=int(found[1]), id=int(found[2]))


class ReadMyEvents:
    """The caller's order events after ``after`` (from the beginning without one), oldest
    first; ``next_after`` is the cursor to send next time (the same one when nothing came)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def __call__(self, customer_id: int, after: str | None, limit: int) -> EventFeed:
        position = position_of(after) if after is not None else FEED_START
        with self._uow.read() as reads:
            events = reads.order_events(customer_id, after=position, limit=limit)
        last = events[-1].position if events else position
        return EventFeed(items=events, next_after=cursor_of(last))
