"""The caller's own account: who am I, and a new password."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide
from flask.views import MethodView
from flask_smorest import Blueprint

from opply.application.users import ChangeMyPassword
from opply.domain.errors import WeakPassword, WrongCurrentPassword
from opply.entrypoints.api.operations import operation
from opply.entrypoints.api.schemas import MeSchema, PasswordChangeSchema
from opply.entrypoints.api.security import authenticated, current_principal
from opply.entrypoints.container import Container

blp = Blueprint("account", __name__, url_prefix="/api/v1/me", description="Your account")

change_my_password: ChangeMyPassword = Provide[Container.change_my_password]


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
