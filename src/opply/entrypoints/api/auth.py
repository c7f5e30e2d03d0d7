"""Token endpoints: log in, rotate, log out."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide
from flask.views import MethodView
from flask_smorest import Blueprint

from opply.application.auth import Authenticate, RefreshTokens, RevokeRefreshToken
from opply.domain.errors import AuthenticationFailed, InvalidToken
from opply.entrypoints.api.operations import answers_with_headers, errors, operation
from opply.entrypoints.api.problems import RateLimited
from opply.entrypoints.api.schemas import (
    JWT_EXAMPLE,
    RefreshRequestSchema,
    TokenPairSchema,
    TokenRequestSchema,
)
from opply.entrypoints.container import Container
from opply.entrypoints.limits import login_limits, rate_limit_fields, refresh_limits

blp = Blueprint("auth", __name__, url_prefix="/api/token", description="JWT authentication")
blp.after_request(rate_limit_fields)

TOKENS_EXAMPLE = {"access": JWT_EXAMPLE, "refresh": JWT_EXAMPLE}

authenticate: Authenticate = Provide[Container.authenticate]
refresh_tokens: RefreshTokens = Provide[Container.refresh_tokens]
revoke_refresh_token: RevokeRefreshToken = Provide[Container.revoke_refresh_token]


def _rate_limited(func: Any) -> Any:
    """Document a limited operation: its 429, and the limits' fields on every answer."""
    func = errors(RateLimited)(func)
    return answers_with_headers(
        "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy"
    )(func)


@blp.route("/")
class Token(MethodView):
    @login_limits  # before parsing: every attempt counts, well-formed or not
    @blp.arguments(TokenRequestSchema, example={"username": "alice", "password": "s3cret-pass"})
    @blp.response(200, TokenPairSchema, example=TOKENS_EXAMPLE)
    @operation("logIn", AuthenticationFailed)
    @_rate_limited
    def post(self, body: dict[str, Any]) -> Any:
        """Log in: exchange a username and password for tokens

        Wrong username and wrong password get the same 401 `invalid_credentials`. Too many
        attempts for one username or from one address get a 429 `rate_limited`."""
        return authenticate(body["username"], body["password"])


@blp.route("/refresh/")
class Refresh(MethodView):
    @refresh_limits
    @blp.arguments(RefreshRequestSchema)
    @blp.response(200, TokenPairSchema, example=TOKENS_EXAMPLE)
    @operation("refreshTokens", InvalidToken)
    @_rate_limited
    def post(self, body: dict[str, Any]) -> Any:
        """Rotate: a refresh token buys a new pair, once

        The old refresh token stops working. Presenting it again revokes the whole login
        (every token issued from it), so a stolen copy is useless."""
        return refresh_tokens(body["refresh"])


@blp.route("/revoke/")
class Revoke(MethodView):
    @blp.arguments(RefreshRequestSchema)
    @blp.response(204)
    @operation("logOut", InvalidToken)
    def post(self, body: dict[str, Any]) -> None:
        """Log out: the refresh token and all its rotations stop working

        The access tokens of that login are refused from the next request on, on every
        server."""
        revoke_refresh_token(body["refresh"])
