"""Webhook HTTP: which URLs a server may call (server-side request forgery), and the signed POST.

A URL is checked when it is saved (its scheme, and its host when that is an address or a
local name) and again on every attempt, on the address its name resolves to then: the request
then goes to that checked address (with the name kept for ``Host`` and TLS), so a name that
resolves to a public address for the check and to an internal one for the request (DNS
rebinding) cannot reach inside.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx
from standardwebhooks.webhooks import Webhook

from opply.application.webhooks import MAX_URL_LENGTH, SendOutcome
from opply.domain.errors import UnsafeWebhookUrl

USER_AGENT = "Opply-Webhooks/1"
MAX_ANSWER_READ = 64 * 1024
LOCAL_NAMES = ("localhost", "localhost.localdomain")
# A DNS name (letters, digits, hyphens, dots), an IPv4 address, or an IPv6 one (without its
# brackets, as urlsplit gives it).
HOST_RE = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?|[0-9A-Fa-f:.]+")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def unsafe_address(address: Address) -> bool:
    """Loopback, private, link-local (cloud metadata at 169.254.169.254 among them), shared,
    reserved, multicast: anything but a global unicast address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


class UrlPolicy:
    """``WEBHOOK_ALLOW_HTTP`` and ``WEBHOOK_ALLOW_PRIVATE`` (both true in development)."""

    def __init__(self, *, allow_http: bool, allow_private: bool) -> None:
        self.allow_http = allow_http
        self.allow_private = allow_private

    def check(self, url: str) -> None:
        """Raises ``UnsafeWebhookUrl`` for a URL that may not be saved."""
        parts = self._parts(url)
        host = parts.hostname or ""
        if self.allow_private:
            return
        if host.rstrip(".").lower() in LOCAL_NAMES or host.lower().endswith(".localhost"):
            raise UnsafeWebhookUrl(f"{host} is this machine: use a public address")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return  # a name: its addresses are checked on every attempt
        if unsafe_address(address):
            raise UnsafeWebhookUrl(f"{host} is not a public address")

    def _parts(self, url: str) -> SplitResult:
        if len(url) > MAX_URL_LENGTH:
            raise UnsafeWebhookUrl(f"A webhook URL has at most {MAX_URL_LENGTH} characters")
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018  (a bad port raises here)
        except ValueError as error:
            raise UnsafeWebhookUrl(f"Not a URL: {error}") from None
        allowed = ("https", "http") if self.allow_http else ("https",)
        if parts.scheme not in allowed:
            raise UnsafeWebhookUrl(f"A webhook URL must start with {' or '.join(allowed)}://")
        if not parts.hostname or not HOST_RE.fullmatch(parts.hostname):
            raise UnsafeWebhookUrl("A webhook URL needs a host name or address")
        return parts

    def resolve(self, url: str) -> tuple[SplitResult, Address]:
        """The URL's parts and the address to connect to: the first one its host resolves to
        that is allowed. Raises ``UnsafeWebhookUrl`` if none is."""
        self.check(url)
        parts = self._parts(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as error:
            raise UnsafeWebhookUrl(f"{host} does not resolve: {error}") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in found]
        for address in addresses:
            if self.allow_private or not unsafe_address(address):
                return parts, address
        raise UnsafeWebhookUrl(f"{host} resolves to no public address")


def _retry_after(value: str | None, now: datetime) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class HttpxWebhookSender:
    """Signs (Standard Webhooks, with the reference package) and POSTs a message, following
    no redirect, reading no answer body; never raises: every way of failing is an outcome."""

    def __init__(self, *, policy: UrlPolicy, timeout: float) -> None:
        self._policy = policy
        self._timeout = timeout
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment between us and the checked address
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )

    def close(self) -> None:
        self._client.close()

    def send(self, *, url: str, secret: str, message_id: str, body: bytes) -> SendOutcome:
        try:
            parts, address = self._policy.resolve(url)
        except UnsafeWebhookUrl as unsafe:
            return SendOutcome(error=f"unsafe_webhook_url: {unsafe.detail}")
        now = datetime.now(UTC)
        signature = Webhook(secret).sign(msg_id=message_id, timestamp=now, data=body.decode())
        host = parts.hostname or ""
        literal = f"[{address}]" if address.version == 6 else str(address)
        netloc = literal if parts.port is None else f"{literal}:{parts.port}"
        target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        headers = {
            "Host": parts.netloc.rpartition("@")[2],
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
        }
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        try:
            request = self._client.build_request(
                "POST", target, content=body, headers=headers, extensions=extensions
            )
            response = self._client.send(request, stream=True)
            try:
                # Read a short answer to its end, so its connection can serve the next
                # delivery; stop reading a long one (it is not ours to keep).
                received = 0
                for chunk in response.iter_raw():
                    received += len(chunk)
                    if received > MAX_ANSWER_READ:
                        break
            finally:
                response.close()
        except httpx.TimeoutException:
            return SendOutcome(error=f"timeout after {self._timeout:g} s")
        except httpx.HTTPError as error:
            return SendOutcome(error=f"{type(error).__name__}: {error}"[:500])
        return SendOutcome(
            status_code=response.status_code,
            retry_after=_retry_after(response.headers.get("Retry-After"), datetime.now(UTC)),
        )
