"""Token endpoints: log in, rotate, log out."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide, inject
from flask.views import MethodView
from flask_smorest import Blueprint

from opply.application.auth import Authenticate, RefreshTokens, RevokeRefreshToken
from opply.entrypoints.api.schemas import RefreshRequestSchema, TokenPairSchema, TokenRequestSchema
from opply.entrypoints.container import Container

blp = Blueprint("auth", __name__, url_prefix="/api/token", description="JWT authentication")

TOKENS_EXAMPLE = {"access": "eyJhbGciOiJIUzI1NiIs...", "refresh": "eyJhbGciOiJIUzI1NiIs..."}


@blp.route("/")
class Token(MethodView):
    @blp.arguments(TokenRequestSchema, example={"username": "alice", "password": "s3cret-pass"})
    @blp.response(200, TokenPairSchema, example=TOKENS_EXAMPLE)
    @blp.alt_response(401, response="UNAUTHORIZED", description="Wrong username or password")
    @inject
    def post(
        self, body: dict[str, Any], authenticate: Authenticate = Provide[Container.authenticate]
    ) -> Any:
        """Log in: exchange a username and password for tokens

        Wrong username and wrong password get the same 401 `invalid_credentials`."""
        pair = authenticate(body["username"], body["password"])
        return {"access": pair.access, "refresh": pair.refresh}


@blp.route("/refresh/")
class Refresh(MethodView):
    @blp.arguments(RefreshRequestSchema)
    @blp.response(200, TokenPairSchema, example=TOKENS_EXAMPLE)
    @blp.alt_response(401, response="UNAUTHORIZED", description="Invalid, expired or spent token")
    @inject
    def post(
        self, body: dict[str, Any], refresh: RefreshTokens = Provide[Container.refresh_tokens]
    ) -> Any:
        """Rotate: a refresh token buys a new pair, once

        The old refresh token stops working. Presenting it again revokes the whole login
        (every token issued from it), so a stolen copy is useless."""
        pair = refresh(body["refresh"])
        return {"access": pair.access, "refresh": pair.refresh}


@blp.route("/revoke/")
class Revoke(MethodView):
    @blp.arguments(RefreshRequestSchema)
    @blp.response(204)
    @blp.alt_response(401, response="UNAUTHORIZED", description="Invalid or expired token")
    @inject
    def post(
        self,
        body: dict[str, Any],
        revoke: RevokeRefreshToken = Provide[Container.revoke_refresh_token],
    ) -> None:
        """Log out: the refresh token and all its rotations stop working"""
        revoke(body["refresh"])
