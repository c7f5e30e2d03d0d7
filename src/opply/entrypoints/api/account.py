"""The caller's own account: who am I, and a new password."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide
from flask.views import MethodView
from flask_smorest import Blueprint

from opply.application.events import ReadMyEvents
from opply.application.users import ChangeMyPassword
from opply.domain.errors import InvalidCursor, WeakPassword, WrongCurrentPassword
from opply.entrypoints.api.operations import operation
from opply.entrypoints.api.schemas import (
    EventFeedQuerySchema,
    EventFeedSchema,
    MeSchema,
    PasswordChangeSchema,
)
from opply.entrypoints.api.security import authenticated, current_principal
from opply.entrypoints.container import Container

blp = Blueprint("account", __name__, url_prefix="/api/v1/me", description="Your account")

change_my_password: ChangeMyPassword = Provide[Container.change_my_password]
read_my_events: ReadMyEvents = Provide[Container.read_my_events]


@blp.route("/")
class Me(MethodView):
    @authenticated
    @blp.response(200, MeSchema, example={"id": 12, "username": "alice", "is_staff": False})
    @operation("getMe")
    def get(self) -> Any:
        """Who you are

        The account the access token belongs to; `is_staff` says whether the staff operations
        are open to it."""
        return current_principal()


@blp.route("/password/")
class Password(MethodView):
    @authenticated
    @blp.arguments(
        PasswordChangeSchema,
        example={"current_password": "s3cret-pass", "new_password": "a new long passphrase"},
    )
    @blp.response(204)
    @operation("changePassword", WrongCurrentPassword, WeakPassword)
    def post(self, body: dict[str, Any]) -> None:
        """Change your password

        A wrong `current_password` is a 403 `invalid_credentials`. Afterwards every token
        issued before (access and refresh, on every device) stops working: log in again."""
        change_my_password(
            current_principal().user_id, body["current_password"], body["new_password"]
        )


@blp.route("/events/")
class MyEvents(MethodView):
    @authenticated
    @blp.arguments(EventFeedQuerySchema(), location="query", as_kwargs=True)
    @blp.response(200, EventFeedSchema)
    @operation("listMyEvents", InvalidCursor)
    def get(self, limit: int, after: str | None = None) -> Any:
        """Your order events, oldest first

        Every change of your orders' status (`order.placed`, `order.shipped`,
        `order.delivered`, `order.cancelled`), each with the order as it then was. Poll with
        the `next_after` of your last answer as `after`: you see every event exactly once, and
        an order's events in the order they happened. An empty `results` with the same
        `next_after` means nothing new."""
        return read_my_events(current_principal().user_id, after, limit)
