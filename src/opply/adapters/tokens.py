"""JWT access and refresh tokens (PyJWT, HS256), following RFC 8725.

The algorithm is pinned, the claims we rely on are required, and our own ``type`` claim keeps
access and refresh tokens from standing in for each other (PyJWT does not check ``typ``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from opply.application.ports import AccessClaims, Clock, IssuedRefresh, RefreshClaims
from opply.domain.errors import InvalidToken

ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32
ACCESS = "access"
REFRESH = "refresh"
# Access tokens already verified by this process, with their expiry: a phone sends the same
# token with every request for 15 minutes, and PyJWT's checks (base64, HMAC, JSON, claims) were
# a tenth of a request's CPU. Only fully verified tokens go in; expiry is re-checked on every hit.
VERIFIED_ACCESS_CACHE_SIZE = 4096


class JwtTokenService:
    def __init__(
        self,
        secret: str,
        issuer: str,
        access_ttl: timedelta,
        refresh_ttl: timedelta,
        clock: Clock,
        leeway: timedelta = timedelta(seconds=10),
    ) -> None:
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"the JWT secret must be at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret
        self._issuer = issuer
        self._access_ttl = access_ttl
        self._refresh_ttl = refresh_ttl
        self._clock = clock
        self._leeway = leeway
        self._verified_access: dict[str, tuple[float, AccessClaims]] = {}

    def issue_access(self, user_id: int, is_staff: bool, login: str, token_version: int) -> str:
        now = self._clock.now()
        claims = {
            "iss": self._issuer,
            "sub": str(user_id),
            "type": ACCESS,
            "staff": is_staff,
            "fam": login,
            "ver": token_version,
            "iat": now,
            "exp": now + self._access_ttl,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def issue_refresh(self, user_id: int, family_id: str) -> IssuedRefresh:
        now = self._clock.now()
        jti = uuid.uuid4().hex
        expires_at = now + self._refresh_ttl
        claims = {
            "iss": self._issuer,
            "sub": str(user_id),
            "type": REFRESH,
            "fam": family_id,
            "iat": now,
            "exp": expires_at,
            "jti": jti,
        }
        token = jwt.encode(claims, self._secret, algorithm=ALGORITHM)
        return IssuedRefresh(token=token, jti=jti, issued_at=now, expires_at=expires_at)

    def read_access(self, token: str) -> AccessClaims:
        hit = self._verified_access.get(token)
        if hit is not None:
            expires_at, claims = hit
            now = datetime.now(UTC).timestamp()  # the clock and the rule PyJWT uses
            if expires_at > now - self._leeway.total_seconds():
                return claims
            del self._verified_access[token]
            raise InvalidToken("The token has expired")
        decoded = self._decode(token, ACCESS, "fam", "ver")
        login, version = decoded["fam"], decoded["ver"]
        if not isinstance(login, str) or not login or type(version) is not int:
            raise InvalidToken()
        claims = AccessClaims(
            user_id=_user_id(decoded),
            is_staff=bool(decoded.get("staff", False)),
            login=login,
            token_version=version,
        )
        if len(self._verified_access) >= VERIFIED_ACCESS_CACHE_SIZE:
            self._verified_access.clear()
        self._verified_access[token] = (float(decoded["exp"]), claims)
        return claims

    def read_refresh(self, token: str) -> RefreshClaims:
        claims = self._decode(token, REFRESH)
        family = claims.get("fam")
        if not isinstance(family, str) or not family:
            raise InvalidToken()
        return RefreshClaims(user_id=_user_id(claims), jti=str(claims["jti"]), family_id=family)

    def _decode(self, token: str, expected_type: str, *required: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "iss", "sub", "jti", "type", *required]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("The token has expired") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken() from exc
        if claims.get("type") != expected_type:
            article = "An" if expected_type == ACCESS else "A"
            raise InvalidToken(f"{article} {expected_type} token is required here")
        return claims


def _user_id(claims: dict[str, Any]) -> int:
    try:
        return int(claims["sub"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidToken() from exc
