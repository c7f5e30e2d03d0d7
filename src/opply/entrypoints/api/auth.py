"""Token endpoints: log in, rotate, log out."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide, inject
from flask.views import MethodView
from flask_smorest import Blueprint

from opply.application.auth import Authenticate, RefreshTokens, RevokeRefreshToken
from opply.entrypoints.api.problems import PROBLEM_MIMETYPE, ProblemSchema
from opply.entrypoints.api.schemas import RefreshRequestSchema, TokenPairSchema, TokenRequestSchema
from opply.entrypoints.container import Container

blp = Blueprint("auth", __name__, url_prefix="/api/token", description="JWT authentication")

TOKENS_EXAMPLE = {"access": "eyJhbGciOiJIUzI1NiIs...", "refresh": "eyJhbGciOiJIUzI1NiIs..."}

# Rate limited in entrypoints/limits.py; the fields follow draft-ietf-httpapi-ratelimit-headers-06.
_INT_HEADER = {"schema": {"type": "integer", "minimum": 0}}
RATE_LIMIT_HEADERS = {
    "Retry-After": {**_INT_HEADER, "description": "Seconds to wait before trying again"},
    "RateLimit-Limit": {**_INT_HEADER, "description": "Requests allowed in the window"},
    "RateLimit-Remaining": {**_INT_HEADER, "description": "Requests left in the window"},
    "RateLimit-Reset": {**_INT_HEADER, "description": "Seconds until the window resets"},
    "RateLimit-Policy": {
        "schema": {"type": "string"},
        "description": 'The limits that apply, e.g. "10;w=60" (10 per 60 seconds)',
    },
}
RATE_LIMITED_EXAMPLE = {
    "type": "https://opply.example/problems/rate-limited",
    "title": "Too many requests",
    "status": 429,
    "detail": "Too many requests; wait for the number of seconds in Retry-After and try again.",
    "code": "rate_limited",
}


def _rate_limited(description: str) -> Any:
    return blp.alt_response(
        429,
        schema=ProblemSchema,
        content_type=PROBLEM_MIMETYPE,
        headers=RATE_LIMIT_HEADERS,
        example=RATE_LIMITED_EXAMPLE,
        description=description,
    )


@blp.route("/")
class Token(MethodView):
    @blp.arguments(TokenRequestSchema, example={"username": "alice", "password": "s3cret-pass"})
    @blp.response(200, TokenPairSchema, example=TOKENS_EXAMPLE)
    @blp.alt_response(401, response="UNAUTHORIZED", description="Wrong username or password")
    @_rate_limited("Too many attempts for this username or from this address (`rate_limited`)")
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
    @_rate_limited("Too many refreshes from this address (`rate_limited`)")
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
