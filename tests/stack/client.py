"""A plain HTTP client for the stack's tests: one connection per request, from a chosen
loopback address, so that each simulated phone has its own address (the per-address limits
count it apart) and no keep-alive race can be mistaken for a failure of the service."""

from __future__ import annotations

import http.client
import itertools
import json
import random
from dataclasses import dataclass
from typing import Any

LB_HOST = "127.0.0.1"
LB_PORT = 8080
PASSWORD = "a-long-stack-test-password"

# Every address of 127.0.0.0/8 reaches the loopback interface on Linux. The second byte is
# drawn per run, so a run soon after another does not inherit its per-address counts.
_NETWORK = random.randrange(16, 250)
_HOSTS = itertools.count(1)

# What a client may see when an instance dies under it: the connection refused, reset or closed
# without an answer.
CONNECTION_ERRORS = (OSError, http.client.HTTPException)


def new_address() -> str:
    n = next(_HOSTS)
    return f"127.{_NETWORK}.{n // 250}.{n % 250 + 1}"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: Any

    @property
    def served_by(self) -> str:
        return self.headers.get("X-Served-By", "")

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


class Client:
    """A phone: its own address, and the bearer token it logged in with (if any)."""

    def __init__(
        self, *, address: str | None = None, token: str | None = None, port: int = LB_PORT
    ) -> None:
        self.address = address or new_address()
        self.token = token
        self.port = port

    def request(
        self,
        method: str,
        path: str,
        body: Any | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> Answer:
        """Raises one of ``CONNECTION_ERRORS`` when no answer arrives."""
        sent = {"Connection": "close", **(headers or {})}
        if self.token is not None:
            sent.setdefault("Authorization", f"Bearer {self.token}")
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        connection = http.client.HTTPConnection(
            LB_HOST, self.port, timeout=timeout, source_address=(self.address, 0)
        )
        try:
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        parsed: Any = None
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw.decode(errors="replace")
        return Answer(status=response.status, headers=response.headers, body=parsed)

    def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Answer:
        return self.request("POST", path, body, headers=headers)

    def login(self, username: str, password: str = PASSWORD) -> dict[str, str]:
        answer = self.post("/api/token/", {"username": username, "password": password})
        assert answer.status == 200, (answer.status, answer.body)
        tokens: dict[str, str] = answer.body
        self.token = tokens["access"]
        return tokens


def order(*lines: tuple[int, int]) -> dict[str, Any]:
    return {"lines": [{"product_id": p, "quantity": q} for p, q in lines]}
